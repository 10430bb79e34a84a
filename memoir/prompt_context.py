"""`PromptContext`: what a forward pass tells the memory about its rows.

The wrapped `down_proj` sees only activations; which positions are prompt tokens (not padding,
not a teacher-forced target) and whether this call is a cached decode step are known only at
the model's entry. `MemoirModel` derives them there and hands them to the layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch


@dataclass
class PromptContext:
    pool_mask: torch.Tensor  # (B, S) bool over the positions of this call: the prompt tokens to pool
    is_decode: bool  # a cached decode step: reuse the routing chosen at prefill
    input_ids: Optional[torch.Tensor] = None  # (B, S) token ids of this call, for per-token pooling weights


def _sequence_length(inputs: dict[str, Any]) -> tuple[int, int]:
    tensor = inputs.get("input_ids")
    if tensor is None:
        tensor = inputs.get("inputs_embeds")
    if tensor is None:
        raise TypeError("MEMOIR needs input_ids or inputs_embeds to route a forward pass.")
    return tensor.shape[0], tensor.shape[1]


def _cached_length(inputs: dict[str, Any]) -> int:
    # transformers 5 names the KV cache `cache`; older code and some models say `past_key_values`.
    cache = inputs.get("cache", inputs.get("past_key_values"))
    if cache is None or not hasattr(cache, "get_seq_length"):
        return 0
    return int(cache.get_seq_length())


def prompt_context_from_inputs(inputs: dict[str, Any], prompt_mask: Optional[torch.Tensor]) -> PromptContext:
    """Build the context from a model call's arguments.

    `prompt_mask` (B, S), True on prompt tokens, lets a teacher-forced `prompt + target` call
    pool the prompt only; without it every non-padding token of the call is prompt.
    """
    batch, length = _sequence_length(inputs)
    device = (inputs.get("input_ids") if inputs.get("input_ids") is not None else inputs["inputs_embeds"]).device
    attention_mask = inputs.get("attention_mask")
    pool_mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    if attention_mask is not None and attention_mask.dim() == 2:
        pool_mask &= attention_mask[:, -length:].bool()
    if prompt_mask is not None:
        if prompt_mask.shape != (batch, length):
            raise ValueError(
                f"prompt_mask must have the shape of input_ids {(batch, length)}, got {tuple(prompt_mask.shape)}."
            )
        pool_mask &= prompt_mask.to(device=device, dtype=torch.bool)
    return PromptContext(pool_mask, is_decode=_cached_length(inputs) > 0, input_ids=inputs.get("input_ids"))
