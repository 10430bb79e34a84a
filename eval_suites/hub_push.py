"""`memoir push`: a run folder or an adapter folder to a Hub repo, with its model card, in one commit.

A folder is read in the layouts the CLI writes: an adapter folder; a `memoir edit` run
(`adapter/`, `edits.jsonl`, `run.json`); a `memoir eval` run with one T (`adapter/`,
`metrics.json`, ...) or several (`t<T>/` each). For several T the longest stream's adapter is
pushed, and every T's scores go on the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from editors.ledger import LEDGER_FILE, describe
from eval_suites.errors import RunDirError
from eval_suites.model_card import CardInputs, build_card
from eval_suites.run_dir import load_metrics, run_folders
from memoir.hub import ADAPTER_CONFIG, hub_base_model, push_adapter

ADAPTER_DIR = "adapter"


@dataclass
class PushSource:
    """The adapter to push and the folders holding its scores (none for an adapter without `memoir eval` runs)."""

    adapter_dir: Path
    scored_dirs: list[Path]


def _scored_dirs(folder: Path) -> list[Path]:
    """The run folders of `folder` by T (see `run_folders`), or none: an adapter may have no scores."""
    try:
        return run_folders(folder)
    except RunDirError:
        return []


def find_source(path: str | Path) -> PushSource:
    """Where the adapter and its scores are, for any folder layout the CLI writes."""
    path = Path(path)
    if (path / ADAPTER_CONFIG).is_file():
        scored = _scored_dirs(path.parent) if path.name == ADAPTER_DIR else []
        return PushSource(path, scored)
    if (path / ADAPTER_DIR / ADAPTER_CONFIG).is_file():
        return PushSource(path / ADAPTER_DIR, _scored_dirs(path))
    scored = _scored_dirs(path) if path.is_dir() else []
    if scored and (scored[-1] / ADAPTER_DIR / ADAPTER_CONFIG).is_file():
        return PushSource(scored[-1] / ADAPTER_DIR, scored)
    raise RunDirError(
        f"{path} holds no adapter: pass an adapter folder (with {ADAPTER_CONFIG}) or the --out folder of "
        "`memoir edit` / `memoir eval`"
    )


def listed_edits(adapter: dict[str, Any]) -> list[dict[str, str]]:
    """`id`, `prompt`, `target` of the adapter's stored edits, from the ledger saved inside it."""
    if adapter["edits"] is None:
        raise RunDirError(f"{adapter['adapter']} has no ledger of its edits (saved before ledgers): they cannot be listed")
    return [{key: edit[key] for key in ("id", "prompt", "target")} for edit in adapter["edits"]]


def push_run(
    path: str | Path,
    repo_id: str,
    private: bool = False,
    revision: Optional[str] = None,
    include_edits: bool = False,
    base_model: Optional[str] = None,
) -> str:
    """Push the adapter found in `path` with its model card to `repo_id`; returns the commit URL.

    `base_model` is the Hub id of the base model when the adapter records a local folder. The
    edits (prompts and targets) may be private: the adapter's ledger is uploaded, and the card
    lists them, only with `include_edits`.
    """
    source = find_source(path)
    adapter = describe(source.adapter_dir)
    hub_id = hub_base_model(adapter["config"], base_model)
    count = adapter["num_edits"]
    card = build_card(CardInputs(
        adapter_dir=source.adapter_dir,
        repo_id=repo_id,
        base_model=hub_id,
        num_edits=count,
        metrics=[load_metrics(folder) for folder in source.scored_dirs],
        edits=listed_edits(adapter) if include_edits else None,
    ))
    return push_adapter(
        source.adapter_dir, repo_id, str(card), hub_id, private=private, revision=revision,
        commit_message=f"MEMOIR adapter, {count} edits", leave_out=() if include_edits else (LEDGER_FILE,),
    )
