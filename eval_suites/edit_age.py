"""Scores by edit age: the records of one run in edit order, averaged block by block.

A sequential run scores every record after the last edit, so the first blocks are the oldest
edits. Comparing them with the last blocks separates forgetting (later edits overwriting earlier
ones) from edits that never took hold, which a single mean over all T records cannot show.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from eval_suites.errors import RunDirError
from eval_suites.run_dir import load_records
from eval_suites.scoring import aggregate
from eval_suites.table import format_table

AGE_COLUMNS = {"edits": "edits (oldest first)"}


def age_rows(records: list[dict[str, Any]], blocks: int) -> list[dict[str, Any]]:
    """Mean scores of `blocks` consecutive slices of `records` (the last may be shorter)."""
    if blocks < 1:
        raise ValueError(f"blocks must be at least 1, got {blocks}")
    size = math.ceil(len(records) / blocks)
    rows = []
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        rows.append({"edits": f"{start + 1}-{start + len(chunk)}", **aggregate(chunk)})
    return rows


def age_table(run_dir: str | Path, blocks: int = 10) -> str:
    """A Markdown table of a run's scores by edit age."""
    records = load_records(run_dir)
    if not records:
        raise RunDirError(f"{run_dir} holds no scored records")
    return format_table(age_rows(records, blocks), leading=AGE_COLUMNS)
