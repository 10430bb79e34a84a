"""Reading EasyEdit-style edit files (ZsRE shape and generic shape) into `EditRequest`s.

Records are validated one by one, before any edit runs: a bad record is reported with its index
and skipped (or stops the run, with `strict=True`) instead of crashing a stream half-way. The
raw file is parsed with `json` rather than `datasets`' JSON builder because arrow's type
inference rejects the whole file when one record has a wrongly typed field; the validated
records are offered as a `datasets.Dataset` by `as_dataset`. A file that cannot be read, or whose
every record is bad, is an `EditDataError` naming the file: a run that would apply no edit is an
error, not an empty success.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from datasets import Dataset

from editors.errors import BadRecordError, EditDataError
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
    """The raw records of a JSON file (a list of records, or one record) or of a JSON Lines file.

    Which of the two is decided by parsing, not by the first character: the whole text as one
    JSON document first (a pretty-printed object is one record, as a one-line JSON Lines file
    is), else line by line.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return _json_lines(path, text, error)
    except RecursionError:
        raise EditDataError(f"{path} nests JSON too deeply to read; records are flat objects of strings") from None
    return document if isinstance(document, list) else [document]


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EditDataError(f"{path} is not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8") from None
    except OSError as error:
        raise EditDataError(f"{path} cannot be read: {error.strerror}") from None
    if not text.strip():
        raise EditDataError(f"{path} is empty: give EasyEdit records as a JSON list or as one JSON object per line")
    return text


def _json_lines(path: Path, text: str, as_document: json.JSONDecodeError) -> list[Any]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as error:
            where = f"line {as_document.lineno} column {as_document.colno}: {as_document.msg}"
            if records:  # earlier lines parsed: a JSON Lines file with one broken line
                where = f"line {number}: {getattr(error, 'msg', 'nested too deeply')}"
            raise EditDataError(f"{path} is neither JSON nor JSON Lines ({where}); fix the file") from None
    return records


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


def load_edit_data(
    path: str | Path,
    limit: Optional[int] = None,
    strict: bool = False,
    check: Optional[Callable[[EditRequest], None]] = None,
) -> EditData:
    """Valid requests of an edit file, first `limit` of them; bad records reported, or fatal if `strict`."""
    return validate_records(read_records(path), str(path), limit, strict, check)


def validate_records(
    records: Sequence[Any],
    source: str,
    limit: Optional[int] = None,
    strict: bool = False,
    check: Optional[Callable[[EditRequest], None]] = None,
) -> EditData:
    """Valid requests among raw `records` (from a file or a `datasets` dataset), first `limit` of them.

    `check` may refuse a well-formed request by raising `BadRecordError` (e.g. one too long for
    the model); it counts as a bad record like any other.
    """
    requests, bad, duplicates, seen = [], [], [], set()
    for index, record in enumerate(records):
        if limit is not None and len(requests) >= limit:
            break
        try:
            request = to_request(index, record)
            if check is not None:
                check(request)
        except BadRecordError as error:
            if strict:
                raise BadRecordError(f"{source}: record {index}: {error}") from None
            bad.append(BadRecord(index, str(error)))
            continue
        if request.prompt in seen:
            duplicates.append(index)
        seen.add(request.prompt)
        requests.append(request)
    if not requests:
        raise EditDataError(_nothing_to_edit(source, len(records), bad))
    return EditData(requests, bad, duplicates)


def _nothing_to_edit(path: str | Path, count: int, bad: list[BadRecord]) -> str:
    if not bad:
        return f"{path} holds no records: give at least one EasyEdit record"
    shown = "; ".join(str(record) for record in bad[:3])
    return f"{path}: none of its {count} records can become an edit ({shown}{'; ...' if len(bad) > 3 else ''}); fix them"
