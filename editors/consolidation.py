"""Consolidation: re-writing the stored edits that later edits have worn down.

Preservation keeps a later edit's update away from what earlier edits read, but only softly: at
a thousand edits and more, every direction of a mask's columns is read by some earlier edit, and
the edits written long ago drift (their loss rises, although every prompt still routes to its
own mask). The ledger keeps each edit's prompt and target, so the editor can measure that drift
and write the drifted edits again, each under its own stored mask and with the same
preservation as a new edit. This module measures, from each stored edit's lower layers kept
between checks; `MemoirEditor.consolidate` re-writes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from editors.edit_loss import CachedEditLoss, LowerLayers
from editors.teacher_forcing import teacher_forced_batch

# What the stored edits' cached lower layers may hold: the mixed edit-set stream of 1675 edits
# (1000 questions, 675 passages) takes about 0.4 GB on SmolLM2-135M, and a miss costs one forward.
CACHE_BYTES = 2**30


def _nbytes(loss: CachedEditLoss) -> int:
    """Bytes held by one cached edit: its hidden states and every distinct tensor its layers receive."""
    tensors = {id(loss.h): loss.h}
    for kwargs in loss.layer_kwargs:
        for value in kwargs.values():
            for tensor in value if isinstance(value, tuple) else (value,):
                if isinstance(tensor, torch.Tensor):
                    tensors[id(tensor)] = tensor
    return sum(tensor.nbytes for tensor in tensors.values())


class StoredEditLosses:
    """The loss of stored edits on their plain prompts, each under its own mask: their drift.

    A stored edit's prompt gives the same hidden states below the edited layer at every check (R
    sits at that layer), so each edit's are kept (up to `max_bytes`, the least recently checked
    dropped first) and a check runs only the edited layer and those above, as training does: on
    SmolLM2 6 of 30 layers, which makes checking an edit's neighbours after every edit affordable.
    """

    def __init__(self, peft_model: nn.Module, tokenizer: PreTrainedTokenizerBase, max_bytes: int = CACHE_BYTES) -> None:
        self.model, self.tokenizer, self.max_bytes = peft_model, tokenizer, max_bytes
        self._cached: OrderedDict[tuple[str, str], tuple[CachedEditLoss, int]] = OrderedDict()
        self._bytes = 0

    @torch.no_grad()
    def __call__(self, pairs: Sequence[tuple[str, str]], masks: torch.Tensor) -> torch.Tensor:
        """(N,) loss of each (prompt, target) pair's target after its prompt, under its own row of the (N, D) masks.

        Each edit runs the layers above R on its own; the LM head runs once over all their target positions.
        """
        if not pairs:
            return torch.zeros(0)
        row_masks = [masks[row : row + 1] for row in range(len(pairs))]
        kept = [self.kept(pair, mask) for pair, mask in zip(pairs, row_masks)]
        states = [loss.target_states(mask) for loss, mask in zip(kept, row_masks)]
        logits = kept[0].head(torch.cat(states)).split([len(s) for s in states])
        return torch.stack([loss.loss_of(rows).float() for loss, rows in zip(kept, logits)]).cpu()

    def kept(self, pair: tuple[str, str], mask: torch.Tensor, lower: Optional[LowerLayers] = None) -> CachedEditLoss:
        """The (prompt, target) pair's plain row with its lower layers run (or taken from `lower`, of that row), kept
        for the next check; `mask` is the one it is built with (`under` takes any)."""
        if pair in self._cached:
            self._cached.move_to_end(pair)
            return self._cached[pair][0]
        batch = teacher_forced_batch(self.tokenizer, [pair], padding_side="right").to(self.model.device)
        loss = CachedEditLoss(self.model, batch, mask, lower)
        size = _nbytes(loss)
        self._cached[pair] = (loss, size)
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._cached) > 1:
            self._bytes -= self._cached.popitem(last=False)[1][1]
        return loss
