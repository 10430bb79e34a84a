"""Neighbour probes: prompts close to an edited one that ask about something else.

Loc's unrelated questions look nothing like the edits, so it cannot see a memory that fires on
"the same question about another subject". A neighbour is either the edited prompt with its
subject replaced by another record's subject, answered with the edit's own target (the answer
that would leak), or, for passages that cannot take another subject, another record's prompt and
target ("another person's passage"). Either way the expected output is the unedited model's.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from editors.request import EditRequest

SWAP_SUBJECT = "swap_subject"
OTHER_RECORD = "other_record"
KINDS = (SWAP_SUBJECT, OTHER_RECORD)


def _other(pool: Sequence[EditRequest], index: int, subject: str | None) -> EditRequest | None:
    """The pool record at `index` (cyclically), or the next one whose subject differs from `subject`."""
    for step in range(len(pool)):
        candidate = pool[(index + step) % len(pool)]
        if candidate.subject and candidate.subject != subject:
            return candidate
    return None


def neighbour_of(request: EditRequest, other: EditRequest, kind: str) -> EditRequest:
    """`request` with its neighbour probe filled in from `other`; unchanged when none can be made."""
    if kind == OTHER_RECORD:
        return dataclasses.replace(request, neighbour_prompt=other.prompt, neighbour_answer=other.target)
    if request.subject and request.subject in request.prompt:
        prompt = request.prompt.replace(request.subject, other.subject)
        return dataclasses.replace(request, neighbour_prompt=prompt, neighbour_answer=request.target)
    return request


def with_neighbours(requests: Sequence[EditRequest], pool: Sequence[EditRequest], kind: str) -> list[EditRequest]:
    """Each request with a neighbour made from `pool[i]`, skipping pool records about any subject edited
    in the run (where some are left): a passage about an edited person is not another person's."""
    if kind not in KINDS:
        raise ValueError(f"neighbour kind must be one of {KINDS}, got {kind!r}")
    edited = {request.subject for request in requests if request.subject}
    pool = [record for record in pool if record.subject not in edited] or pool
    probed = []
    for index, request in enumerate(requests):
        other = _other(pool, index, request.subject)
        probed.append(request if other is None else neighbour_of(request, other, kind))
    return probed
