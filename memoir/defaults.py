"""Per-model defaults from the YAML files in `configs/` (adapter and editor hyperparameters)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml
from transformers import PretrainedConfig

from memoir.errors import InvalidConfigError

MATCH_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers")


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


def load_defaults(name_or_path: str) -> dict[str, Any]:
    """A shipped config by name, or a YAML file of the same layout (`memoir:` and `editor:` sections)."""
    path = Path(name_or_path)
    if path.is_file():
        loaded = yaml.safe_load(path.read_text())
        if not isinstance(loaded, dict) or "memoir" not in loaded:
            raise InvalidConfigError(f"{path} must be a YAML mapping with a `memoir:` section (see configs/*.yaml).")
        return loaded
    return defaults_named(name_or_path)


def find_defaults(model_config: PretrainedConfig, name: Optional[str] = None) -> Optional[dict[str, Any]]:
    """Defaults for a model: by its short name if shipped, else by its shape (hidden, MLP width, depth)."""
    if name in all_defaults():
        return all_defaults()[name]
    text_config = model_config.get_text_config()
    shape = {key: getattr(text_config, key, None) for key in MATCH_KEYS}
    for defaults in all_defaults().values():
        if all(defaults["match"].get(key) == value for key, value in shape.items()):
            return defaults
    return None
