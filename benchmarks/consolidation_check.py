"""What `consolidate_in_turn` pays per edit to check K stored edits.

    python benchmarks/consolidation_check.py runs/results/mixed/adapter [--checks 50] [--in-turn 4]

`--checks` runs of K consecutive ledger rows (as `consolidate_in_turn` takes them), evenly spaced
over a saved adapter's ledger, are checked three ways, in this process: a whole-model forward per
stored edit (the baseline), the editor's check the first time (it runs the model once per edit
and keeps its lower layers), the editor's check again (from the kept layers, the LM head once for
the K) and the same with the LM head run per edit. Prints the mean seconds per check of each and
that they agree.
"""

from __future__ import annotations

import argparse
import time

import torch

from editors.consolidation import StoredEditLosses
from editors.edit_loss import NaiveEditLoss
from editors.memoir_editor import MemoirEditor
from editors.teacher_forcing import teacher_forced_batch


@torch.no_grad()
def whole_model_losses(editor: MemoirEditor, pairs: list[tuple[str, str]], masks: torch.Tensor) -> torch.Tensor:
    losses = []
    for pair, mask in zip(pairs, masks):
        batch = teacher_forced_batch(editor.tokenizer, [pair], padding_side="right").to(editor.model.device)
        losses.append(NaiveEditLoss(editor.model, batch, mask[None])().item())
    return torch.tensor(losses)


@torch.no_grad()
def one_at_a_time(cached: StoredEditLosses, pairs: list[tuple[str, str]], masks: torch.Tensor) -> torch.Tensor:
    """The kept-layer check with the LM head run per stored edit rather than once for the K (as before)."""
    return torch.tensor([cached.kept(pair, mask[None]).under(mask[None]).item() for pair, mask in zip(pairs, masks)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", help="an adapter folder with its ledger (the adapter/ of a `memoir edit` or `eval` --out)")
    parser.add_argument("--checks", type=int, default=50, help="how many checks of K stored edits to time")
    parser.add_argument("--in-turn", type=int, default=4, help="K, as consolidate_in_turn")
    args = parser.parse_args()
    editor = MemoirEditor.from_pretrained(args.adapter)
    entries, masks = editor.ledger.entries, editor.memory.index.masks
    checks = []
    for start in torch.linspace(0, len(entries) - args.in_turn, args.checks).long().tolist():
        rows = list(range(start, start + args.in_turn))
        checks.append(([(entries[r].prompt, entries[r].target) for r in rows], masks[rows]))
    cached = StoredEditLosses(editor.model, editor.tokenizer)
    ways = {"whole model (baseline)": lambda p, m: whole_model_losses(editor, p, m), "cached, first": cached,
            "cached, again": cached, "cached, again, LM head per edit": lambda p, m: one_at_a_time(cached, p, m)}
    results = {}
    for name, check in ways.items():
        started = time.perf_counter()
        results[name] = torch.cat([check(pairs, rows_masks) for pairs, rows_masks in checks])
        print(f"{name}: {(time.perf_counter() - started) / len(checks):.3f} s per check of {args.in_turn}")
    baseline = results["whole model (baseline)"]
    gap = max(float((losses - baseline).abs().max()) for losses in results.values())
    print(f"{len(checks)} checks over {len(entries)} stored edits; largest loss difference from the baseline {gap:.2e}")


if __name__ == "__main__":
    main()
