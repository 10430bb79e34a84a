"""Consolidation: stored edits that later edits wore down are measured and written again."""

from __future__ import annotations

import pytest
import torch

from editors.consolidation import StoredEditLosses
from editors.edit_loss import NaiveEditLoss
from editors.errors import InvalidSettingsError
from editors.ledger import Ledger
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from editors.request import EditRequest
from editors.teacher_forcing import teacher_forced_batch
from test_memoir_editor import REQUESTS, make_editor


def losses_now(editor) -> torch.Tensor:
    return editor.stored_losses()


def whole_model_losses(editor) -> torch.Tensor:
    """Each stored edit's loss from a whole-model forward of its plain row alone: what the cached check must give."""
    losses = []
    for entry, mask in zip(editor.ledger.entries, editor.memory.index.masks):
        batch = teacher_forced_batch(editor.tokenizer, [(entry.prompt, entry.target)], padding_side="right")
        losses.append(NaiveEditLoss(editor.model, batch, mask[None])().item())
    return torch.tensor(losses)


def test_stored_losses_are_each_edits_own_loss_under_its_mask_after_later_edits_too():
    editor = make_editor(prefix_mode="none", lr=1000.0, grad_clip=1000.0, max_steps=20)
    for request in REQUESTS[:2]:
        editor.edit(request)
    torch.testing.assert_close(losses_now(editor), whole_model_losses(editor), rtol=1e-4, atol=1e-5)
    before = losses_now(editor)
    for request in REQUESTS[2:]:
        editor.edit(request)
    # The first two are checked from their cached lower layers now, and R has moved since.
    after = losses_now(editor)
    assert not torch.allclose(after[:2], before)
    torch.testing.assert_close(after, whole_model_losses(editor), rtol=1e-4, atol=1e-5)


def test_a_cache_too_small_for_two_edits_keeps_one_and_checks_them_all_alike():
    editor = make_editor(prefix_mode="none")
    for request in REQUESTS:
        editor.edit(request)
    small = StoredEditLosses(editor.model, editor.tokenizer, max_bytes=1)
    pairs = [(entry.prompt, entry.target) for entry in editor.ledger.entries]
    torch.testing.assert_close(small(pairs, editor.memory.index.masks), losses_now(editor))
    assert list(small._cached) == [pairs[-1]]


def test_under_consolidation_an_edit_trains_on_the_lower_layers_its_checks_then_reuse():
    plain, checked = make_editor(prefix_mode="none"), make_editor(prefix_mode="none", consolidate_in_turn=2, consolidate_above=1e9)
    for request in REQUESTS:
        plain.edit(request)
        checked.edit(request)
    assert torch.equal(plain.memory.R, checked.memory.R)
    assert set(checked._stored_edit_losses._cached) == {(r.prompt, r.target) for r in REQUESTS}
    assert not plain._stored_edit_losses._cached


def test_consolidate_writes_again_exactly_the_edits_above_the_limit_and_lowers_their_loss():
    # Without preservation the later edits move the first ones' outputs (test_preservation.py).
    editor = make_editor(prefix_mode="none", lr=1000.0, grad_clip=1000.0, max_steps=20)
    for request in REQUESTS:
        editor.edit(request)
    before = losses_now(editor)
    editor.hparams.consolidate_above = float(before.median())
    drifted = [entry.id for entry, loss in zip(editor.ledger.entries, before) if loss > editor.hparams.consolidate_above]
    assert drifted and len(drifted) < len(REQUESTS)
    assert editor.consolidate() == drifted
    after = losses_now(editor)
    for row, entry in enumerate(editor.ledger.entries):
        if entry.id in drifted:
            assert after[row] < before[row] - 0.05


def test_nothing_above_the_limit_leaves_R_untouched():
    editor = make_editor(prefix_mode="none", preservation=1.0)
    for request in REQUESTS:
        editor.edit(request)
    R, covariance = editor.memory.R.detach().clone(), editor.memory.key_covariance.clone()
    editor.hparams.consolidate_above = float(losses_now(editor).max()) + 1.0
    assert editor.consolidate() == []
    assert torch.equal(editor.memory.R, R) and torch.equal(editor.memory.key_covariance, covariance)


