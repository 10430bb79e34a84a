"""Building an editor and its edit stream from command-line style arguments.

Shared by `memoir edit`, `memoir eval` and the demo; all three go through
`MemoirEditor.from_pretrained`, the same route a Python user takes, and differ only in where
the model is placed and which background texts a fresh memory gets.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
import yaml

import memoir
from editors.edit_data import EditData, validate_records
from editors.errors import InvalidSettingsError
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams, with_settings
from editors.request import EditRequest
from editors.teacher_forcing import row_length_check
from eval_suites.shipped_background import suite_background_texts
from eval_suites.suites import SUITES, data_records, resolve_data
from memoir.defaults import CONFIG_KEYS, ConfigRef, load_defaults, resolve_defaults
from memoir.errors import InvalidConfigError

logger = logging.getLogger("memoir")


def load_requests(
    data: str, num_edits: Optional[int], strict: bool, check: Optional[Callable[[EditRequest], None]] = None
) -> EditData:
    """Valid records of `--data` (passing `check`, if given), bad ones reported with their index on stderr."""
    loaded = validate_records(data_records(data), str(resolve_data(data)), limit=num_edits, strict=strict, check=check)
    for bad in loaded.bad_records:
        logger.warning("skipped %s", bad)
    if loaded.duplicate_prompts:
        logger.warning("records %s repeat an earlier prompt: each replaces the earlier edit", loaded.duplicate_prompts)
    if num_edits is not None and len(loaded.requests) < num_edits:
        logger.warning("only %d valid records for --num-edits %d", len(loaded.requests), num_edits)
    return loaded


def setting(text: str) -> tuple[str, Any]:
    """One `--set key=value`, the value read as YAML (as in configs/: 5.0, true, [the, who]); `none` is None."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"--set takes key=value pairs (e.g. lr=5.0), got {text!r}")
    try:
        return key, None if value.lower() == "none" else yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"--set {text}: {value!r} is not a YAML value (a number, true/false, a word or [a, list])") from None


def run_settings(model_name: str, config: Optional[str], settings: Mapping[str, Any]) -> Optional[ConfigRef]:
    """`--config` (else the model's own file in configs/) with `--set`'s settings in place; `config` when none is set."""
    if not settings:
        return config
    defaults = resolve_defaults(model_name, config)
    if defaults is None:
        raise InvalidSettingsError(f"--set changes a config, but no file in configs/ matches --model {model_name}: "
                                   "pass --config FILE (the layout of configs/*.yaml) as well.")
    return with_settings(defaults, settings)


def check_adapter_settings(folder: Optional[Path], settings: Mapping[str, Any]) -> None:
    """Refuse a `--set` that would change a saved adapter's own settings: they were fixed when its memory was made."""
    if not settings or folder is None or not (folder / "adapter_config.json").is_file():
        return
    saved = memoir.MemoirConfig.from_pretrained(str(folder))
    changed = sorted(key for key, value in settings.items() if key in CONFIG_KEYS and getattr(saved, key) != value)
    if changed:
        held = ", ".join(f"{key}={getattr(saved, key)!r}" for key in changed)
        raise InvalidSettingsError(f"--set {', '.join(changed)}: the adapter in {folder} was made with {held}, and an adapter's own "
                                   "settings cannot change; drop them from --set, or write a new adapter.")


@dataclass
class Preflight:
    """What the checks before loading found: the editor's settings and the per-record check of `--data`."""

    hparams: MemoirHparams
    check: Callable[[EditRequest], None]


def preflight(model_name: str, config: Optional[ConfigRef] = None) -> Preflight:
    """Check `--model` and `--config` against each other without loading weights; returns the record check.

    Everything a user can get wrong in `--model`, `--config` and `--data` is refused from here,
    before the model loads and before the command writes anything.
    """
    defaults = load_defaults(config) if config else None
    model_config = memoir.load_model_config(model_name)
    text_config = model_config.get_text_config()
    try:
        if defaults:
            _check_fits(memoir.MemoirConfig(**defaults["memoir"]), text_config)
        hparams = MemoirHparams.for_model(model_name, config)
    except (InvalidConfigError, InvalidSettingsError) as error:
        where = "--set" if isinstance(config, Mapping) else f"--config {config or model_name}"
        raise type(error)(f"{where}: {error}") from None
    reserved = 0 if hparams.prefix_mode == "none" else max(hparams.prefix_lengths, default=0)
    max_positions = getattr(text_config, "max_position_embeddings", None)
    return Preflight(hparams, row_length_check(memoir.load_tokenizer(model_name), max_positions, reserved))


def _check_fits(memoir_config: memoir.MemoirConfig, text_config: Any) -> None:
    layers, width = getattr(text_config, "num_hidden_layers", None), getattr(text_config, "intermediate_size", None)
    if isinstance(layers, int) and memoir_config.target_layer >= layers:
        raise InvalidConfigError(f"target_layer={memoir_config.target_layer} is out of range: the model has layers 0..{layers - 1}.")
    if isinstance(width, int) and memoir_config.top_k > width:
        raise InvalidConfigError(f"top_k={memoir_config.top_k} exceeds the model's MLP width D={width}: choose k <= {width}.")


def build_editor(
    model_name: str,
    data: str,
    device: torch.device | str = "cpu",
    adapter_dir: Optional[Path] = None,
    prefixes: Optional[list[str]] = None,
    config: Optional[ConfigRef] = None,
    dtype: Optional[str] = None,
    device_map: Optional[str] = None,
) -> MemoirEditor:
    """A MEMOIR editor on `model_name`, fresh, or on the saved adapter in `adapter_dir` if it exists.

    `config` names a shipped config or a YAML file of that layout, or is that layout (`run_settings`;
    default: the model's own).
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
