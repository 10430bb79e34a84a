"""Scoring edit records with an `Editor`, batch by batch.

Per record: `rel` on the prompt, `gen` on the rephrase, `ood` on the out-of-distribution
rephrase, `loc` on the locality pair, `loc_neighbour` on the neighbour probe (eval_suites.neighbours),
optionally `ppl` of the target (and `ppl_neighbour` of the neighbour's answer) and `exact_match` of
greedy generation. A score a record cannot have (no rephrase, no locality answer) is None.

Loc compares with the *unedited* model's argmax, so `unedited_locality` must run before the
first edit: baselines such as fine-tuning change the base weights in place, and no unedited
model is left to ask afterwards.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from editors.base import Editor
from editors.request import EditRequest
from editors.teacher_forcing import TeacherForcedBatch, prompt_batch, target_ids, teacher_forced_batch
from eval_suites.metrics import exact_match, locality_agreement, perplexity, target_predictions, token_accuracy

METRIC_KEYS = ("rel", "gen", "ood", "loc", "loc_neighbour", "ppl", "ppl_neighbour", "exact_match")
DEFAULT_BATCH_SIZE = 16
EXTRA_GENERATED_TOKENS = 2  # greedy generation runs this far past the target's token count

Pair = tuple[str, str]
PairOf = Callable[[EditRequest], Optional[Pair]]
# (logits, batch, indices of the scored records within the chunk) -> score name -> one value per row
ChunkMetric = Callable[[torch.Tensor, TeacherForcedBatch, list[int]], dict[str, list[Any]]]


def _device(editor: Editor) -> torch.device:
    return next(editor.model.parameters()).device


def _chunks(items: Sequence[Any], size: int) -> list[tuple[int, Sequence[Any]]]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    return [(start, items[start:start + size]) for start in range(0, len(items), size)]


def _forward(editor: Editor, pairs: list[Pair]) -> tuple[torch.Tensor, TeacherForcedBatch]:
    """Teacher-forced logits of the left-padded `pairs` and the batch they align with: the last
    columns only, from the one before the longest target, since the LM head over the whole
    vocabulary at every prompt column would cost more than all the layers."""
    batch = teacher_forced_batch(editor.tokenizer, pairs).to(_device(editor))
    keep = int(batch.target_mask.sum(dim=1).max()) + 1
    logits = editor.logits(batch.input_ids, batch.attention_mask, batch.prompt_mask, logits_to_keep=keep)
    return logits, batch.last_columns(keep)


def locality_pair(request: EditRequest) -> Optional[Pair]:
    """`(locality_prompt, locality_answer)`, or None when either is missing or empty."""
    if request.locality_prompt and (request.locality_answer or "").strip():
        return request.locality_prompt, request.locality_answer
    return None


def neighbour_pair(request: EditRequest) -> Optional[Pair]:
    """`(neighbour_prompt, neighbour_answer)`, or None when the record has no neighbour probe."""
    if request.neighbour_prompt and (request.neighbour_answer or "").strip():
        return request.neighbour_prompt, request.neighbour_answer
    return None


# score -> the pair it is computed on; each compares the argmax with the unedited model's
AGREEMENT_PAIRS: dict[str, PairOf] = {"loc": locality_pair, "loc_neighbour": neighbour_pair}


def _rephrase_pair(field: str) -> PairOf:
    def pair_of(request: EditRequest) -> Optional[Pair]:
        prompt = getattr(request, field)
        return (prompt, request.target) if prompt else None

    return pair_of


def _argmax_metric(logits: torch.Tensor, batch: TeacherForcedBatch, present: list[int]) -> dict[str, list[Any]]:
    return {"argmax": target_predictions(logits, batch.target_mask)}


@torch.no_grad()
def unedited_locality(
    editor: Editor, requests: Sequence[EditRequest], batch_size: int = DEFAULT_BATCH_SIZE
) -> list[dict[str, Optional[torch.Tensor]]]:
    """Per record, the still-unedited model's argmax tokens on its locality answer and on its
    neighbour's answer (`{"loc": ..., "loc_neighbour": ...}`, None where a record has no such pair).

    Call it on a fresh editor, before any edit; pass the result to `score_records`.
    """
    reference: list[dict[str, Optional[torch.Tensor]]] = []
    for _, chunk in _chunks(requests, batch_size):
        rows: list[dict[str, Any]] = [{} for _ in chunk]
        for key, pair_of in AGREEMENT_PAIRS.items():
            found: list[dict[str, Any]] = [{} for _ in chunk]
            _fill(found, editor, chunk, pair_of, _argmax_metric)
            for row, value in zip(rows, found):
                row[key] = value.get("argmax")
        reference.extend(rows)
    return reference


def _fill(rows: list[dict[str, Any]], editor: Editor, chunk: Sequence[EditRequest], pair_of: PairOf, metric: ChunkMetric) -> None:
    """Run `metric` on the records that have a pair and write its values into their rows."""
    present = [i for i, request in enumerate(chunk) if pair_of(request) is not None]
    if not present:
        return
    logits, batch = _forward(editor, [pair_of(chunk[i]) for i in present])
    for key, values in metric(logits, batch, present).items():
        for i, value in zip(present, values):
            rows[i][key] = value


def _generations(editor: Editor, chunk: Sequence[EditRequest]) -> list[str]:
    """Greedy continuation of each prompt, cut at the target's token count plus a little."""
    tokenizer = editor.tokenizer
    batch = prompt_batch(tokenizer, [request.prompt for request in chunk]).to(_device(editor))
    lengths = [len(target_ids(tokenizer, request.target)) + EXTRA_GENERATED_TOKENS for request in chunk]
    new_tokens = editor.generate(batch.input_ids, batch.attention_mask, max(lengths))
    return [tokenizer.decode(row[:length], skip_special_tokens=True) for row, length in zip(new_tokens, lengths)]


