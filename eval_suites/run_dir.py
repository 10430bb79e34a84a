"""A run directory: `metrics.json`, `records.jsonl`, `edits.jsonl` and `table.md`, each written atomically.

Files are written to a temporary name and moved into place, so a run killed mid-write leaves
the previous complete file (or none), never a truncated one that a report would misread.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Optional

from eval_suites.errors import RunDirError
from memoir.saving import write_atomic
from eval_suites.protocol import RunResult
from eval_suites.table import UNEDITED, format_table, table_rows

METRICS_FILE = "metrics.json"
RECORDS_FILE = "records.jsonl"
EDITS_FILE = "edits.jsonl"
TABLE_FILE = "table.md"


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def source_commit() -> Optional[str]:
    """The git commit this code runs at, "+changes" when its tracked files differ from it, so that
    a results table can name what it measured; None when the code is not a git checkout of its own
    (an installed wheel, even one in a virtual environment inside some other repository)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):  # no git program, or a damaged checkout
        return None
    return head.stdout.strip() + ("+changes" if status.stdout.strip() else "")


def metrics_document(result: RunResult) -> dict[str, Any]:
    """What `metrics.json` holds: the run's metrics and the commit they were measured at, with the
    unedited scores under `unedited`."""
    return {**result.metrics, "commit": source_commit(), UNEDITED: result.unedited}


def save_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write the run's files into `out_dir` (created if needed); returns the directory."""
    out_dir = Path(out_dir)
    metrics = metrics_document(result)
    records = [
        {**record, UNEDITED: {key: value for key, value in before.items() if key != "id"}}
        for record, before in zip(result.records, result.unedited_records)
    ]
    write_atomic(out_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    write_atomic(out_dir / RECORDS_FILE, _jsonl(records))
    write_atomic(out_dir / EDITS_FILE, _jsonl([edit.to_dict() for edit in result.edits]))
    write_atomic(out_dir / TABLE_FILE, format_table(table_rows(metrics)))
    return out_dir


def _required(run_dir: str | Path, name: str) -> Path:
    path = Path(run_dir) / name
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: {name} is missing (run `memoir eval --out DIR` first)")
    return path


def _load_jsonl(run_dir: str | Path, name: str) -> list[dict[str, Any]]:
    lines = _required(run_dir, name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def run_folders(path: str | Path) -> list[Path]:
    """`path` if it is a run folder, else its `t<T>` sub-folders by T (what `eval --out` writes for several T)."""
    path = Path(path)
    if (path / METRICS_FILE).is_file():
        return [path]
    found = [folder for folder in path.glob("t*") if folder.name[1:].isdigit() and (folder / METRICS_FILE).is_file()]
    if not found:
        raise RunDirError(f"{path} is not a run directory: it holds neither {METRICS_FILE} nor t<T>/ run folders "
                          "(run `memoir eval --out DIR` first)")
    return sorted(found, key=lambda folder: int(folder.name[1:]))


def load_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The `metrics.json` of a run directory."""
    return json.loads(_required(run_dir, METRICS_FILE).read_text(encoding="utf-8"))


def load_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-record scores of a run directory, in edit order."""
    return _load_jsonl(run_dir, RECORDS_FILE)


def load_edits(run_dir: str | Path) -> list[dict[str, Any]]:
    """The edit log of a run directory (steps, final loss, seconds, method extras), in edit order."""
    return _load_jsonl(run_dir, EDITS_FILE)
