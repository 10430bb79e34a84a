"""Edit files in both EasyEdit shapes; bad records reported by index, skipped or fatal."""

from __future__ import annotations

import json

import pytest

from editors.edit_data import BadRecordError, load_edit_data
from eval_suites.suites import suite_path

GOOD_ZSRE = {"src": "Who wrote Hamlet?", "alt": "Marlowe", "rephrase": "Hamlet was written by whom?", "loc": "nq question: x", "loc_ans": "y"}
GOOD_GENERIC = {"prompt": "Tesla, Inc.,", "target_new": "is a carmaker", "ood_rephrase": "Tesla makes", "locality_prompt": "a", "locality_ground_truth": "b"}


def test_zsre_shape_maps_to_requests():
    data = load_edit_data(suite_path("zsre"), limit=3)
    first = data.requests[0]
    assert (first.prompt, first.target) == ("When was the inception of IAAF Combined Events Challenge?", "2006")
    assert first.rephrase == "When was the IAAF Combined Events Challenge launched?"
    assert (first.locality_prompt, first.locality_answer) == ("nq question: what is the name of the last episode of spongebob", "The String")
    assert len(data.requests) == 3 and data.bad_records == []


def test_generic_shape_in_jsonl(tmp_path):
    path = tmp_path / "edits.jsonl"
    path.write_text(json.dumps(GOOD_GENERIC) + "\n\n" + json.dumps(GOOD_GENERIC | {"rephrase_prompt": "Tesla is"}) + "\n")
    requests = load_edit_data(path).requests
    assert [r.ood_rephrase for r in requests] == ["Tesla makes", "Tesla makes"]
    assert [r.rephrase for r in requests] == [None, "Tesla is"]
    assert requests[0].target == "is a carmaker" and requests[0].locality_answer == "b"


def _bad_file(tmp_path):
    records = [
        GOOD_ZSRE,
        GOOD_ZSRE | {"alt": ""},
        {"src": "Only a question?"},
        GOOD_ZSRE | {"src": 42},
        "not an object",
        GOOD_ZSRE | {"loc_ans": ["as a list"]},
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records))
    return path


def test_bad_records_are_reported_with_their_index_and_skipped(tmp_path):
    data = load_edit_data(_bad_file(tmp_path))
    assert [(bad.index, bad.reason) for bad in data.bad_records] == [
        (1, "missing or empty 'alt'"),
        (2, "missing or empty 'alt'"),
        (3, "field 'src' must be a string, got int"),
        (4, "expected an object, got str"),
    ]
    assert [r.id for r in data.requests] == ["0", "5"]
    assert data.requests[1].locality_answer == "as a list"
    assert data.duplicate_prompts == [5]


def test_strict_mode_stops_at_the_first_bad_record(tmp_path):
    with pytest.raises(BadRecordError, match="record 1: missing or empty 'alt'"):
        load_edit_data(_bad_file(tmp_path), strict=True)


def test_shipped_temporal_train_file_reports_its_duplicated_prompt():
    from eval_suites.suites import suite_train_path

    data = load_edit_data(suite_train_path("temporal"))
    assert len(data.duplicate_prompts) == 1 and len(data.requests) == 75


# --- `datasets` datasets as --data -------------------------------------------------------------


def _arrow_records() -> list[dict]:
    """ZsRE-shaped records arrow can store (one type per column), two of them bad."""
    return [GOOD_ZSRE, GOOD_ZSRE | {"alt": ""}, GOOD_ZSRE | {"src": "Who wrote Faust?", "alt": "Goethe"}, GOOD_ZSRE | {"alt": None}]


def test_a_datasets_folder_gives_the_requests_and_bad_records_of_the_same_file(tmp_path):
    from datasets import Dataset

    from eval_suites.editor_setup import load_requests

    Dataset.from_list(_arrow_records()).save_to_disk(tmp_path / "saved")
    (tmp_path / "same.json").write_text(json.dumps(_arrow_records()))
    from_disk, from_file = load_requests(str(tmp_path / "saved"), None, False), load_requests(str(tmp_path / "same.json"), None, False)
    assert from_disk.requests == from_file.requests and len(from_disk.requests) == 2
    assert [(b.index, b.reason) for b in from_disk.bad_records] == [(1, "missing or empty 'alt'"), (3, "missing or empty 'alt'")]
    with pytest.raises(BadRecordError, match="saved: record 1: missing or empty 'alt'"):
        load_requests(str(tmp_path / "saved"), None, True)


def test_a_dataset_with_several_splits_needs_one_named(tmp_path):
    from datasets import Dataset, DatasetDict

    from eval_suites.errors import UnknownDataError
    from eval_suites.suites import data_records, data_sha256

    splits = DatasetDict(train=Dataset.from_list(_arrow_records()[:1]), test=Dataset.from_list(_arrow_records()[2:3]))
    splits.save_to_disk(tmp_path / "splits")
    with pytest.raises(UnknownDataError, match="NAME:SPLIT, one of train, test"):
        data_records(str(tmp_path / "splits"))
    assert [row["alt"] for row in data_records(f"{tmp_path / 'splits'}:test")] == ["Goethe"]
    assert data_sha256(f"{tmp_path / 'splits'}:test") != data_sha256(f"{tmp_path / 'splits'}:train")


def test_an_unknown_dataset_offline_says_where_it_looked():
    from eval_suites.errors import UnknownDataError
    from eval_suites.suites import data_records

    with pytest.raises(UnknownDataError, match="nor a dataset on the Hub \\(with HF_HUB_OFFLINE=1: in the local cache\\)"):
        data_records("no-such-org/no-such-dataset")
