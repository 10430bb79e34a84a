"""`ResidualMemory`: the trained matrix R, the background mean, TopHash and the mask index."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from memoir.errors import AdapterShapeError
from memoir.mask_index import MaskIndex
from memoir.top_hash import TopHash


@dataclass
class Routing:
    """What the memory does for each row of a batch: the mask to apply and whether to apply it."""

    masks: torch.Tensor  # (B, D) bool, the stored mask of the best match (or a forced mask)
    active: torch.Tensor  # (B,) bool, best overlap >= tau
    overlap: torch.Tensor  # (B,) best overlap, for logs and diagnostics


class ResidualMemory(nn.Module):
    """Everything MEMOIR adds beside one frozen `down_proj` (d x D).

    `R` starts at zero and is the only trained tensor; the output for a routed row is
    `W0·a + R·(a ⊙ m)`, for every other row exactly `W0·a`.
    """

    def __init__(
        self, in_features: int, out_features: int, top_k: int, tau: float, seed: int, center_residual: bool = False
    ) -> None:
        super().__init__()
        self.tau = tau
        self.center_residual = center_residual
        self.R = nn.Parameter(torch.zeros(out_features, in_features))
        self.register_buffer("background", torch.zeros(in_features))
        self.top_hash = TopHash(in_features, top_k, seed)
        self.index = MaskIndex(in_features, top_k)

    @property
    def num_edits(self) -> int:
        return len(self.index)

    def mask_of(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled activations -> (B, D) TopHash masks of the background-centred feature."""
        return self.top_hash(pooled.float() - self.background.float())

    def route(self, pooled: torch.Tensor) -> Routing:
        """Retrieve the best stored mask per row and decide, by tau, whether it fires."""
        match = self.index.best_match(self.mask_of(pooled))
        found = match.index >= 0
        masks = torch.zeros(pooled.shape, dtype=torch.bool, device=pooled.device)
        if found.any():
            masks[found] = self.index.masks[match.index[found]].to(pooled.device)
        return Routing(masks, found & (match.overlap >= self.tau), match.overlap)

    def residual(self, a: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """R·(a ⊙ m) for (B, S, D) inputs and (B, D) masks; gradients reach only masked columns.

        With `center_residual`, R sees `a - background`: the component every input shares (e.g.
        at a prompt's final "?") then no longer carries one edit's update into another's output.
        """
        if self.center_residual:
            a = a - self.background.to(a.dtype)
        masked = a * masks.unsqueeze(1).to(a.dtype)
        return torch.nn.functional.linear(masked, self.R.to(a.dtype))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        saved = state_dict.get(prefix + "R")
        if saved is not None and saved.shape != self.R.shape:
            raise AdapterShapeError(
                f"The adapter's R has shape {tuple(saved.shape)} but this base model's down_proj needs "
                f"{tuple(self.R.shape)} (hidden x MLP width): load it onto the base model it was saved from."
            )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
