"""Markdown tables of scores: the unedited row beside the edited one, as papers print them."""

from __future__ import annotations

from typing import Any, Optional, Sequence

RUN_COLUMNS = {"editor": "method", "model": "model", "num_edits": "T"}
# key in metrics.json -> column heading; a column appears only when some row has the key
SCORE_COLUMNS = {
    "rel": "Rel",
    "gen": "Gen",
    "ood": "OOD",
    "loc": "Loc",
    "loc_neighbour": "neighbour Loc",
    "ppl": "PPL",
    "ppl_neighbour": "neighbour PPL",
    "exact_match": "EM (generation)",
    "fired_on_unrelated": "fires on unrelated",
    "loc_skipped": "no Loc answer",
}
UNEDITED = "unedited"
DECIMALS = {"ppl": 2, "ppl_neighbour": 2, "steps": 1}  # every other float is shown with 3


def table_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The unedited row and the edited row of one run's `metrics.json`."""
    shared = {"model": metrics.get("model", ""), "num_edits": metrics["num_edits"]}
    unedited = {"editor": UNEDITED, **shared, **metrics.get(UNEDITED, {})}
    edited = {**metrics, "editor": metrics.get("editor", "?")}
    return [unedited, edited]


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{DECIMALS.get(key, 3)}f}"
    return str(value)


def format_table(
    rows: Sequence[dict[str, Any]], leading: Optional[dict[str, str]] = None, trailing: Optional[dict[str, str]] = None
) -> str:
    """A Markdown table: the `leading` columns (default: method, model, T), then every score and
    `trailing` column that some row has."""
    columns = dict(RUN_COLUMNS if leading is None else leading)
    optional = SCORE_COLUMNS | (trailing or {})
    columns |= {key: heading for key, heading in optional.items() if any(key in row for row in rows)}
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(key, row.get(key)) for key in columns) + " |")
    return "\n".join(lines) + "\n"
