"""Would a forgotten edit's prompt still fire another stored edit if its mask were simply dropped?

    python benchmarks/forget_routing.py --counts 20,100,1000

Masks depend only on the prompt and the background mean (both below R), so this needs no edit
training: for the first T prompts of the ZsRE edit set it prints, per T, the share of prompts
whose best overlap with the other T-1 masks reaches tau, and quantiles of that overlap. This is
why `forget` keeps the forgotten mask (among `memory.forgotten`) instead of dropping it: an
input nearer to a forgotten mask than to every stored one is not routed, so the forgotten
prompt answers as the unedited model.
"""

from __future__ import annotations

import argparse
import json

import torch

from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from eval_suites.suites import suite_path


@torch.no_grad()
def prompt_masks(editor: MemoirEditor, prompts: list[str], batch_size: int = 16) -> torch.Tensor:
    """(N, D) masks of `prompts`, as the editor stores them (right padding keeps positions exact)."""
    editor.tokenizer.padding_side = "right"
    tuner, found = editor.model.base_model, []
    for start in range(0, len(prompts), batch_size):
        encoded = editor.tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        found.append(editor.memory.mask_of(tuner.pooled_prompt_activations(**encoded)))
    return torch.cat(found)


def best_other_overlap(masks: torch.Tensor, top_k: int) -> torch.Tensor:
    """For each mask, its best overlap with any other mask of the set."""
    overlaps = (masks.float() @ masks.float().T) / top_k
    overlaps.fill_diagonal_(-1.0)
    return overlaps.max(dim=1).values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--counts", default="20,100,1000")
    args = parser.parse_args()
    counts = [int(count) for count in args.counts.split(",")]
    editor = MemoirEditor.from_pretrained(args.model)
    prompts = [request.prompt for request in load_edit_data(suite_path("zsre"), limit=max(counts)).requests]
    masks = prompt_masks(editor, prompts)
    tau, top_k = editor.memory.tau, editor.model.peft_config["default"].top_k
    summary = {}
    for count in counts:
        best = best_other_overlap(masks[:count], top_k)
        summary[count] = {
            "still_fires": round((best >= tau).float().mean().item(), 3),
            "best_other_overlap_q50_q90_max": [round(x, 3) for x in best.quantile(torch.tensor([0.5, 0.9, 1.0])).tolist()],
        }
    print(json.dumps({"model": args.model, "tau": tau, "by_T": summary}, indent=1))


if __name__ == "__main__":
    main()
