"""Per-record scores from teacher-forced logits or generated text, by EasyEdit's definitions (as WISE and MEMOIR use them).

Teacher-forced functions take `logits` (B, L, V), `input_ids` (B, L) and `target_mask` (B, L)
as built by `editors.teacher_forcing`: `target_mask` marks the target tokens, and the token at
column i is predicted by the logits at column i - 1. Only those columns are read, so padding
and prompt logits never count. Each function returns one float per row.

The scores themselves are computed by the `evaluate` modules in `eval_suites/metrics_modules/`
(one implementation, which anyone can also load with `evaluate.load(<folder>)`); this module
turns logits into their inputs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import evaluate
import torch

MODULES_DIR = Path(__file__).parent / "metrics_modules"


@lru_cache(maxsize=None)
def metric_module(name: str) -> evaluate.EvaluationModule:
    """A shipped `evaluate` module by folder name, loaded from disk (no Hub access), kept in memory.

    In memory rather than in arrow cache files: several accelerate processes score at once.
    """
    return evaluate.load(str(MODULES_DIR / name), keep_in_memory=True)


def _rows(values: torch.Tensor, counts: list[int]) -> list[list]:
    return [chunk.tolist() for chunk in torch.split(values.cpu(), counts)]


def _predicting_logits(logits: torch.Tensor, target_mask: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Logits that predict each target token, (N, V) in row-major order, and the count per row."""
    if logits.shape[:2] != target_mask.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match target_mask {tuple(target_mask.shape)}")
    if target_mask[:, 0].any():
        raise ValueError("a target token sits in column 0, where no logits predict it; put a prompt before it")
    counts = target_mask.sum(dim=1).tolist()
    if 0 in counts:
        raise ValueError(f"row {counts.index(0)} has no target tokens to score")
    return logits[:, :-1][target_mask[:, 1:]], counts


def target_predictions(logits: torch.Tensor, target_mask: torch.Tensor) -> list[torch.Tensor]:
    """Argmax token at each target position, per row: the unedited reference that Loc compares with."""
    selected, counts = _predicting_logits(logits, target_mask)
    return list(torch.split(selected.argmax(dim=-1).cpu(), counts))


def token_accuracy(logits: torch.Tensor, input_ids: torch.Tensor, target_mask: torch.Tensor) -> list[float]:
    """Rel / Gen / OOD: per row, the fraction of target tokens that are the argmax prediction."""
    selected, counts = _predicting_logits(logits, target_mask)
    predicted, targets = _rows(selected.argmax(dim=-1), counts), _rows(input_ids[target_mask], counts)
    return metric_module("token_accuracy").compute(predictions=predicted, references=targets)["scores"]


def locality_agreement(
    logits: torch.Tensor, target_mask: torch.Tensor, reference: Sequence[torch.Tensor]
) -> list[float]:
    """Loc: per row, the fraction of answer positions whose argmax equals the unedited model's.

    It measures agreement with the old model, not correctness of the answer.
    """
    predictions = [row.tolist() for row in target_predictions(logits, target_mask)]
    if len(predictions) != len(reference):
        raise ValueError(f"{len(predictions)} rows of logits but {len(reference)} reference rows")
    references = [row.tolist() for row in reference]
    return metric_module("token_accuracy").compute(predictions=predictions, references=references)["scores"]


def perplexity(logits: torch.Tensor, input_ids: torch.Tensor, target_mask: torch.Tensor) -> list[float]:
    """Hallucination: per row, exp of the mean negative log-likelihood of the target given the prompt."""
    selected, counts = _predicting_logits(logits, target_mask)
    nll = torch.nn.functional.cross_entropy(selected.float(), input_ids[target_mask], reduction="none")
    return metric_module("target_perplexity").compute(predictions=_rows(nll, counts))["perplexities"]


def exact_match(generated: Sequence[str], targets: Sequence[str]) -> list[float]:
    """1.0 where the greedy continuation begins with the whole target, else 0.0.

    Both sides are whitespace-normalised; the match is case-sensitive. Generation runs a couple
    of tokens past the target's length, so a continuation may go on after the target ("2006.",
    "2006 and"); it still matches as long as the target ends on a word boundary ("20061" does
    not match "2006").
    """
    if len(generated) != len(targets):
        raise ValueError(f"{len(generated)} generations but {len(targets)} targets")
    return metric_module("generation_exact_match").compute(predictions=list(generated), references=list(targets))["scores"]
