"""Would a forgotten edit's prompt still fire another stored edit if its mask were simply dropped?

    python benchmarks/forget_routing.py --counts 20,100,1000

Masks depend only on the prompt and the background mean (both below R), so this needs no edit
training: for the first T prompts of the ZsRE edit set it prints, per T, the share of prompts
whose nearest other mask would fire (overlap >= tau and, with min_similarity, cosine of the
centred features >= min_similarity), and quantiles of that best overlap. This is
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
def prompt_features(editor: MemoirEditor, prompts: list[str], batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) masks and centred features of `prompts`, as the editor stores them (right padding keeps positions exact)."""
    editor.tokenizer.padding_side = "right"
    tuner, masks, features = editor.model.base_model, [], []
    for start in range(0, len(prompts), batch_size):
        encoded = editor.tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        pooled = tuner.pooled_prompt_activations(**encoded)
        masks.append(editor.memory.mask_of(pooled))
        features.append(torch.nn.functional.normalize(editor.memory.centred(pooled), dim=-1))
    return torch.cat(masks), torch.cat(features)


def still_fires(masks: torch.Tensor, features: torch.Tensor, top_k: int, tau: float, min_similarity) -> tuple[torch.Tensor, torch.Tensor]:
    """For each prompt: whether its nearest other mask would fire (overlap >= tau, cosine >= min_similarity), and that overlap."""
    overlaps = (masks.float() @ masks.float().T) / top_k
    overlaps.fill_diagonal_(-1.0)
    best, nearest = overlaps.max(dim=1)
    fires = best >= tau
    if min_similarity is not None:
        fires &= (features * features[nearest]).sum(dim=-1) >= min_similarity
    return fires, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--counts", default="20,100,1000")
    args = parser.parse_args()
    counts = [int(count) for count in args.counts.split(",")]
    editor = MemoirEditor.from_pretrained(args.model)
    prompts = [request.prompt for request in load_edit_data(suite_path("zsre"), limit=max(counts)).requests]
    masks, features = prompt_features(editor, prompts)
    config = editor.model.peft_config["default"]
    summary = {}
    for count in counts:
        fires, best = still_fires(masks[:count], features[:count], config.top_k, config.tau, config.min_similarity)
        summary[count] = {
            "still_fires": round(fires.float().mean().item(), 3),
            "best_other_overlap_q50_q90_max": [round(x, 3) for x in best.quantile(torch.tensor([0.5, 0.9, 1.0])).tolist()],
        }
    settings = {key: getattr(config, key) for key in ("tau", "min_similarity", "pooling", "top_k")}
    print(json.dumps({"model": args.model, **settings, "by_T": summary}, indent=1))


if __name__ == "__main__":
    main()
