"""Per-model defaults from the YAML files in `configs/` (adapter and editor hyperparameters)."""

from __future__ import annotations

import os
from dataclasses import fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml
from peft.config import PeftConfig
from torch import nn
from transformers import AutoConfig, PretrainedConfig

from memoir.base_models import resolve_model_path
from memoir.config import MemoirConfig
from memoir.errors import InvalidConfigError, ModelNotAvailableError

ModelRef = Union[str, os.PathLike, PretrainedConfig, nn.Module]
ConfigRef = Union[str, os.PathLike, Mapping[str, Any]]  # a shipped config's name, a YAML file, or its layout in memory

MATCH_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers")
# What a `memoir:` section may set: MemoirConfig's own fields less those derived or recorded at save.
CONFIG_KEYS = {f.name for f in fields(MemoirConfig)} - {f.name for f in fields(PeftConfig)} - {
    "target_modules", "base_model_alias", "base_fingerprint"
}
DTYPES = ("float32", "bfloat16", "float16")


@lru_cache(maxsize=None)
def all_defaults() -> dict[str, dict[str, Any]]:
    """Every shipped config by its model name (`configs/<name>.yaml`)."""
    folder = resources.files("configs")
    loaded = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            loaded[entry.name.removesuffix(".yaml")] = yaml.safe_load(entry.read_text())
    return loaded


def defaults_named(name: str) -> dict[str, Any]:
    """The defaults of one shipped config, e.g. `smollm2-135m`, `llama3-8b`."""
    try:
        return all_defaults()[name]
    except KeyError:
        raise InvalidConfigError(f"No config named {name!r} in configs/: choose one of {sorted(all_defaults())}.") from None


def load_defaults(config: ConfigRef) -> dict[str, Any]:
    """A shipped config by name, a YAML file of the same layout (`memoir:` and `editor:` sections),
    or such a layout already in memory (settings changed on a command line)."""
    if isinstance(config, Mapping):
        return _checked_layout(config, "the settings")
    path = Path(config)
    if not path.is_file():
        return defaults_named(str(config))
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InvalidConfigError(f"{path} is not readable YAML ({_first_line(error)}); fix the file (see configs/*.yaml).") from None
    return _checked_layout(loaded, str(path))


def _checked_layout(loaded: Any, where: str) -> dict[str, Any]:
    if not isinstance(loaded, Mapping) or not isinstance(loaded.get("memoir"), Mapping):
        raise InvalidConfigError(f"{where} must be a YAML mapping with a `memoir:` mapping (see configs/*.yaml).")
    unknown = sorted(map(str, set(loaded["memoir"]) - CONFIG_KEYS))
    if unknown:
        raise InvalidConfigError(f"{where}: unknown `memoir:` settings {unknown}; known: {sorted(CONFIG_KEYS)}.")
    if loaded.get("dtype", "float32") not in DTYPES:
        raise InvalidConfigError(f"{where}: dtype must be one of {DTYPES}, got {loaded['dtype']!r}.")
    return dict(loaded)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def resolve_defaults(model: ModelRef, config: Optional[ConfigRef] = None) -> Optional[dict[str, Any]]:
    """The one place that picks a model's settings (`memoir:` adapter config, `editor:` settings).

    `config` (a shipped name, a YAML file or such a layout in memory) wins when given. Otherwise `model` is looked up: a
    short name of a shipped file, else its shape (from a folder's config.json, a transformers
    config, a model, or a peft model, whose adapter may name its base by short name). None when
    nothing matches: the caller then needs explicit settings.
    """
    if config is not None:
        return load_defaults(config if isinstance(config, Mapping) else str(config))
    name, model_config = _identify(model)
    return find_defaults(model_config, name)


def _identify(model: ModelRef) -> tuple[Optional[str], Optional[PretrainedConfig]]:
    """(short name or None, transformers config or None) of a model reference."""
    if isinstance(model, PretrainedConfig):
        return None, model
    if isinstance(model, (str, os.PathLike)):
        name = str(model)
        if name in all_defaults():
            return name, None
        try:
            return name, AutoConfig.from_pretrained(resolve_model_path(name), local_files_only=True)
        except OSError as error:
            raise ModelNotAvailableError(f"{name!r} has no local config.json: pass a model folder or a short name.") from error
    peft_config = getattr(model, "peft_config", None) or {}
    alias = next((getattr(c, "base_model_alias", None) for c in peft_config.values()), None)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return alias, getattr(base, "config", None)


def find_defaults(model_config: Optional[PretrainedConfig], name: Optional[str] = None) -> Optional[dict[str, Any]]:
    """Defaults for a model: by its short name if shipped, else by its shape (hidden, MLP width, depth)."""
    if name in all_defaults():
        return all_defaults()[name]
    if model_config is None:
        return None
    text_config = model_config.get_text_config()
    shape = {key: getattr(text_config, key, None) for key in MATCH_KEYS}
    for defaults in all_defaults().values():
        match = defaults.get("match")  # a variant such as smollm2-135m-paper is chosen by name only
        if match and all(match.get(key) == value for key, value in shape.items()):
            return defaults
    return None
