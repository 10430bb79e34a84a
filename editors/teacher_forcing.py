"""Token rows `prompt + " " + target`: the one tokenisation rule that editing and scoring share.

The target is tokenised as `" " + target` without special tokens: it keeps the leading space
the model sees after the prompt (on SmolLM2 "Yemen" and " Yemen" are different tokens, and
scoring the unspaced form under-reports Rel). The prompt keeps whatever special
tokens the tokenizer adds (a BOS, if any).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from editors.base import positions
from editors.errors import BadRecordError, TokenizationError
from editors.request import EditRequest

# The longest row (prompt + answer) an edit or a score may use, whatever the model's positions: a
# fact is a sentence or two, and a row of thousands of tokens takes minutes and gigabytes per step.
MAX_ROW_TOKENS = 1024


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id that fills padding: the pad token, else EOS (padding is masked out anyway)."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return token_id
    raise TokenizationError("the tokenizer has neither a pad nor an EOS token; set tokenizer.pad_token")


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """Prompt tokens, with the special tokens (BOS) the tokenizer adds to a sequence."""
    ids = tokenizer(prompt)["input_ids"]
    if not ids:
        raise TokenizationError(f"prompt {prompt!r} tokenises to no tokens; its target could not be predicted")
    return ids


def target_ids(tokenizer: PreTrainedTokenizerBase, target: str) -> list[int]:
    """Tokens of `" " + target` without special tokens: the target as it follows a prompt."""
    if not target.strip():
        raise TokenizationError(f"target {target!r} is empty; an empty target cannot be trained or scored")
    ids = tokenizer(" " + target.lstrip(), add_special_tokens=False)["input_ids"]
    if not ids:
        raise TokenizationError(f"target {target!r} tokenises to no tokens")
    return ids


def row_length_check(
    tokenizer: PreTrainedTokenizerBase, max_positions: Optional[int], reserved: int = 0
) -> Callable[[EditRequest], None]:
    """A check for `load_edit_data` that refuses a request whose rows cannot be trained or scored.

    Every row a request gives (prompt, rephrase and OOD rephrase each followed by the target;
    the locality prompt and its answer) must fit in min(max_positions, MAX_ROW_TOKENS) tokens
    less `reserved` (the context prefixes an edit puts in front).
    """
    limit = min(max_positions or MAX_ROW_TOKENS, MAX_ROW_TOKENS) - reserved

    def check(request: EditRequest) -> None:
        rows = [(name, getattr(request, name), request.target) for name in ("prompt", "rephrase", "ood_rephrase")]
        rows.append(("locality_prompt", request.locality_prompt, request.locality_answer))
        for name, prompt, answer in rows:
            if prompt is None:
                continue
            try:
                length = len(prompt_ids(tokenizer, prompt)) + (len(target_ids(tokenizer, answer)) if answer else 0)
            except TokenizationError as error:
                raise BadRecordError(f"{name}: {error}") from None
            if length > limit:
                raise BadRecordError(f"{name} and its answer take {length} tokens, more than the {limit} an edit allows; shorten them")

    return check


@dataclass
class TeacherForcedBatch:
    """Padded rows; `target_mask` is True on target tokens (all False for prompt-only rows).

    The logits that predict the token at column i sit at column i - 1.
    """

    input_ids: torch.Tensor  # (B, S)
    attention_mask: torch.Tensor  # (B, S)
    prompt_mask: torch.Tensor  # (B, S) bool, the tokens MEMOIR routes on
    target_mask: torch.Tensor  # (B, S) bool

    def to(self, device: torch.device | str) -> "TeacherForcedBatch":
        return TeacherForcedBatch(*(getattr(self, f.name).to(device) for f in fields(self)))

    def last_columns(self, count: int) -> "TeacherForcedBatch":
        """The batch's last `count` columns: what logits kept for those columns align with."""
        return TeacherForcedBatch(*(getattr(self, f.name)[:, -count:] for f in fields(self)))

    @property
    def target_rows(self) -> torch.Tensor:
        return self.target_mask.nonzero(as_tuple=True)[0]

    @property
    def target_positions(self) -> torch.Tensor:
        """For each target token (row-major), the column whose logits predict it."""
        return self.target_mask.nonzero(as_tuple=True)[1] - 1

    @property
    def target_tokens(self) -> torch.Tensor:
        return self.input_ids[self.target_mask]

    @property
    def position_ids(self) -> torch.Tensor:
        return positions(self.attention_mask)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return dict(input_ids=self.input_ids, attention_mask=self.attention_mask, position_ids=self.position_ids)


def _padded(parts: Sequence[tuple[list[int], list[int]]], pad: int, padding_side: str) -> TeacherForcedBatch:
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    width = max(len(prompt) + len(target) for prompt, target in parts)
    shape = (len(parts), width)
    batch = TeacherForcedBatch(
        torch.full(shape, pad, dtype=torch.long),
        torch.zeros(shape, dtype=torch.long),
        torch.zeros(shape, dtype=torch.bool),
        torch.zeros(shape, dtype=torch.bool),
    )
    for row, (prompt, target) in enumerate(parts):
        start = width - len(prompt) - len(target) if padding_side == "left" else 0
        middle, end = start + len(prompt), start + len(prompt) + len(target)
        batch.input_ids[row, start:end] = torch.tensor(prompt + target)
        batch.attention_mask[row, start:end] = 1
        batch.prompt_mask[row, start:middle] = True
        batch.target_mask[row, middle:end] = True
    return batch


def teacher_forced_batch(
    tokenizer: PreTrainedTokenizerBase, pairs: Sequence[tuple[str, str]], padding_side: str = "left"
) -> TeacherForcedBatch:
    """One row `prompt + " " + target` per `(prompt, target)` pair."""
    if not pairs:
        raise ValueError("teacher_forced_batch needs at least one (prompt, target) pair")
    parts = [(prompt_ids(tokenizer, prompt), target_ids(tokenizer, target)) for prompt, target in pairs]
    return _padded(parts, pad_id(tokenizer), padding_side)


def prompt_batch(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> TeacherForcedBatch:
    """Left-padded prompts alone, for greedy generation."""
    if not prompts:
        raise ValueError("prompt_batch needs at least one prompt")
    return _padded([(prompt_ids(tokenizer, prompt), []) for prompt in prompts], pad_id(tokenizer), "left")


def per_row_nll(target_logits: torch.Tensor, batch: TeacherForcedBatch) -> torch.Tensor:
    """(N, V) logits at the target positions -> (B,) mean negative log-likelihood of each row's target."""
    nll = F.cross_entropy(target_logits.float(), batch.target_tokens, reduction="none")
    rows, count = batch.target_rows, batch.target_mask.sum(dim=1).clamp(min=1)
    return torch.zeros(batch.input_ids.shape[0], device=nll.device).index_add(0, rows, nll) / count
