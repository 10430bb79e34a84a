"""The Hugging Face Hub side of an adapter: finding it by repo id, and pushing it.

Loading follows transformers: a repo id is downloaded into the Hugging Face cache when online
and read from that cache alone when `HF_HUB_OFFLINE=1`. A pushed adapter must name a base model
that another machine can resolve, so the push rewrites `base_model_name_or_path` to a Hub id.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError, RepositoryNotFoundError

from memoir.adapter_files import WEIGHTS_FILE
from memoir.base_models import EMBEDDED_MODELS, embedded_available
from memoir.errors import ModelNotAvailableError

ADAPTER_CONFIG = "adapter_config.json"
CARD_FILE = "README.md"


def adapter_config_file(name_or_path: str) -> Optional[Path]:
    """`adapter_config.json` of a local adapter folder or a Hub adapter repo; None for anything else.

    A plain model (a folder, an embedded short name, a Hub model repo) has none; an adapter repo
    missing from the cache while offline is reported by the base-model loader that runs next.
    """
    local = Path(name_or_path) / ADAPTER_CONFIG
    if local.is_file():
        return local
    if name_or_path in EMBEDDED_MODELS or Path(name_or_path).exists():
        return None
    try:
        config = Path(hf_hub_download(name_or_path, ADAPTER_CONFIG))
    except (EntryNotFoundError, RepositoryNotFoundError, HFValidationError):
        return None
    hf_hub_download(name_or_path, WEIGHTS_FILE)  # the snapshot folder then holds a whole adapter, as a saved one does
    return config


def base_model_reference(saved: dict, source: str) -> str:
    """What to load as the base of a saved adapter config: its local folder if present here, else the
    embedded model it names if installed here, else its Hub id."""
    base_path, alias = saved.get("base_model_name_or_path"), saved.get("base_model_alias")
    if base_path and Path(base_path).exists():
        return base_path
    if alias and (embedded_available(alias) or not base_path):
        return alias
    if base_path:
        return base_path
    raise ModelNotAvailableError(f"{source} records no base model: load it with PeftModel.from_pretrained(base, {source!r}).")


def hub_base_model(saved: dict, base_model: Optional[str] = None) -> str:
    """The Hub id a pushed adapter names as its base: `base_model` if given, else the one it records.

    A local folder cannot be resolved elsewhere, so it is refused unless `base_model` says which
    Hub model that folder holds.
    """
    recorded = base_model or saved.get("base_model_name_or_path")
    alias = saved.get("base_model_alias")
    if base_model is None and alias in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[alias].hub_id
    if not recorded or Path(recorded).is_absolute() or Path(recorded).exists():
        raise ModelNotAvailableError(
            f"The adapter's base model is {recorded!r}, which other machines cannot resolve: pass the Hub id of "
            "that model (`--base-model ORG/NAME`, or base_model= in Python)."
        )
    return recorded


def staged_adapter(adapter_dir: Path, staging: Path, base_model: str, card: str, leave_out: Sequence[str] = ()) -> None:
    """Copy the adapter files but `leave_out` into `staging`, naming `base_model` in its config, with `card` as README.md."""
    for entry in adapter_dir.iterdir():
        if entry.is_file() and entry.name not in (ADAPTER_CONFIG, CARD_FILE, *leave_out):
            shutil.copy2(entry, staging / entry.name)
    saved = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    (staging / ADAPTER_CONFIG).write_text(json.dumps({**saved, "base_model_name_or_path": base_model}, indent=2) + "\n")
    (staging / CARD_FILE).write_text(card)


def push_adapter(
    adapter_dir: str | os.PathLike,
    repo_id: str,
    card: str,
    base_model: str,
    private: bool = False,
    revision: Optional[str] = None,
    commit_message: Optional[str] = None,
    leave_out: Sequence[str] = (),
) -> str:
    """Create `repo_id` if needed and upload the adapter with `card` in one commit; returns the commit URL.

    Files named in `leave_out` stay local (a ledger of private edits) and are deleted from the repo
    if an earlier push uploaded them. A later push of the same
    repo (a longer stream of edits) replaces the files in one new commit.
    """
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="memoir-push-") as staging:
        staged_adapter(Path(adapter_dir), Path(staging), base_model, card, leave_out)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=staging, revision=revision,
            commit_message=commit_message or "Upload MEMOIR adapter",
            delete_patterns=list(leave_out) or None,  # a copy pushed earlier would go stale beside the new adapter
        )
    return str(commit)
