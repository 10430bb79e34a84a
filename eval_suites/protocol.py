"""The sequential editing protocol of WISE and MEMOIR: edit T records one after another, score after the last.

A fresh editor on an unedited model scores the first T records (the "unedited" row), applies
the T edits one after another, and only then scores all T records again on the final model.
Scoring each record right after its own edit (EasyEdit's code since 2026) would hide how later
edits overwrite earlier ones, so this module never does it.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from editors.base import EditResult, Editor
from editors.request import EditRequest
from eval_suites.errors import ProtocolError
from eval_suites.scoring import DEFAULT_BATCH_SIZE, aggregate, score_records, unedited_locality
from eval_suites.unedited_cache import Unedited, unedited_scores

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Scores of one run: aggregated `metrics`, one dict per record, and the same before editing."""

    metrics: dict[str, Any]
    records: list[dict[str, Any]]
    unedited: dict[str, Any]
    unedited_records: list[dict[str, Any]]
    edits: list[EditResult] = field(default_factory=list)


def fired_on_unrelated(editor: Editor, requests: Sequence[EditRequest]) -> Optional[float]:
    """Fraction of the locality prompts on which the editor's memory fires.

    Loc = 1.0 can hold by construction when nothing ever routes; this shows whether it does.
    Only editors with a `firing_rate(prompts)` method (MEMOIR) report it; others give None.
    """
    firing_rate = getattr(editor, "firing_rate", None)
    prompts = [request.locality_prompt for request in requests if request.locality_prompt]
    if not callable(firing_rate) or not prompts:
        return None
    return float(firing_rate(prompts))


def _checked_count(num_edits: int, available: int) -> int:
    if num_edits < 1:
        raise ProtocolError(f"num_edits must be at least 1, got {num_edits}")
    if num_edits > available:
        raise ProtocolError(f"num_edits={num_edits} but the data has only {available} valid records; "
                            f"ask for at most {available} edits")
    return num_edits


def run_sequential(
    make_editor: Callable[[], Editor],
    requests: Sequence[EditRequest],
    num_edits: int,
    model_name: str = "",
    batch_size: int = DEFAULT_BATCH_SIZE,
    with_perplexity: bool = False,
    with_exact_match: bool = False,
    on_edit: Optional[Callable[[EditResult], None]] = None,
    cache_unedited: bool = False,
) -> RunResult:
    """Apply the first `num_edits` requests in order on a fresh editor, then score them all."""
    options = dict(batch_size=batch_size, with_perplexity=with_perplexity, with_exact_match=with_exact_match)
    return run_stream(make_editor, requests, [num_edits], model_name, on_edit=on_edit, cache_unedited=cache_unedited, **options)[0]


def run_stream(
    make_editor: Callable[[], Editor],
    requests: Sequence[EditRequest],
    checkpoints: Sequence[int],
    model_name: str = "",
    batch_size: int = DEFAULT_BATCH_SIZE,
    with_perplexity: bool = False,
    with_exact_match: bool = False,
    on_edit: Optional[Callable[[EditResult], None]] = None,
    score: Callable[..., list[dict[str, Any]]] = score_records,
    on_checkpoint: Optional[Callable[[RunResult], None]] = None,
    cache_unedited: bool = False,
) -> list[RunResult]:
    """One stream of edits scored at several T: after the T-th edit, the first T records.

    Editing is sequential and deterministic, so the model after T edits of a longer stream is
    the final model of a T-edit run: one stream gives the T = 1, 10, 100, 1000 rows of the
    protocol at the cost of the longest. `make_editor` must return an editor on an *unedited*
    model; it is called once. `score` may be replaced by one that splits records across
    processes (see `eval_suites.sharding`). `on_checkpoint` receives each T's result as soon as it
    is scored, so a long stream stopped midway keeps the rows it has already finished. With
    `cache_unedited` the unedited scores come from eval_suites.unedited_cache when a run of the
    same model, records and options has kept them.
    """
    checkpoints = sorted({_checked_count(t, len(requests)) for t in checkpoints})
    started = time.perf_counter()
    stream = Stream("", requests[: checkpoints[-1]], with_perplexity, with_exact_match)
    editor = make_editor()
    before = _Before.of(editor, stream, batch_size, score, cache_unedited)
    results, edits, edit_seconds = [], [], 0.0
    for count in checkpoints:
        edit_started = time.perf_counter()
        edits += editor.edit_stream(stream.requests[len(edits) : count], on_edit)
        edit_seconds += time.perf_counter() - edit_started
        results.append(before.result(editor, count, list(edits), edit_seconds, model_name, started))
        if on_checkpoint is not None:
            on_checkpoint(results[-1])
    return results


