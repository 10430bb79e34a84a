"""`MemoirLayer`: the wrapped `down_proj`, computing `W0·a + R·(a ⊙ m)` per routed row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from memoir.config import MemoirConfig
from memoir.errors import InvalidConfigError, MemoirError, RoutingError
from memoir.prompt_context import PromptContext
from memoir.residual_memory import ResidualMemory, Routing


def pool(
    x: torch.Tensor, pool_mask: Optional[torch.Tensor], pooling: str, token_weights: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """(B, S, D) activations -> (B, D), averaged (or last) over the positions in `pool_mask`.

    `token_weights` (B, S) weigh the average (pooling="idf"): rare tokens, such as a subject's
    name, then outweigh the template words that questions about different subjects share.
    """
    if pool_mask is None:
        pool_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    weights = pool_mask.to(x.dtype)
    if token_weights is not None:
        weights = weights * token_weights.to(x.dtype)
    if pooling == "last":
        positions = torch.arange(x.shape[1], device=x.device)
        last = torch.where(pool_mask, positions, -1).max(dim=1).values.clamp(min=0)
        return x[torch.arange(x.shape[0], device=x.device), last]
    total = (x * weights.unsqueeze(-1)).sum(dim=1)
    return total / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


@dataclass
class RoutedPrefill:
    """How one prefill routed: its (B, D) pooled prompt feature and the routing chosen (None: an empty memory)."""

    pooled: torch.Tensor
    routing: Optional[Routing]


class MemoirLayer(nn.Module, BaseTunerLayer):
    """A `down_proj` with a residual memory beside it.

    Routing is chosen once per sequence, at prefill, from the pooled prompt activations, and
    reused for every cached decode step, so a generated answer uses one memory slot throughout.
    """

    adapter_layer_names = ("memoir_memory",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: MemoirConfig) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.memoir_memory = nn.ModuleDict()
        self.pooling = config.pooling
        self.idf_power = config.idf_power
        self.context: Optional[PromptContext] = None  # set by MemoirModel at the entry of each call
        self._prefill_routing: Optional[Routing] = None  # chosen at prefill, reused by the decode steps after it
        self.forced_masks: Optional[torch.Tensor] = None
        self.traced: Optional[list[RoutedPrefill]] = None  # open while MemoirModel.tracing_routing is
        self._disable_adapters = False
        self.merged_adapters = []
        self.update_layer(adapter_name, config)
        self._active_adapter = adapter_name

    def update_layer(self, adapter_name: str, config: MemoirConfig) -> None:
        width, hidden = self.base_layer.in_features, self.base_layer.out_features
        if config.top_k > width:
            raise InvalidConfigError(f"top_k={config.top_k} exceeds this MLP's width D={width}: choose k <= {width}.")
        memory = ResidualMemory(width, hidden, config)
        self.memoir_memory[adapter_name] = memory.to(self.base_layer.weight.device)

    @property
    def memory(self) -> ResidualMemory:
        return self.memoir_memory[self.active_adapters[0]]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters or self.active_adapters[0] not in self.memoir_memory:
            return out
        routing = self._routing_for(x)
        if routing is None:
            return out
        rows = routing.active.nonzero().squeeze(-1)
        if rows.numel() == 0:
            return out
        delta = self.memory.residual(x[rows], routing.masks[rows])
        return out.index_add(0, rows, delta.to(out.dtype))

    def _routing_for(self, x: torch.Tensor) -> Optional[Routing]:
        if self.forced_masks is not None:
            return self._forced_routing(x)
        if self.context is not None and self.context.is_decode:
            return self._decode_routing(x)
        pool_mask = None if self.context is None else self.context.pool_mask
        pooled = pool(x, pool_mask, self.pooling, self._token_weights())
        routing = None
        if self.memory.num_edits > 0:
            routing = self.memory.route(pooled)
            if pool_mask is not None:
                routing.active &= pool_mask.any(dim=1)
        self._prefill_routing = routing
        if self.traced is not None:
            self.traced.append(RoutedPrefill(pooled.detach(), routing))
        return routing

    def _token_weights(self) -> Optional[torch.Tensor]:
        """(B, S) IDF weights of this call's tokens with pooling="idf"; None means a plain average."""
        table = self.memory.token_weights
        if self.pooling != "idf" or self.context is None or self.context.input_ids is None or table.numel() == 0:
            return None
        ids = self.context.input_ids.clamp(0, table.numel() - 1)
        return table.to(ids.device)[ids] ** self.idf_power

    def _forced_routing(self, x: torch.Tensor) -> Routing:
        masks = self.forced_masks.to(x.device)
        if masks.shape[0] != x.shape[0]:
            masks = masks.expand(x.shape[0], -1)
        ones = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        return Routing(masks, ones, ones.float(), torch.full_like(ones, -1, dtype=torch.long))

    def _decode_routing(self, x: torch.Tensor) -> Optional[Routing]:
        routing = self._prefill_routing
        if routing is None:
            if self.memory.num_edits > 0:
                raise RoutingError("A cached decode step came before any prefill: run the prompt through the model first.")
            return None
        if routing.masks.shape[0] != x.shape[0]:
            raise RoutingError(
                f"The decode batch has {x.shape[0]} rows but the prefill routed {routing.masks.shape[0]}: "
                "reordering or resizing the batch between prefill and decode is not supported."
            )
        return routing

    def merge(self, *args: Any, **kwargs: Any) -> None:
        raise MemoirError("MEMOIR's residual depends on each input's mask, so it cannot be merged into the base weight.")

    def unmerge(self) -> None:
        raise MemoirError("MEMOIR adapters are never merged, so there is nothing to unmerge.")
