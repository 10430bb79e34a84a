"""`MaskIndex`: the stored edit masks and overlap retrieval against them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from memoir.errors import AdapterShapeError


@dataclass
class Match:
    """Best stored mask per query row: its index (-1 if none stored) and overlap in [0, 1], and the
    overlap of the `rank`-th best (0 while fewer are stored), against which a clear best is judged."""

    index: torch.Tensor
    overlap: torch.Tensor
    ranked: torch.Tensor


class MaskIndex(nn.Module):
    """Binary masks of all stored edits, one row per edit, in edit order, and beside each its
    unit-length centred prompt feature (fp16), which a second routing stage compares with a query's,
    and the bank of R it is written in (`MemoirConfig.banks`).

    The buffers hold exactly `len(self)` rows; `_load_from_state_dict` resizes them to the saved
    count, so a saved adapter needs no fixed capacity.
    """

    def __init__(self, width: int, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.register_buffer("masks", torch.zeros(0, width, dtype=torch.bool))
        self.register_buffer("features", torch.zeros(0, width, dtype=torch.float16))
        self.register_buffer("banks", torch.zeros(0, dtype=torch.long))

    def __len__(self) -> int:
        return self.masks.shape[0]

    @property
    def width(self) -> int:
        return self.masks.shape[1]

    @property
    def bytes_per_edit(self) -> int:
        """What the adapter stores for each edit: one row of each buffer (mask, feature, bank)."""
        return sum(buffer.shape[1:].numel() * buffer.element_size() for buffer in self.buffers())

    def add(self, masks: torch.Tensor, features: torch.Tensor, banks: Optional[torch.Tensor] = None) -> None:
        """Append (N, D) bool masks, the (N, D) centred prompt features they were hashed from and the (N,) banks
        they are written in (default 0)."""
        unit = torch.nn.functional.normalize(features.float(), dim=-1)
        banks = torch.zeros(masks.shape[0], dtype=torch.long) if banks is None else banks
        self.masks = torch.cat([self.masks, masks.to(device=self.masks.device, dtype=torch.bool)])
        self.features = torch.cat([self.features, unit.to(device=self.features.device, dtype=torch.float16)])
        self.banks = torch.cat([self.banks, banks.to(device=self.banks.device, dtype=torch.long)])

    def similarity(self, queries: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Cosine between each (B, D) centred query feature and the stored feature of edit `index[b]`."""
        stored = self.features[index.clamp(min=0)].to(device=queries.device, dtype=torch.float32)
        return (torch.nn.functional.normalize(queries.float(), dim=-1) * stored).sum(dim=-1)

    def remove(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Drop the masks and features of `rows` (edits taken back) and return them; the others keep their order."""
        keep = torch.ones(len(self), dtype=torch.bool, device=self.masks.device)
        keep[list(rows)] = False
        removed = (self.masks[~keep], self.features[~keep])
        self.masks, self.features, self.banks = self.masks[keep], self.features[keep], self.banks[keep]
        return removed

    def overlaps(self, queries: torch.Tensor) -> torch.Tensor:
        """(B, D) bool queries -> (B, N) overlap |q ∩ M_j| / k."""
        dtype = torch.float32
        return (queries.to(dtype) @ self.masks.to(device=queries.device, dtype=dtype).T) / self.top_k

    def best_match(self, queries: torch.Tensor, rank: int = 1) -> Match:
        """Best stored mask for each query row; index -1 and overlap 0 when the index is empty.
        Only the `rank` best overlaps are sorted out, so a caller without a margin pays for a max."""
        batch = queries.shape[0]
        if len(self) == 0:
            zeros = torch.zeros(batch, device=queries.device)
            return Match(torch.full((batch,), -1, device=queries.device), zeros, zeros)
        top = self.overlaps(queries).topk(min(rank, len(self)), dim=-1)
        ranked = top.values[:, -1] if len(self) >= rank else torch.zeros(batch, device=queries.device)
        return Match(top.indices[:, 0], top.values[:, 0], ranked)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        saved = state_dict.get(prefix + "masks")
        if saved is not None:
            if saved.dim() != 2 or saved.shape[1] != self.width:
                raise AdapterShapeError(
                    f"Stored masks have shape {tuple(saved.shape)} but this model's MLP width is {self.width}: "
                    "load the adapter onto the base model it was made for (see base_model_name_or_path)."
                )
            self.masks = torch.zeros(saved.shape, dtype=torch.bool, device=self.masks.device)
            self.features = torch.zeros(saved.shape, dtype=torch.float16, device=self.features.device)
            self.banks = torch.zeros(saved.shape[0], dtype=torch.long, device=self.banks.device)
            # Adapters saved before banks existed have one R: every edit is in bank 0.
            state_dict.setdefault(prefix + "banks", self.banks.clone())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
