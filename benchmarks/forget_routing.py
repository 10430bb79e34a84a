"""Would a forgotten edit's prompt still fire another stored edit if its mask were simply dropped?

    python benchmarks/forget_routing.py --counts 20,100,1000

Masks depend only on the prompt and the background mean (both below R), so this needs no edit
training: for the first T prompts of the ZsRE edit set it prints, per T, the share of prompts
that, with their own mask dropped, would fire another stored edit through every routing stage
of the model's config (overlap tau, feature similarity, margin), and quantiles of the best
overlap with another edit. This is why `forget` keeps the forgotten mask (among
`memory.forgotten`) instead of dropping it: an input nearer to a forgotten mask than to every
stored one is not routed, so the forgotten prompt answers as the unedited model.
"""

from __future__ import annotations

import argparse
import json

import torch

from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from eval_suites.suites import suite_path
from routing_diagnostic import store


@torch.no_grad()
def still_fires(editor: MemoirEditor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each stored edit: whether its own prompt, with its mask dropped, would fire another stored
    edit through every routing stage, and its best overlap with another. Each edit in turn leaves
    the index and goes back at its end, so the stored order is as before once every edit has been out."""
    index, fires, best = editor.memory.index, [], []
    for _ in range(len(index)):
        mask, feature = index.remove([0])
        routing = editor.memory.route_centred(mask, feature.float())
        fires.append(routing.active)
        best.append(routing.overlap)
        index.add(mask, feature)
    return torch.cat(fires), torch.cat(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--counts", default="20,100,1000")
    args = parser.parse_args()
    counts = [int(count) for count in args.counts.split(",")]
    editor = MemoirEditor.from_pretrained(args.model)
    requests = load_edit_data(suite_path("zsre"), limit=max(counts)).requests
    summary, stored = {}, 0
    for count in counts:
        store(editor, requests[stored:count])
        stored = count
        fires, best = still_fires(editor)
        summary[count] = {
            "still_fires": round(fires.float().mean().item(), 3),
            "best_other_overlap_q50_q90_max": [round(x, 3) for x in best.quantile(torch.tensor([0.5, 0.9, 1.0])).tolist()],
        }
    config = editor.model.peft_config["default"]
    settings = {key: getattr(config, key) for key in ("tau", "min_similarity", "min_margin", "margin_rank", "pooling", "top_k")}
    print(json.dumps({"model": args.model, **settings, "by_T": summary}, indent=1))


if __name__ == "__main__":
    main()