@dataclass
class Stream:
    """One suite's records in a stream of edits, and how they are scored."""

    name: str
    requests: Sequence[EditRequest]
    with_perplexity: bool = False
    with_exact_match: bool = False


@dataclass
class _Before:
    """A stream's scores on the unedited model, and how its records are scored after editing."""

    stream: Stream
    reference: list[dict[str, Any]]  # the unedited model's locality outputs
    records: list[dict[str, Any]]
    options: dict[str, Any]
    scorer: Callable[..., list[dict[str, Any]]]

    @classmethod
    def of(cls, editor: Editor, stream: Stream, batch_size: int, score: Callable[..., list[dict[str, Any]]],
           cached: bool = False) -> "_Before":
        """Score the stream on the unedited model, or read those scores from eval_suites.unedited_cache when `cached`."""
        options = dict(batch_size=batch_size, with_perplexity=stream.with_perplexity, with_exact_match=stream.with_exact_match)

        def compute() -> Unedited:
            logger.info("scoring the unedited model on %d records%s: its locality answers, then every metric",
                        len(stream.requests), f" of {stream.name}" if stream.name else "")
            reference = unedited_locality(editor, stream.requests, batch_size)
            return reference, score(editor, stream.requests, reference, **options)

        reference, records = unedited_scores(editor, stream.requests, options, compute) if cached else compute()
        return cls(stream, reference, records, options, score)

    def result(self, editor: Editor, count: int, edits: list[EditResult], edit_seconds: float, model_name: str,
               started: float) -> RunResult:
        """Score the first `count` records on the editor's model as it is now."""
        records = self.scorer(editor, self.stream.requests[:count], self.reference[:count], **self.options)
        metrics = {
            **aggregate(records),
            "fired_on_unrelated": fired_on_unrelated(editor, self.stream.requests[:count]),
            "num_edits": count,
            "editor": editor.name,
            "model": model_name,
            "seconds": time.perf_counter() - started,
            "edit_seconds": edit_seconds,
        }
        before = self.records[:count]
        return RunResult(metrics, records, aggregate(before), before, edits)


def mixed_order(streams: Sequence[Stream], seed: int) -> list[int]:
    """Which stream each edit of a mixed stream comes from: the streams' records shuffled together
    in a seeded order, each stream's records staying in their own order."""
    labels = [label for label, stream in enumerate(streams) for _ in stream.requests]
    random.Random(seed).shuffle(labels)
    return labels


def interleaved(streams: Sequence[Stream], order: Sequence[int]) -> list[EditRequest]:
    """The streams' requests in `order` (a `mixed_order`), each stream's taken in its own order."""
    queues = [iter(stream.requests) for stream in streams]
    return [next(queues[label]) for label in order]


def run_mixed(
    make_editor: Callable[[], Editor],
    streams: Sequence[Stream],
    seed: int = 0,
    model_name: str = "",
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_edit: Optional[Callable[[EditResult], None]] = None,
    score: Callable[..., list[dict[str, Any]]] = score_records,
    cache_unedited: bool = False,
) -> dict[str, RunResult]:
    """Several suites' edits interleaved in one seeded stream, as a deployment sees them; after the
    last edit each suite's records are scored with that suite's own metrics.

    A suite's result is comparable with its own single-suite run of the same records: same
    records, same scores, with the other suites' edits in between. Its `edit_seconds` is the
    time of its own edits. `cache_unedited` as in `run_stream`.
    """
    names = [stream.name for stream in streams]
    if len(set(names)) != len(names) or not all(stream.requests for stream in streams):
        raise ProtocolError(f"a mixed stream needs distinct suites, each with records; got {names}")
    started = time.perf_counter()
    editor = make_editor()
    before = [_Before.of(editor, stream, batch_size, score, cache_unedited) for stream in streams]
    order = mixed_order(streams, seed)
    edits = editor.edit_stream(interleaved(streams, order), on_edit)
    results = {}
    for label, (stream, scored) in enumerate(zip(streams, before)):
        own = [edit for edit, source in zip(edits, order) if source == label]
        result = scored.result(editor, len(stream.requests), own, sum(edit.seconds for edit in own), model_name, started)
        result.metrics["mixed_with"] = [name for name in names if name != stream.name]
        result.metrics["mixed_seed"] = seed
        results[stream.name] = result
    return results