def _locality_metric(reference: Sequence[dict[str, Optional[torch.Tensor]]], key: str, with_perplexity: bool) -> ChunkMetric:
    def metric(logits: torch.Tensor, batch: TeacherForcedBatch, present: list[int]) -> dict[str, list[Any]]:
        rows = [reference[i].get(key) for i in present]
        if any(row is None for row in rows):
            raise ValueError(f"the unedited reference lacks a record that has a {key} pair; "
                             "compute it with unedited_locality on the same requests")
        scores = {key: locality_agreement(logits, batch.target_mask, rows)}
        if with_perplexity and key == "loc_neighbour":
            scores["ppl_neighbour"] = perplexity(logits, batch.input_ids, batch.target_mask)
        return scores

    return metric


def _reliability_metric(with_perplexity: bool) -> ChunkMetric:
    def metric(logits: torch.Tensor, batch: TeacherForcedBatch, present: list[int]) -> dict[str, list[Any]]:
        scores = {"rel": token_accuracy(logits, batch.input_ids, batch.target_mask)}
        if with_perplexity:
            scores["ppl"] = perplexity(logits, batch.input_ids, batch.target_mask)
        return scores

    return metric


def _accuracy_metric(key: str) -> ChunkMetric:
    return lambda logits, batch, present: {key: token_accuracy(logits, batch.input_ids, batch.target_mask)}


@torch.no_grad()
def score_records(
    editor: Editor,
    requests: Sequence[EditRequest],
    locality_reference: Sequence[dict[str, Optional[torch.Tensor]]],
    batch_size: int = DEFAULT_BATCH_SIZE,
    with_perplexity: bool = False,
    with_exact_match: bool = False,
    on_scored: Optional[Callable[[int], None]] = None,
) -> list[dict[str, Any]]:
    """One dict per record: `id`, `rel`, `gen`, `ood`, `loc`, `loc_neighbour` (+ `ppl` and
    `ppl_neighbour`, + `exact_match` and `generated`).

    `locality_reference` comes from `unedited_locality` on the same requests, before any edit.
    `on_scored` receives the number of records of each finished batch (for a progress bar).
    """
    if len(locality_reference) != len(requests):
        raise ValueError(f"{len(locality_reference)} locality references for {len(requests)} requests; "
                         "compute them with unedited_locality on the same requests")
    keys = ["rel", "gen", "ood", *AGREEMENT_PAIRS] + ["ppl", "ppl_neighbour"] * with_perplexity
    keys += ["exact_match"] * with_exact_match
    records: list[dict[str, Any]] = []
    for start, chunk in _chunks(requests, batch_size):
        rows = [{"id": request.id, **dict.fromkeys(keys)} for request in chunk]
        _fill(rows, editor, chunk, lambda request: (request.prompt, request.target), _reliability_metric(with_perplexity))
        _fill(rows, editor, chunk, _rephrase_pair("rephrase"), _accuracy_metric("gen"))
        _fill(rows, editor, chunk, _rephrase_pair("ood_rephrase"), _accuracy_metric("ood"))
        chunk_reference = locality_reference[start:start + len(chunk)]
        for key, pair_of in AGREEMENT_PAIRS.items():
            _fill(rows, editor, chunk, pair_of, _locality_metric(chunk_reference, key, with_perplexity))
        if with_exact_match:
            generated = _generations(editor, chunk)
            for row, text, score in zip(rows, generated, exact_match(generated, [r.target for r in chunk])):
                row.update(exact_match=score, generated=text)
        records.extend(rows)
        if on_scored is not None:
            on_scored(len(rows))
    return records


def means(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """Mean of each key over the rows that have a value for it; keys no row has are left out."""
    summary: dict[str, float] = {}
    for key in keys:
        values = [row[key] for row in rows if row.get(key) is not None]
        if values:
            summary[key] = sum(values) / len(values)
    return summary


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each score over the records that have it, and `loc_skipped`: records scored without Loc."""
    return {**means(records, METRIC_KEYS), "loc_skipped": sum(1 for record in records if record.get("loc") is None)}
