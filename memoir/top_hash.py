"""`TopHash`: a sparse, input-dependent column mask from a pooled activation feature."""

from __future__ import annotations

import torch
from torch import nn


class TopHash(nn.Module):
    """Top-k of |feature| mapped through a fixed random permutation of the columns.

    The permutation spreads edits over columns that are not the largest activations, so that
    edits of similar prompts do not all write into the same few hot columns.
    """

    def __init__(self, width: int, top_k: int, seed: int) -> None:
        super().__init__()
        self.top_k = top_k
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("permutation", torch.randperm(width, generator=generator))

    @property
    def width(self) -> int:
        return self.permutation.numel()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) features -> (B, D) bool masks with exactly k columns set per row."""
        top = features.abs().topk(self.top_k, dim=-1).indices
        masks = torch.zeros(features.shape, dtype=torch.bool, device=features.device)
        return masks.scatter_(-1, self.permutation[top], True)
