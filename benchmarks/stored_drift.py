"""How far a saved adapter's stored edits have drifted: each one's loss on its own prompt under its own mask.

    python benchmarks/stored_drift.py runs/results/mixed/adapter [--above 0.2]

Prints, by fifth of edit order (oldest first), the mean loss and the share of edits above the
limit, which are the edits consolidation (`consolidate_every`) would write again now, and the
seconds one such check over the whole ledger takes: the figures that size consolidation's cost.
"""

from __future__ import annotations

import argparse
import time

from editors.memoir_editor import MemoirEditor
from tune_memoir import by_fifth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", help="an adapter folder with its ledger (the adapter/ of a `memoir edit` or `eval` --out)")
    parser.add_argument("--above", type=float, default=0.2, help="the loss limit consolidation writes edits again above")
    args = parser.parse_args()
    editor = MemoirEditor.from_pretrained(args.adapter)
    entries = editor.ledger.entries
    started = time.perf_counter()
    losses = editor.stored_losses()
    print(f"{len(entries)} stored edits measured in {time.perf_counter() - started:.1f} s; "
          f"{int((losses > args.above).sum())} above {args.above}")
    rows = [{"loss": float(loss), "above": float(loss > args.above)} for loss in losses]
    for fifth, (loss, above) in enumerate(by_fifth(rows, ["loss", "above"]), start=1):
        print(f"fifth {fifth} (oldest first): mean loss {loss:.3f}, above {args.above}: {above:.3f}")


if __name__ == "__main__":
    main()
