"""`save_adapter`: peft's `save_pretrained`, made all-or-nothing.

peft writes the weights and the config one after the other into the target folder; a crash
between them leaves a folder that loads wrong. Writing a sibling temp folder and swapping it in
keeps the previous adapter whole until the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def save_adapter(model: Any, folder: str | os.PathLike, **save_kwargs: Any) -> Path:
    """Save a `PeftModel`'s adapter to `folder`, replacing any previous one only once complete."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    try:
        model.save_pretrained(str(staging), **save_kwargs)
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _swap_in(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(staging, folder)
        return
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    os.rename(folder, retired)
    os.rename(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)
