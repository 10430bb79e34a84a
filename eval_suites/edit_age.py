"""Scores by edit age: the records of one run in edit order, averaged block by block.

A sequential run scores every record after the last edit, so the first blocks are the oldest
edits. Comparing them with the last blocks separates forgetting (later edits overwriting earlier
ones) from edits that never took hold, which a single mean over all T records cannot show; the
edit log's columns (steps, final loss, how much an edit's mask overlapped an earlier one) say
how each block was written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from eval_suites.errors import RunDirError
from eval_suites.run_dir import load_edits, load_records
from eval_suites.scoring import aggregate, means
from eval_suites.table import format_table

AGE_COLUMNS = {"edits": "edits (oldest first)"}
EDIT_LOG_COLUMNS = {"steps": "steps", "loss": "final loss", "best_overlap_with_earlier": "mask overlap with earlier"}


def age_rows(records: list[dict[str, Any]], blocks: int, edits: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Mean scores of `blocks` consecutive slices of `records` (the last may be shorter), with
    the means of the matching slice of the edit log when `edits` is given."""
    if blocks < 1:
        raise ValueError(f"blocks must be at least 1, got {blocks}")
    if edits and len(edits) != len(records):
        raise RunDirError(f"the edit log has {len(edits)} edits but {len(records)} records were scored")
    size = max(1, math.ceil(len(records) / blocks))  # no records: no rows
    rows = []
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        log = means(edits[start:start + size], list(EDIT_LOG_COLUMNS))
        rows.append({"edits": f"{start + 1}-{start + len(chunk)}", **aggregate(chunk), **log})
    return rows


def age_table(run_dir: str | Path, blocks: int = 10) -> str:
    """A Markdown table of a run's scores, and how its edits were written, by edit age."""
    records = load_records(run_dir)
    if not records:
        raise RunDirError(f"{run_dir} holds no scored records")
    return format_table(age_rows(records, blocks, load_edits(run_dir)), leading=AGE_COLUMNS, trailing=EDIT_LOG_COLUMNS)
