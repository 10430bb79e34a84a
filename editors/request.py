"""`EditRequest`: one fact to write into a model, with the fields its scores need."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

from editors.errors import InvalidSettingsError


@dataclass(frozen=True)
class EditRequest:
    """A correction `prompt -> target`, plus optional probes of generalisation and locality.

    `target` is stored without a leading space; it is appended as `prompt + " " + target`, so
    its tokens carry the space as the model will see them. With `id=None` the editor names it.
    """

    id: Optional[str]
    prompt: str
    target: str
    rephrase: Optional[str] = None  # a paraphrase of the prompt (Gen)
    ood_rephrase: Optional[str] = None  # an out-of-distribution prompt about the same entity (temporal)
    locality_prompt: Optional[str] = None  # unrelated prompt whose answer must not move (Loc)
    locality_answer: Optional[str] = None
    subject: Optional[str] = None  # the entity the prompt asks about, where the data names it
    neighbour_prompt: Optional[str] = None  # a prompt close to this one about something else (neighbour Loc)
    neighbour_answer: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EditLike = Union[EditRequest, tuple[str, str], str]


def as_request(request: EditLike, target: Optional[str] = None, id: Optional[str] = None) -> EditRequest:
    """An `EditRequest` from one, from a `(prompt, target)` pair, or from `prompt` and `target`."""
    if isinstance(request, EditRequest):
        return request
    if isinstance(request, tuple):
        request, target = request
    if not isinstance(request, str) or not isinstance(target, str):
        raise InvalidSettingsError("an edit is EditRequest(...), (prompt, target) or edit(prompt, target), with both as text")
    return EditRequest(id=id, prompt=request.strip(), target=target.strip())
