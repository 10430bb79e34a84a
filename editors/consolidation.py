"""Consolidation: re-writing the stored edits that later edits have worn down.

Preservation keeps a later edit's update away from what earlier edits read, but only softly: at
a thousand edits and more, every direction of a mask's columns is read by some earlier edit, and
the edits written long ago drift (their loss rises, although every prompt still routes to its
own mask). The ledger keeps each edit's prompt and target, so the editor can measure that drift
and write the drifted edits again, each under its own stored mask and with the same
preservation as a new edit. This module measures; `MemoirEditor.consolidate` re-writes.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from editors.teacher_forcing import per_row_nll, teacher_forced_batch


@torch.no_grad()
def stored_edit_losses(
    peft_model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[tuple[str, str]],
    masks: torch.Tensor,
    batch_size: int = 16,
) -> torch.Tensor:
    """(N,) loss of each stored edit's target after its plain prompt (no context prefix), under its own (N, D) mask.

    Rows are batched by length, so that a short question is not padded to a passage's length in a
    mixed ledger, and the LM head runs only over the columns that predict target tokens.
    """
    order = sorted(range(len(pairs)), key=lambda row: len(pairs[row][0]) + len(pairs[row][1]))
    losses = torch.zeros(len(pairs))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = teacher_forced_batch(tokenizer, [pairs[row] for row in rows], padding_side="right").to(peft_model.device)
        positions = batch.target_positions
        first = int(positions.min())
        keep = torch.arange(first, int(positions.max()) + 1, device=positions.device)
        with peft_model.base_model.forcing_masks(masks[rows]):
            logits = peft_model(**batch.model_inputs(), use_cache=False, logits_to_keep=keep).logits
        losses[rows] = per_row_nll(logits[batch.target_rows, positions - first], batch).cpu()
    return losses
