"""The sequential editing protocol of WISE and MEMOIR: edit T records one after another, score after the last.

A fresh editor on an unedited model scores the first T records (the "unedited" row), applies
the T edits one after another, and only then scores all T records again on the final model.
Scoring each record right after its own edit (EasyEdit's code since 2026) would hide how later
edits overwrite earlier ones, so this module never does it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from editors.base import EditResult, Editor
from editors.request import EditRequest
from eval_suites.errors import ProtocolError
from eval_suites.scoring import DEFAULT_BATCH_SIZE, aggregate, score_records, unedited_locality


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
) -> RunResult:
    """Apply the first `num_edits` requests in order on a fresh editor, then score them all."""
    options = dict(batch_size=batch_size, with_perplexity=with_perplexity, with_exact_match=with_exact_match)
    return run_stream(make_editor, requests, [num_edits], model_name, on_edit=on_edit, **options)[0]


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
) -> list[RunResult]:
    """One stream of edits scored at several T: after the T-th edit, the first T records.

    Editing is sequential and deterministic, so the model after T edits of a longer stream is
    the final model of a T-edit run: one stream gives the T = 1, 10, 100, 1000 rows of the
    protocol at the cost of the longest. `make_editor` must return an editor on an *unedited*
    model; it is called once. `score` may be replaced by one that splits records across
    processes (see `eval_suites.sharding`). `on_checkpoint` receives each T's result as soon as it
    is scored, so a long stream stopped midway keeps the rows it has already finished.
    """
    checkpoints = sorted({_checked_count(t, len(requests)) for t in checkpoints})
    started = time.perf_counter()
    edited = list(requests[: checkpoints[-1]])
    editor = make_editor()
    options = dict(batch_size=batch_size, with_perplexity=with_perplexity, with_exact_match=with_exact_match)
    reference = unedited_locality(editor, edited, batch_size)
    unedited_records = score(editor, edited, reference, **options)
    results, edits, edit_seconds = [], [], 0.0
    for count in checkpoints:
        edit_started = time.perf_counter()
        edits += editor.edit_stream(edited[len(edits) : count], on_edit)
        edit_seconds += time.perf_counter() - edit_started
        records = score(editor, edited[:count], reference[:count], **options)
        metrics = {
            **aggregate(records),
            "fired_on_unrelated": fired_on_unrelated(editor, edited[:count]),
            "num_edits": count,
            "editor": editor.name,
            "model": model_name,
            "seconds": time.perf_counter() - started,
            "edit_seconds": edit_seconds,
        }
        before = unedited_records[:count]
        results.append(RunResult(metrics, records, aggregate(before), before, list(edits)))
        if on_checkpoint is not None:
            on_checkpoint(results[-1])
    return results
