"""Reading EasyEdit-style edit files (ZsRE shape and generic shape) into `EditRequest`s.

Records are validated one by one, before any edit runs: a bad record is reported with its index
and skipped (or stops the run, with `strict=True`) instead of crashing a stream half-way. The
raw file is parsed with `json` rather than `datasets`' JSON builder because arrow's type
inference rejects the whole file when one record has a wrongly typed field; the validated
records are offered as a `datasets.Dataset` by `as_dataset`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from datasets import Dataset

from editors.errors import BadRecordError
from editors.request import EditRequest

ZSRE_KEYS = {
    "prompt": "src",
    "target": "alt",
    "rephrase": "rephrase",
    "locality_prompt": "loc",
    "locality_answer": "loc_ans",
    "subject": "subject",
}
GENERIC_KEYS = {
    "prompt": "prompt",
    "target": "target_new",
    "rephrase": "rephrase_prompt",
    "ood_rephrase": "ood_rephrase",
    "locality_prompt": "locality_prompt",
    "locality_answer": "locality_ground_truth",
    "subject": "subject",
}
REQUIRED = ("prompt", "target")


@dataclass
class BadRecord:
    index: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.index}: {self.reason}"


@dataclass
class EditData:
    requests: list[EditRequest]
    bad_records: list[BadRecord] = field(default_factory=list)
    duplicate_prompts: list[int] = field(default_factory=list)  # indices whose prompt appeared before

    def as_dataset(self) -> Dataset:
        return Dataset.from_list([request.to_dict() for request in self.requests])


def read_records(path: str | Path) -> list[Any]:
    """A JSON list or JSON Lines file, as a list of raw records."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _shape_of(record: dict[str, Any]) -> dict[str, str]:
    return ZSRE_KEYS if "src" in record or "alt" in record else GENERIC_KEYS


def _text(value: Any) -> Optional[str]:
    """Field value as text; EasyEdit stores some answers as one-element lists."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else None


def to_request(index: int, record: Any) -> EditRequest:
    """One raw record -> `EditRequest`; raises `BadRecordError` saying what is wrong."""
    if not isinstance(record, dict):
        raise BadRecordError(f"expected an object, got {type(record).__name__}")
    keys = _shape_of(record)
    fields: dict[str, Optional[str]] = {}
    for name, key in keys.items():
        raw = record.get(key)
        value = _text(raw)
        if raw is not None and value is None:
            raise BadRecordError(f"field {key!r} must be a string, got {type(raw).__name__}")
        fields[name] = value.strip() if value is not None else None
    for name in REQUIRED:
        if not fields[name]:
            raise BadRecordError(f"missing or empty {keys[name]!r}")
    record_id = record.get("case_id", record.get("id", index))
    return EditRequest(id=str(record_id), **fields)


def load_edit_data(path: str | Path, limit: Optional[int] = None, strict: bool = False) -> EditData:
    """Valid requests of an edit file, first `limit` of them; bad records reported, or fatal if `strict`."""
    requests, bad, duplicates, seen = [], [], [], set()
    for index, record in enumerate(read_records(path)):
        if limit is not None and len(requests) >= limit:
            break
        try:
            request = to_request(index, record)
        except BadRecordError as error:
            if strict:
                raise BadRecordError(f"{path}: record {index}: {error}") from None
            bad.append(BadRecord(index, str(error)))
            continue
        if request.prompt in seen:
            duplicates.append(index)
        seen.add(request.prompt)
        requests.append(request)
    return EditData(requests, bad, duplicates)
