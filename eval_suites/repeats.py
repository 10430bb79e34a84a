"""Scores by whether an edit's subject is edited again in the same stream.

A stream may edit one subject several times. The shipped ZsRE set mostly asks the *same* question
about it in other words, with another new answer each time ("Who is the architect of X?" ->
one firm, "What architect designed X?" -> another); a paraphrase of one such question is a
paraphrase of all of them, so no router can tell whose it is and at most one of the answers can
come out. Splitting a run's records this way shows what that costs, apart from what later edits
of other subjects do to earlier ones (see `eval_suites.edit_age`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from editors.edit_data import load_edit_data
from editors.request import EditRequest
from eval_suites.errors import RunDirError
from eval_suites.run_dir import load_metrics, load_records
from eval_suites.scoring import aggregate
from eval_suites.suites import resolve_data
from eval_suites.table import format_table

ONCE, SAME, OTHER = "subject edited once", "subject edited again, same answer", "subject edited again, another answer"
REPEAT_COLUMNS = {"group": "edits", "records": "records"}


def repeat_group(request: EditRequest, targets_of_subject: dict[str, list[str]]) -> str:
    """Which of the three groups an edit falls in, given every edited target of each subject."""
    targets = targets_of_subject[request.subject]
    if len(targets) == 1:
        return ONCE
    return SAME if all(target == request.target for target in targets) else OTHER


def repeat_rows(records: Sequence[dict[str, Any]], requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
    """Mean scores of the records in each group (groups with no records are left out); records
    whose request names no subject are in none."""
    by_id = {request.id: request for request in requests}
    missing = [record["id"] for record in records if record["id"] not in by_id]
    if missing:
        raise RunDirError(f"{len(missing)} scored records (first: id {missing[0]}) are not in the run's data: "
                          "was the data file changed since the run? Rerun `memoir eval`.")
    edited = [(record, by_id[record["id"]]) for record in records if by_id[record["id"]].subject]
    targets_of_subject: dict[str, list[str]] = defaultdict(list)
    for _, request in edited:
        targets_of_subject[request.subject].append(request.target)
    groups: dict[str, list[dict[str, Any]]] = {ONCE: [], SAME: [], OTHER: []}
    for record, request in edited:
        groups[repeat_group(request, targets_of_subject)].append(record)
    return [{"group": name, "records": len(chunk), **aggregate(chunk)} for name, chunk in groups.items() if chunk]


def run_repeat_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """`repeat_rows` of a run folder's records, against the data file the run edited."""
    metrics = load_metrics(run_dir)
    if "data" not in metrics:
        raise RunDirError(f"{run_dir}/metrics.json does not name the data the run edited: "
                          "it was written by an older memoir; rerun `memoir eval` to split its scores by repeat.")
    requests = load_edit_data(resolve_data(metrics["data"])).requests
    return repeat_rows(load_records(run_dir), requests)


def repeat_table(run_dir: str | Path) -> str:
    """A Markdown table of a run's scores by whether each record's subject is edited again in the run."""
    rows = run_repeat_rows(run_dir)
    if not rows:
        raise RunDirError(f"{run_dir}: no scored record names its subject, so there is nothing to group by")
    return format_table(rows, leading=REPEAT_COLUMNS)
