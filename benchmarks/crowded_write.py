"""How well a new edit's paraphrases are written into a crowded memory: each ZsRE *train* record is written
into a saved adapter as it stands, scored, and taken out again (R, C, its mask and ledger row as before),
so that every record meets the same memory.

    python benchmarks/crowded_write.py runs/results/mixed/adapter [--num-edits 100] [--set loss_threshold=0.005]

Prints, over the records, Rel and Gen right after the writing, how often a paraphrase selects its
own edit and fires, and its loss under the edit's own mask (routing aside). Consolidation is off,
so the figures are the writing's alone. Against the same records written into an empty memory
(`write_time_gen.py`'s "at write" on the train streams), a drop here is the crowded memory's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from routing_diagnostic import route

from editors.base import EditResult
from editors.consolidation import StoredEditLosses
from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.request import EditRequest
from eval_suites.editor_setup import setting
from eval_suites.scoring import score_records
from eval_suites.suites import suite_train_path
from write_time_gen import without_locality


# Writes taken back must not rewrite other edits: their old state could not be restored.
WITHOUT_CONSOLIDATION = {"consolidate_in_turn": 0, "consolidate_every": 0}


def adapter_editor(folder: str, settings: dict[str, Any]) -> MemoirEditor:
    """An editor on the saved adapter with `settings` over its editor settings; built anew with them, so that settings
    choosing what C holds (preservation_variants, max_protected_positions) rebuild C as they would for a user."""
    saved = MemoirEditor.from_pretrained(folder)
    hparams = dataclasses.replace(saved.hparams, **settings)
    return MemoirEditor(saved.model, saved.tokenizer, hparams, ledger=saved.ledger, prefixes=saved.prefixes)


def mean(rows: list[dict[str, Any]], key: str) -> float:
    return round(statistics.mean(row[key] for row in rows), 3)


@contextmanager
def taken_back(editor: MemoirEditor, request: EditRequest) -> Iterator[tuple[EditResult, int, torch.Tensor]]:
    """Write `request` for the block (its result, ledger row and R before it); afterwards R, C, the stored masks and
    the ledger are as they were. Consolidation must be off, as it would change other edits the block cannot restore."""
    if editor.ledger.row_of_prompt(request.prompt) is not None:
        raise SystemExit(f"the adapter already holds an edit of {request.prompt!r}: writing it would replace that edit, "
                         "which this benchmark cannot restore; use an adapter written from the edit sets, not the train files")
    memory = editor.memory
    R, covariance = memory.R.detach().clone(), memory.key_covariance.clone()
    result = editor.edit(request)
    row = len(editor.ledger.entries) - 1
    try:
        yield result, row, R
    finally:
        memory.index.remove([row])
        editor.ledger.remove(row)
        with torch.no_grad():
            memory.R.copy_(R)
        memory.key_covariance = covariance


def write_and_take_back(editor: MemoirEditor, request: EditRequest, paraphrase_loss: StoredEditLosses) -> dict[str, float]:
    """Write `request`, score it, then restore the memory and ledger as they were before it."""
    with taken_back(editor, request) as (_, row, _):
        scores = score_records(editor, [request], [{}])[0]
        fires, index, _ = route(editor, [request.rephrase])
        mask = editor.memory.index.masks[row : row + 1]
        loss = float(paraphrase_loss([(request.rephrase, request.target)], mask)[0])
    return {"rel": scores["rel"], "gen": scores["gen"], "own": float(bool(fires[0]) and int(index[0]) == row), "loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", help="an adapter folder with its ledger (the adapter/ of a `memoir eval` --out)")
    parser.add_argument("--num-edits", type=int, default=100, help="ZsRE train records written, one at a time")
    parser.add_argument("--set", type=setting, nargs="*", default=[], metavar="KEY=VALUE", help="editor settings to write with")
    args = parser.parse_args()
    editor = adapter_editor(args.adapter, {**dict(args.set), **WITHOUT_CONSOLIDATION})
    records = load_edit_data(suite_train_path("zsre")).requests[: args.num_edits]
    paraphrase_loss = StoredEditLosses(editor.model, editor.tokenizer)
    rows = [write_and_take_back(editor, request, paraphrase_loss) for request in map(without_locality, records) if request.rephrase]
    print(json.dumps({
        "adapter": args.adapter, "stored_edits": editor.memory.num_edits, "settings": dict(args.set), "records": len(rows),
        **{key: mean(rows, key) for key in ("rel", "gen", "own")},
        "paraphrase_loss_mean": mean(rows, "loss"),
        "paraphrase_loss_median": round(statistics.median(row["loss"] for row in rows), 3),
    }))


if __name__ == "__main__":
    main()
