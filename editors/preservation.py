"""Keeping earlier edits as written: a new edit's update avoids the inputs earlier edits are read on.

A new edit trains R's columns in its mask S. An earlier edit whose mask shares columns with S
reads them too, so the update moves that edit's output by dR·k for each of its (centred, masked)
inputs k. The memory keeps C = sum of k kᵀ over earlier edits' inputs, each k scaled to unit
norm (one D x D block per bank of R: an edit reads and writes one bank, so C between banks is
zero), and the new edit's gradient in its columns is multiplied by (I + λ·C_SS)⁻¹: a direction
that earlier edits use n times is damped about n·λ-fold, an unused one not at all. This is
AlphaEdit's null-space projection made soft (new edits can still be written) and restricted to
the mask (the only columns an edit changes). Since each step is a gradient, which lies in the span
of the edit's own inputs K, times (I + λ·C_SS)⁻¹, the update written is already the one of least
(I + λ·C)-norm among all that give K the same outputs: projecting it after the edit would change
nothing, and what remains to choose is λ, the weights of the keys in C, and how far the edit moves
its own outputs.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import torch

# Share of a prompt's words each variant drops: the one rate measured (README, "Mixed stream").
DROPOUT_RATE = 0.25


@dataclass
class Preconditioner:
    """(I + λ·C_SS)⁻¹ on the mask columns `columns` of R's gradient."""

    columns: torch.Tensor  # (k,) long
    inverse: torch.Tensor  # (k, k)

    @classmethod
    def for_mask(cls, covariance: torch.Tensor, mask: torch.Tensor, strength: float) -> "Preconditioner":
        """For a (banks, D, D) C and a (banks·D,) mask over R's columns: C_SS is zero between banks."""
        columns = mask.reshape(-1).nonzero().squeeze(-1).to(covariance.device)
        bank, within = columns.div(covariance.shape[-1], rounding_mode="floor"), columns % covariance.shape[-1]
        block = covariance[bank[:, None], within[:, None], within[None, :]] * (bank[:, None] == bank[None, :])
        eye = torch.eye(len(columns), dtype=block.dtype, device=block.device)
        return cls(columns, torch.linalg.inv(eye + strength * block))

    def apply_(self, grad: torch.Tensor) -> None:
        """Replace the gradient's mask columns by their preconditioned values, in place."""
        grad[:, self.columns] = grad[:, self.columns] @ self.inverse.to(grad.dtype)


def unit_keys(activations: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, D) unit-norm masked inputs at the (B, S) `positions` of (B, S, D) `activations`."""
    keys = activations[positions.bool()].float() * mask.reshape(1, -1).float()
    return keys / keys.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def capped_keys(keys: torch.Tensor, limit: int) -> torch.Tensor:
    """`keys` scaled so that their weight in C (the sum of their squared norms) is at most `limit`; 0: no limit.

    A unit key weighs 1, so a long passage would otherwise damp later edits far more than a short
    question does, although each is one edit to keep."""
    weight = float(keys.pow(2).sum())
    if limit == 0 or weight <= limit:
        return keys
    return keys * (limit / weight) ** 0.5


def add_keys(covariance: torch.Tensor, keys: torch.Tensor, weight: float = 1.0) -> None:
    """C_b += weight · Σ k_b k_bᵀ for each bank b of the (banks, D, D) C and the banks·D-wide keys, in place
    (weight -1 takes an edit's keys back out). Only the banks' own blocks are kept: an edit's key lies in one."""
    banked = keys.reshape(keys.shape[0], *covariance.shape[:2]).transpose(0, 1)  # (banks, N, D)
    covariance.add_(banked.transpose(1, 2) @ banked, alpha=weight)


def dropout_variants(prompt: str, count: int) -> list[str]:
    """`count` copies of `prompt`, each missing about DROPOUT_RATE of its words (never all of them).

    Paraphrases read R on inputs near the prompt's, not on the prompt's own, so protecting these
    too keeps later edits off what an edit's paraphrases read. Seeded by the prompt's text: the
    same variants come back when a stored edit's inputs are taken out of C again.
    """
    rng = random.Random(zlib.crc32(prompt.encode("utf-8")))
    words = prompt.split()
    variants = []
    for _ in range(count):
        kept = [word for word in words if rng.random() >= DROPOUT_RATE]
        variants.append(" ".join(kept or words))
    return variants
