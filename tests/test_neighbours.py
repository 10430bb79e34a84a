"""Neighbour probes: the same question about another subject, or another record's passage."""

from __future__ import annotations

import pytest

from editors.request import EditRequest
from eval_suites.neighbours import OTHER_RECORD, SWAP_SUBJECT, with_neighbours
from eval_suites.suites import SUITES, suite_path, suite_train_path, with_neighbour_probes
from editors.edit_data import load_edit_data

EDITS = [
    EditRequest("0", "Who founded Acme Corp?", "Jane Roe", subject="Acme Corp"),
    EditRequest("1", "What city did Ada Lovelace die in?", "Paris", subject="Ada Lovelace"),
    EditRequest("2", "A prompt without its subject", "x", subject="Nobody"),
]
POOL = [
    EditRequest("p0", "Who made Zed?", "Bob", subject="Zed"),
    EditRequest("p1", "What is Ada Lovelace known for?", "maths", subject="Ada Lovelace"),
]


def test_swap_subject_asks_the_edited_question_about_another_subject_with_the_edit_target():
    probed = with_neighbours(EDITS, POOL, SWAP_SUBJECT)
    assert (probed[0].neighbour_prompt, probed[0].neighbour_answer) == ("Who founded Zed?", "Jane Roe")
    # pool[1] has the edit's own subject, so the next pool record is taken
    assert (probed[1].neighbour_prompt, probed[1].neighbour_answer) == ("What city did Zed die in?", "Paris")
    assert probed[2].neighbour_prompt is None  # nothing to swap


def test_other_record_takes_another_records_prompt_and_target():
    probed = with_neighbours(EDITS[:1], POOL, OTHER_RECORD)
    assert (probed[0].neighbour_prompt, probed[0].neighbour_answer) == ("Who made Zed?", "Bob")


def test_a_pool_record_about_a_subject_edited_elsewhere_in_the_run_is_skipped():
    # pool[0] is about Ada Lovelace, whom edit 1 changes: a passage about her is no other person's
    probed = with_neighbours(EDITS[:2], [POOL[1], POOL[0]], OTHER_RECORD)
    assert [r.neighbour_prompt for r in probed] == ["Who made Zed?", "Who made Zed?"]


def test_when_every_pool_subject_is_edited_the_probes_still_differ_from_the_edit_subject():
    probed = with_neighbours(EDITS[:2], [POOL[1], EditRequest("p2", "Who built Acme Corp?", "Al", subject="Acme Corp")], OTHER_RECORD)
    assert [r.neighbour_prompt for r in probed] == ["What is Ada Lovelace known for?", "Who built Acme Corp?"]


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="neighbour kind"):
        with_neighbours(EDITS, POOL, "nearby")


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_shipped_record_gets_a_neighbour_from_its_train_file(suite):
    requests = load_edit_data(suite_path(suite)).requests
    probed = with_neighbour_probes(suite, requests)
    assert all(r.neighbour_prompt and r.neighbour_prompt != r.prompt for r in probed)
    train_subjects = {r.subject for r in load_edit_data(suite_train_path(suite)).requests}
    if SUITES[suite].neighbours == SWAP_SUBJECT:
        assert all(r.neighbour_answer == r.target for r in probed)
        assert all(any(s in r.neighbour_prompt for s in train_subjects) for r in probed[:50])
