"""Property tests: arbitrary malformed data files, records and settings give a reported skip or a
clear error of the package's own error class, never an uncaught exception."""

from __future__ import annotations

import json
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memoir
from conftest import tiny_tokenizer
from editors.edit_data import GENERIC_KEYS, ZSRE_KEYS, load_edit_data, to_request
from editors.errors import BadRecordError, EditDataError, InvalidSettingsError
from editors.memoir_hparams import MemoirHparams
from editors.teacher_forcing import row_length_check
from memoir.defaults import CONFIG_KEYS, load_defaults

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = sorted(set(ZSRE_KEYS.values()) | set(GENERIC_KEYS.values()) | {"case_id", "id"})
RECORD = st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), JSON, max_size=8) | JSON
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load(content: bytes, strict: bool):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "edits.json"
        path.write_bytes(content)
        try:
            data = load_edit_data(path, strict=strict)
        except EditDataError as error:
            assert str(path) in str(error)
            return None
        except BadRecordError as error:
            assert strict and str(path) in str(error)
            return None
    assert data.requests, "a loaded file has at least one edit"
    assert all(request.prompt and request.target for request in data.requests)
    return data


@SETTINGS
@given(st.lists(RECORD, max_size=6), st.booleans(), st.booleans())
def test_arbitrary_records_are_skipped_with_a_reason_or_refused(records, as_lines, strict):
    content = "\n".join(json.dumps(record) for record in records) if as_lines else json.dumps(records)
    data = _load(content.encode("utf-8"), strict)
    if data is not None:
        assert len(data.requests) + len(data.bad_records) == len(records)
        assert all(bad.reason for bad in data.bad_records)


@SETTINGS
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_are_read_or_refused_naming_the_file(content, strict):
    _load(content, strict)


@SETTINGS
@given(st.text(alphabet=st.sampled_from('{}[]",:\n 0aé\\'), max_size=80))
def test_json_like_text_is_read_or_refused_naming_the_file(text):
    _load(text.encode("utf-8"), strict=False)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), st.text(max_size=300), min_size=1, max_size=6))
def test_the_length_check_refuses_only_with_a_reason(record):
    check = row_length_check(tiny_tokenizer(), max_positions=128)
    try:
        check(to_request(0, record))
    except BadRecordError as error:
        assert str(error)


CONFIG_FIELDS = sorted(CONFIG_KEYS | {"base_fingerprint"})


@SETTINGS
@given(st.dictionaries(st.sampled_from(CONFIG_FIELDS), JSON, max_size=4))
def test_arbitrary_adapter_config_values_are_accepted_or_refused_clearly(values):
    try:
        memoir.MemoirConfig(**values)
    except memoir.InvalidConfigError as error:
        assert str(error)


@SETTINGS
@given(st.dictionaries(st.sampled_from([f.name for f in fields(MemoirHparams)]) | st.text(max_size=8), JSON, max_size=4) | JSON)
def test_arbitrary_editor_settings_are_accepted_or_refused_clearly(values):
    try:
        MemoirHparams.from_dict(values)
    except InvalidSettingsError as error:
        assert str(error)


@SETTINGS
@given(st.text(max_size=120) | st.builds(lambda section: json.dumps({"memoir": section}), JSON))
def test_arbitrary_config_files_are_read_or_refused_naming_them(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            assert isinstance(load_defaults(str(path))["memoir"], dict)
        except memoir.InvalidConfigError as error:
            assert str(path) in str(error)


@pytest.mark.parametrize("nesting", [10, 100_000])  # lists of lists: no record; nested past the recursion limit
def test_nested_lists_are_refused_naming_the_file(tmp_path, nesting):
    path = tmp_path / "deep.json"
    path.write_text("[" * nesting + "]" * nesting)
    with pytest.raises(EditDataError, match=str(path)):
        load_edit_data(path)
