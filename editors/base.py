"""`Editor`: the interface every editing method implements, so one harness scores them all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from editors.request import EditLike


@dataclass
class EditResult:
    """What applying one edit did; one line of `edits.jsonl`."""

    id: str
    steps: int
    loss: float
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific, e.g. best overlap with earlier edits

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "steps": self.steps, "loss": self.loss, "seconds": self.seconds, **self.extra}


class Editor(ABC):
    """Writes edits into `model` one after another; earlier edits are kept between calls.

    The harness reads the edited model only through `logits` and `generate`, so methods that
    need extra routing inputs (MEMOIR's prompt mask) take them there and others ignore them.
    """

    name: str = "editor"

    def __init__(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model
        self.tokenizer = tokenizer

    @abstractmethod
    def edit(self, request: EditLike) -> EditResult:
        """Apply one edit on top of all earlier ones."""

    def edit_stream(
        self, requests: Iterable[EditLike], on_edit: Optional[Callable[[EditResult], None]] = None
    ) -> list[EditResult]:
        """Apply edits in order (`EditRequest`s or `(prompt, target)` pairs); `on_edit` sees each result at once."""
        results = []
        for request in requests:
            result = self.edit(request)
            results.append(result)
            if on_edit is not None:
                on_edit(result)
        return results

    def output_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The named weights and buffers the model's outputs depend on now, by which the harness
        recognises a model it has scored before: all of them, unless a method knows some are idle."""
        yield from self.model.named_parameters()
        yield from self.model.named_buffers()

    @torch.no_grad()
    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_mask: torch.Tensor, logits_to_keep: int = 0
    ) -> torch.Tensor:
        """Teacher-forced logits of the edited model; `prompt_mask` marks the prompt part of each row.
        Of the last `logits_to_keep` columns only (0: all), as transformers keeps them."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask),
                          logits_to_keep=logits_to_keep).logits

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy continuation of left-padded prompts; returns only the new tokens."""
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return out[:, input_ids.shape[1]:]


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Rotary position ids that ignore left padding (HF LLaMA does not derive them itself)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
