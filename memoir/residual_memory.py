"""`ResidualMemory`: the trained matrix R, the background mean, TopHash and the mask index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from memoir.config import MemoirConfig
from memoir.errors import AdapterShapeError
from memoir.mask_index import MaskIndex
from memoir.top_hash import TopHash


@dataclass
class Routing:
    """What the memory does for each row of a batch: the mask to apply and whether to apply it."""

    masks: torch.Tensor  # (B, banks·D) bool, the stored mask of the best match in its bank's block (or a forced mask)
    active: torch.Tensor  # (B,) bool, the best match passed every routing stage
    overlap: torch.Tensor  # (B,) best overlap, for logs and diagnostics
    index: torch.Tensor  # (B,) the best match's edit number (-1 if none is stored or the masks were forced)


class ResidualMemory(nn.Module):
    """Everything MEMOIR adds beside one frozen `down_proj` (d x D).

    `R` starts at zero and is the only trained tensor; the output for a routed row is
    `W0·a + R·(a ⊙ m)`, for every other row exactly `W0·a`. With `banks` > 1, R is that many
    d x D matrices side by side, each edit's mask selects columns in its own bank's block, and the
    input is repeated once per bank: an edit then reads and writes its bank alone.
    """

    def __init__(self, in_features: int, out_features: int, config: MemoirConfig) -> None:
        super().__init__()
        self.tau = config.tau
        self.min_similarity = config.min_similarity
        self.min_margin = config.min_margin
        self.margin_rank = config.margin_rank
        self.center_residual = config.center_residual
        self.banks = config.banks
        self.R = nn.Parameter(torch.zeros(out_features, self.banks * in_features))
        self.register_buffer("background", torch.zeros(in_features))
        # Per-token IDF weights of the pooled feature (pooling="idf"); empty until an editor sets them.
        self.register_buffer("token_weights", torch.zeros(0))
        # Σ k kᵀ of earlier edits' unit-norm masked inputs, one D x D block per bank (banks x D x D), kept by an
        # editor that protects them while writing new edits; empty unless it does. Not read at inference.
        self.register_buffer("key_covariance", torch.zeros(0))
        self.top_hash = TopHash(in_features, config.top_k, config.permutation_seed)
        self.index = MaskIndex(in_features, config.top_k)
        # Masks of forgotten edits: an input nearer to one of them than to every stored edit is not routed.
        self.forgotten = MaskIndex(in_features, config.top_k)

    @property
    def num_edits(self) -> int:
        return len(self.index)

    def centred(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled activations minus the background mean: what is specific to each prompt."""
        return pooled.float() - self.background.float()

    def mask_of(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled activations -> (B, D) TopHash masks of the background-centred feature."""
        return self.top_hash(self.centred(pooled))

    def store(self, pooled: torch.Tensor, bank: int = 0) -> torch.Tensor:
        """Store the (1, D) pooled prompt feature of a new edit, written in `bank`; returns its (1, D) mask."""
        mask = self.mask_of(pooled)
        self.index.add(mask, self.centred(pooled), torch.tensor([bank]))
        return mask

    def write_masks(self, masks: torch.Tensor, banks: torch.Tensor) -> torch.Tensor:
        """(N, D) masks and (N,) banks -> the (N, banks·D) masks of the columns of R they select."""
        if self.banks == 1:
            return masks
        wide = masks.new_zeros(masks.shape[0], self.banks, masks.shape[1])
        wide[torch.arange(masks.shape[0], device=masks.device), banks.to(masks.device)] = masks
        return wide.reshape(masks.shape[0], -1)

    def stored_masks(self, rows: Sequence[int]) -> torch.Tensor:
        """The (N, banks·D) masks of R's columns that the stored edits at `rows` are written in."""
        rows = list(rows)
        return self.write_masks(self.index.masks[rows], self.index.banks[rows])

    def route(self, pooled: torch.Tensor) -> Routing:
        """Retrieve the best stored mask per row and decide whether it fires: its overlap must reach
        tau; with `min_similarity`, the cosine with that edit's stored feature must reach it too; with
        `min_margin`, the overlap must beat the `margin_rank`-th best by that much."""
        centred = self.centred(pooled)
        return self.route_centred(self.top_hash(centred), centred)

    def route_centred(self, queries: torch.Tensor, centred: torch.Tensor) -> Routing:
        """`route` for (B, D) query masks and their centred features; a row nearer to a forgotten
        edit's mask than to every stored one stays unrouted, so it gets the unedited output."""
        match = self.index.best_match(queries, 1 if self.min_margin is None else self.margin_rank)
        found = match.index >= 0
        masks = torch.zeros(queries.shape[0], self.R.shape[1], dtype=torch.bool, device=queries.device)
        if found.any():
            best = match.index[found].to(self.index.masks.device)  # indexed as a tensor: no host sync per prefill
            masks[found] = self.write_masks(self.index.masks[best], self.index.banks[best]).to(queries.device)
        active = found & (match.overlap >= self.tau)
        if self.min_similarity is not None and found.any():
            active &= self.index.similarity(centred, match.index) >= self.min_similarity
        if self.min_margin is not None:
            active &= match.overlap - match.ranked >= self.min_margin
        if len(self.forgotten) > 0:
            active &= ~(self.forgotten.best_match(queries).overlap > match.overlap)
        return Routing(masks, active, match.overlap, match.index)

    def centred_inputs(self, a: torch.Tensor) -> torch.Tensor:
        """What R reads of the (B, S, D) inputs: `a - background` with `center_residual`, else `a`, once per bank."""
        centred = a - self.background.to(a.dtype) if self.center_residual else a
        return centred.repeat(1, 1, self.banks) if self.banks > 1 else centred

    def residual(self, a: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """R·(a ⊙ m) for (B, S, D) inputs and (B, banks·D) masks; gradients reach only masked columns.

        With `center_residual`, R sees `a - background`: the component every input shares (e.g.
        at a prompt's final "?") then no longer carries one edit's update into another's output.
        """
        masked = self.centred_inputs(a) * masks.unsqueeze(1).to(a.dtype)
        return torch.nn.functional.linear(masked, self.R.to(a.dtype))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        self._check_saved(state_dict, prefix)
        covariance = state_dict.get(prefix + "key_covariance")
        if covariance is not None and covariance.dim() == 2:
            state_dict[prefix + "key_covariance"] = diagonal_blocks(covariance, self.banks)
        for name in ("token_weights", "key_covariance"):  # sized by the editor, so take the saved size
            stored = state_dict.get(prefix + name)
            if stored is not None:
                setattr(self, name, torch.zeros(stored.shape, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def _check_saved(self, state_dict: dict[str, torch.Tensor], prefix: str) -> None:
        """Refuse a saved R or stored banks that this config's shape cannot hold, naming the likely cause."""
        saved = state_dict.get(prefix + "R")
        if saved is not None and saved.shape != self.R.shape:
            raise AdapterShapeError(
                f"The adapter's R has shape {tuple(saved.shape)} but this base model's down_proj and {self.banks} bank(s) "
                f"need {tuple(self.R.shape)} (hidden x banks·MLP width): load it onto the base model it was saved from, "
                "with the adapter_config.json saved beside it."
            )
        banks = state_dict.get(prefix + "index.banks")
        if banks is not None and banks.numel() and not 0 <= int(banks.min()) <= int(banks.max()) < self.banks:
            raise AdapterShapeError(
                f"The adapter's stored edits name banks {sorted(set(banks.tolist()))} but its R has {self.banks} bank(s): "
                "the weights file was altered after it was saved; save the adapter again from the model that wrote it."
            )
        covariance = state_dict.get(prefix + "key_covariance")
        width = self.R.shape[1] // self.banks
        allowed = {(0,), (self.R.shape[1],) * 2, (self.banks, width, width)}  # none, saved before per-bank C, per bank
        if covariance is not None and tuple(covariance.shape) not in allowed:
            raise AdapterShapeError(
                f"The adapter's C (key_covariance) has shape {tuple(covariance.shape)} but its R needs "
                f"{(self.banks, width, width)}: the weights file was altered after it was saved; delete that tensor "
                "from it, and MemoirEditor.from_pretrained builds C again from the adapter's ledger."
            )


def diagonal_blocks(covariance: torch.Tensor, banks: int) -> torch.Tensor:
    """A C saved before it was kept per bank, one (banks·D)² matrix, as its (banks, D, D) diagonal blocks: an edit's
    inputs lie in one bank, so nothing else in it was ever non-zero."""
    width = covariance.shape[0] // banks
    return covariance.reshape(banks, width, banks, width).diagonal(dim1=0, dim2=2).permute(2, 0, 1).contiguous()
