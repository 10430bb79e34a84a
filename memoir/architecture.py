"""Checks that a model has the gated MLP that MEMOIR wraps, before anything is injected."""

from __future__ import annotations

import re

from torch import nn

from memoir.errors import InvalidConfigError, UnsupportedArchitectureError

GATED_MLP_PARTS = ("gate_proj", "up_proj", "down_proj")
_DECODER_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)$")


def decoder_layers(model: nn.Module) -> dict[int, nn.Module]:
    """Decoder layers by index, found by the `...layers.<i>` naming shared by LLaMA, Mistral, Qwen2, Gemma."""
    found = {}
    for name, module in model.named_modules():
        match = _DECODER_LAYER.search(name)
        if match:
            found[int(match.group(1))] = module
    return found


def check_target(model: nn.Module, target_layer: int, module_path: str) -> None:
    """Raise a specific error if `target_layer` or its gated MLP is missing."""
    layers = decoder_layers(model)
    if not layers:
        raise UnsupportedArchitectureError(
            f"{type(model).__name__} has no `layers.<i>` decoder blocks: MEMOIR supports LLaMA-style decoders "
            "(LLaMA, Mistral, Qwen2, Gemma-3)."
        )
    if target_layer not in layers:
        raise InvalidConfigError(
            f"target_layer={target_layer} is out of range: this model has layers 0..{max(layers)}."
        )
    mlp_path = module_path.rsplit(".", 1)[0]
    try:
        mlp = layers[target_layer].get_submodule(mlp_path)
    except AttributeError:
        mlp = None
    missing = [part for part in GATED_MLP_PARTS if not isinstance(getattr(mlp, part, None), nn.Linear)]
    if missing:
        raise UnsupportedArchitectureError(
            f"Layer {target_layer} of {type(model).__name__} has no gated MLP at `{mlp_path}`: missing "
            f"{', '.join(missing)} (nn.Linear). MEMOIR wraps the down_proj of a gate/up/down MLP."
        )
