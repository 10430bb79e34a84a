"""Reading several runs back: scores against the number of edits T, as a figure and a table."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eval_suites.errors import RunDirError
from eval_suites.run_dir import load_metrics, write_atomic
from eval_suites.table import UNEDITED, format_table, table_rows

PLOTTED = {"rel": "Rel", "gen": "Gen", "loc": "Loc"}


def _load_all(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    if not run_dirs:
        raise RunDirError("no run directories given")
    return [load_metrics(run_dir) for run_dir in run_dirs]


def markdown_table(run_dirs: Sequence[str | Path]) -> str:
    """One row per run, plus one unedited row per (model, T), ordered by model and T."""
    edited, unedited = [], {}
    for metrics in _load_all(run_dirs):
        before, after = table_rows(metrics)
        # the unedited scores of one model on the first T records are the same in every run
        unedited.setdefault((before["model"], before["num_edits"]), before)
        edited.append(after)
    rows = list(unedited.values()) + edited
    rows.sort(key=lambda row: (row["model"], row["num_edits"], row["editor"] != UNEDITED, row["editor"]))
    return format_table(rows)


def _series(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by method (and model, when the runs span several), each sorted by T."""
    several_models = len({run.get("model", "") for run in runs}) > 1
    series: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        label = f"{run['editor']} · {run.get('model', '')}" if several_models else run["editor"]
        series.setdefault(label, []).append(run)
    return {label: sorted(points, key=lambda run: run["num_edits"]) for label, points in series.items()}


def plot_runs(run_dirs: Sequence[str | Path], out_png: str | Path) -> Path:
    """Draw Rel / Gen / Loc (those the runs have) against T on a log axis into `out_png`."""
    runs = _load_all(run_dirs)
    metrics = [key for key in PLOTTED if any(key in run for run in runs)]
    if not metrics:
        raise RunDirError(f"none of the runs has {', '.join(PLOTTED)} to plot")
    figure = Figure(figsize=(3.6 * len(metrics), 3.2))
    FigureCanvasAgg(figure)
    ticks = sorted({run["num_edits"] for run in runs})
    for axis, key in zip(figure.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for label, points in _series(runs).items():
            shown = [run for run in points if run.get(key) is not None]
            axis.plot([run["num_edits"] for run in shown], [run[key] for run in shown], marker="o", label=label)
        axis.set(title=PLOTTED[key], xscale="log", xlabel="number of edits T", ylim=(-0.03, 1.05))
        axis.set_xticks(ticks, [str(tick) for tick in ticks])
        axis.minorticks_off()
        axis.grid(alpha=0.3)
    figure.axes[-1].legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_atomic(out_png, buffer.getvalue())
    return Path(out_png)