def test_a_rewritten_edit_leaves_the_covariance_as_it_was():
    editor = make_editor(prefix_mode="none", preservation=1.0, consolidate_above=0.0)
    for request in REQUESTS:
        editor.edit(request)
    covariance = editor.memory.key_covariance.clone()
    assert editor.consolidate() == [request.id for request in REQUESTS]
    torch.testing.assert_close(editor.memory.key_covariance, covariance, rtol=1e-5, atol=1e-5)


def test_every_nth_edit_consolidates_and_its_result_names_what_was_written_again():
    editor = make_editor(prefix_mode="none", consolidate_every=2, consolidate_above=0.0)
    results = [editor.edit(request) for request in REQUESTS]
    assert [result.extra["consolidated"] for result in results] == [[], ["0", "1"], []]
    assert "consolidated" not in make_editor(prefix_mode="none").edit(REQUESTS[0]).extra


MORE = [EditRequest(str(3 + n), f"where is the tower number {n}", f"w{70 + n}") for n in range(3)]


def test_after_each_edit_the_next_earlier_edits_are_checked_in_turn_oldest_first():
    editor = make_editor(prefix_mode="none", consolidate_in_turn=2, consolidate_above=0.0)
    checked = [editor.edit(request).extra["consolidated"] for request in [*REQUESTS, *MORE]]
    # Above 0.0 every check writes again; the round goes on where it stopped and wraps at the newest earlier edit.
    assert checked == [[], ["0"], ["0", "1"], ["0", "1"], ["2", "3"], ["0", "1"]]


def test_an_editor_on_a_saved_ledger_goes_on_with_the_round_where_it_stopped():
    settings = dict(prefix_mode="none", consolidate_in_turn=2, consolidate_above=0.0)
    editor = make_editor(**settings)
    for request in [*REQUESTS, MORE[0]]:
        editor.edit(request)
    saved = Ledger.from_json(editor.ledger.to_json())
    assert saved.next_check == 2
    resumed = MemoirEditor(editor.model, editor.tokenizer, editor.hparams, prefixes=editor.prefixes, ledger=saved)
    assert [resumed.edit(request).extra["consolidated"] for request in MORE[1:]] == [["2", "3"], ["0", "1"]]


def test_taking_an_edit_out_before_the_next_check_moves_the_round_with_the_rows():
    editor = make_editor(prefix_mode="none", consolidate_in_turn=2, consolidate_above=1e9)
    for request in [*REQUESTS, MORE[0]]:
        editor.edit(request)
    assert editor.ledger.next_check == 2
    editor.forget("0")
    assert editor.ledger.next_check == 1 and editor.ledger.entries[1].id == "2"
    editor.forget("3")
    assert editor.ledger.next_check == 1


def test_a_neighbour_worn_down_by_the_new_edit_is_written_again_and_others_are_not():
    # Without preservation the second edit moves the first one's output (test_preservation.py).
    settings = dict(prefix_mode="none", max_steps=20)
    plain = make_editor(**settings)
    plain.edit(REQUESTS[0])
    alone = losses_now(plain)[0]
    plain.edit(REQUESTS[1])
    worn = losses_now(plain)[0]
    limit = float((alone + worn) / 2)
    assert worn > alone + 0.05
    checked = make_editor(**settings, consolidate_in_turn=1, consolidate_above=limit)
    checked.edit(REQUESTS[0])
    assert checked.edit(REQUESTS[1]).extra["consolidated"] == ["0"]
    assert losses_now(checked)[0] <= limit
    high = make_editor(**settings, consolidate_in_turn=1, consolidate_above=float(worn) + 1.0)
    high.edit(REQUESTS[0])
    assert high.edit(REQUESTS[1]).extra["consolidated"] == []


@pytest.mark.parametrize("settings", [{"consolidate_every": -1}, {"consolidate_every": 1.5}, {"consolidate_above": -0.1},
                                      {"consolidate_in_turn": -1}, {"consolidate_in_turn": 2.5}])
def test_bad_consolidation_settings_are_refused(settings):
    with pytest.raises(InvalidSettingsError, match=next(iter(settings))):
        MemoirHparams(**settings)
