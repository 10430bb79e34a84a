"""Building an editor and its edit stream from command-line style arguments.

Shared by `memoir edit`, `memoir eval` and the demo; all three go through
`MemoirEditor.from_pretrained`, the same route a Python user takes, and differ only in where
the model is placed and which background texts a fresh memory gets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch

from editors.edit_data import EditData, load_edit_data
from editors.memoir_editor import MemoirEditor
from eval_suites.shipped_background import suite_background_texts
from eval_suites.suites import SUITES, resolve_data
from memoir.defaults import resolve_defaults

logger = logging.getLogger("memoir")


def load_requests(data: str, num_edits: Optional[int], strict: bool) -> EditData:
    """Valid records of `--data`, bad ones reported with their index on stderr."""
    loaded = load_edit_data(resolve_data(data), limit=num_edits, strict=strict)
    for bad in loaded.bad_records:
        logger.warning("skipped %s", bad)
    if loaded.duplicate_prompts:
        logger.warning("records %s repeat an earlier prompt: each replaces the earlier edit", loaded.duplicate_prompts)
    if num_edits is not None and len(loaded.requests) < num_edits:
        logger.warning("only %d valid records for --num-edits %d", len(loaded.requests), num_edits)
    return loaded


def build_editor(
    model_name: str,
    data: str,
    device: torch.device | str = "cpu",
    adapter_dir: Optional[Path] = None,
    prefixes: Optional[list[str]] = None,
    config: Optional[str] = None,
    dtype: Optional[str] = None,
    device_map: Optional[str] = None,
) -> MemoirEditor:
    """A MEMOIR editor on `model_name`, fresh, or on the saved adapter in `adapter_dir` if it exists.

    `config` names a shipped config or a YAML file of that layout (default: the model's own).
    `dtype` ("float32", "bfloat16", ...) overrides the config's; R itself stays float32. With
    `device_map` (e.g. "auto") transformers places the model instead of `device`. A suite's
    fresh memory takes its background texts from that suite's train file.
    """
    saved = adapter_dir is not None and adapter_dir.exists()
    source = str(adapter_dir) if saved else model_name
    dtype = dtype or (resolve_defaults(model_name, config) or {}).get("dtype", "float32")
    return MemoirEditor.from_pretrained(
        source, config=config, dtype=getattr(torch, dtype), device_map=device_map, device=device, prefixes=prefixes,
        background_texts=suite_background_texts(data) if data in SUITES else None,
    )
