"""`key=value` settings on a benchmark's command line, read the way configs/ files are."""

from __future__ import annotations

from typing import Any

import yaml


def parse_overrides(settings: list[str]) -> dict[str, Any]:
    """`key=value` pairs, each value read as a YAML scalar (as in configs/); `none` is None."""
    overrides = {}
    for setting in settings:
        key, _, text = setting.partition("=")
        overrides[key] = None if text.lower() == "none" else yaml.safe_load(text)
    return overrides
