"""All-or-nothing writes: `write_atomic` for one file, `save_adapter` for an adapter folder.

peft writes the weights and the config one after the other into the target folder; a crash
between them leaves a folder that loads wrong. Writing a sibling temp folder and swapping it in
keeps the previous adapter whole until the new one is complete. `tempfile` creates its files
and folders private (0600 / 0700); they are given the modes of a plain `open`/`mkdir` under the
user's umask before they are moved into place, so another user can read a saved adapter.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, fsync and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode("utf-8") if isinstance(data, str) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask (read by setting it, as POSIX offers no getter, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_adapter(
    model: Any, folder: str | os.PathLike, files: Optional[dict[str, str | bytes]] = None, **save_kwargs: Any
) -> Path:
    """Save a `PeftModel`'s adapter to `folder`, replacing any previous one only once complete.

    `files` (name -> content) are written into the same folder before it is swapped in, so a
    file that describes the weights (the editor's ledger) is never out of step with them.
    """
    # MEMOIR never changes the embeddings; peft's "auto" would ask the Hub for the base config at every checkpoint.
    save_kwargs.setdefault("save_embedding_layers", False)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    try:
        model.save_pretrained(str(staging), **save_kwargs)
        for name, content in (files or {}).items():
            write_atomic(staging / name, content)
        follow_umask(staging)
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def follow_umask(staging: Path) -> None:
    """Give a staged folder and its files the modes `mkdir`/`open` would (mkdtemp and safetensors make them private)."""
    umask = current_umask()
    for path in staging.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
    os.chmod(staging, 0o777 & ~umask)


def _swap_in(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(staging, folder)
        return
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    os.rename(folder, retired)
    os.rename(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)
