"""`memoir push`: a run folder or an adapter folder to a Hub repo, with its model card, in one commit.

A folder is read in the layouts the CLI writes: an adapter folder; a `memoir edit` run
(`adapter/`, `edits.jsonl`, `run.json`); a `memoir eval` run with one T (`adapter/`,
`metrics.json`, ...) or several (`t<T>/` each). For several T the longest stream's adapter is
pushed, and every T's scores go on the card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from eval_suites.editor_setup import load_requests
from eval_suites.errors import RunDirError
from eval_suites.model_card import CardInputs, build_card, num_edits
from eval_suites.run_dir import EDITS_FILE, METRICS_FILE, load_edits, load_metrics
from memoir.hub import ADAPTER_CONFIG, hub_base_model, push_adapter

ADAPTER_DIR = "adapter"
MANIFEST_FILE = "run.json"


@dataclass
class PushSource:
    """The adapter to push, the run folder it came from (if any) and the folders holding its scores."""

    adapter_dir: Path
    run_dir: Optional[Path]
    scored_dirs: list[Path]


def _scored_dirs(folder: Path) -> list[Path]:
    if (folder / METRICS_FILE).is_file():
        return [folder]
    found = [child for child in folder.glob("t*") if (child / METRICS_FILE).is_file()]
    return sorted(found, key=lambda child: load_metrics(child)["num_edits"])


def find_source(path: str | Path) -> PushSource:
    """Where the adapter and its scores are, for any folder layout the CLI writes."""
    path = Path(path)
    if (path / ADAPTER_CONFIG).is_file():
        parent = path.parent
        is_run = (parent / EDITS_FILE).is_file() or (parent / METRICS_FILE).is_file()
        return PushSource(path, parent if is_run else None, _scored_dirs(parent) if is_run else [])
    if (path / ADAPTER_DIR / ADAPTER_CONFIG).is_file():
        return PushSource(path / ADAPTER_DIR, path, _scored_dirs(path))
    scored = _scored_dirs(path) if path.is_dir() else []
    if scored and (scored[-1] / ADAPTER_DIR / ADAPTER_CONFIG).is_file():
        return PushSource(scored[-1] / ADAPTER_DIR, scored[-1], scored)
    raise RunDirError(
        f"{path} holds no adapter: pass an adapter folder (with {ADAPTER_CONFIG}) or the --out folder of "
        "`memoir edit` / `memoir eval`"
    )


def _data_of(run_dir: Path) -> str:
    if (run_dir / MANIFEST_FILE).is_file():
        return json.loads((run_dir / MANIFEST_FILE).read_text())["data"]
    data = load_metrics(run_dir).get("data")
    if data is None:
        raise RunDirError(f"{run_dir} does not record its --data, so its edits cannot be listed")
    return data


def listed_edits(source: PushSource, count: int) -> list[dict[str, str]]:
    """`id`, `prompt`, `target` of the adapter's `count` edits, from the run's log and its data file."""
    if source.run_dir is None:
        raise RunDirError(f"{source.adapter_dir} is not inside a run folder: its edits cannot be listed")
    ids = [edit["id"] for edit in load_edits(source.run_dir)[:count]]
    requests = {request.id: request for request in load_requests(_data_of(source.run_dir), None, strict=False).requests}
    missing = [edit_id for edit_id in ids if edit_id not in requests]
    if missing:
        raise RunDirError(f"edits {missing[:5]} of {source.run_dir} are not in its data file any more")
    return [{"id": i, "prompt": requests[i].prompt, "target": requests[i].target} for i in ids]


def push_run(
    path: str | Path,
    repo_id: str,
    private: bool = False,
    revision: Optional[str] = None,
    include_edits: bool = False,
    base_model: Optional[str] = None,
) -> str:
    """Push the adapter found in `path` with its model card to `repo_id`; returns the commit URL.

    `base_model` is the Hub id of the base model when the adapter records a local folder.
    """
    source = find_source(path)
    saved: dict[str, Any] = json.loads((source.adapter_dir / ADAPTER_CONFIG).read_text())
    hub_id = hub_base_model(saved, base_model)
    count = num_edits(source.adapter_dir)
    card = build_card(CardInputs(
        adapter_dir=source.adapter_dir,
        repo_id=repo_id,
        base_model=hub_id,
        metrics=[load_metrics(folder) for folder in source.scored_dirs],
        edits=listed_edits(source, count) if include_edits else None,
    ))
    return push_adapter(
        source.adapter_dir, repo_id, str(card), hub_id, private=private, revision=revision,
        commit_message=f"MEMOIR adapter, {count} edits",
    )
