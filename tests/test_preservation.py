"""Preservation: a later edit's update avoids the inputs an earlier edit is read on."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from peft import PeftModel

import memoir
from conftest import tiny_model
from editors.errors import InvalidSettingsError
from editors.ledger import Ledger
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from editors.preservation import Preconditioner, add_keys, capped_keys, dropout_variants, unit_keys
from editors.teacher_forcing import teacher_forced_batch
from test_memoir_editor import REQUESTS, make_editor


def earlier_output(editor, request) -> torch.Tensor:
    """The residual R adds to `request`'s own rows under its stored mask: what a later edit can disturb."""
    batch = editor.rows(request)
    plain = editor._plain_row_inputs(batch)
    return editor.memory.residual(plain.activations, editor.memory.mask_of(plain.pooled)).detach()


def drift_of_first_edit(**hparams) -> tuple[float, float]:
    """(change of the first edit's residual after two later edits, overlap of their masks)."""
    editor = make_editor(loss_threshold=0.0, **hparams)
    editor.edit(REQUESTS[0])
    before = earlier_output(editor, REQUESTS[0])
    results = [editor.edit(request) for request in REQUESTS[1:]]
    drift = (earlier_output(editor, REQUESTS[0]) - before).norm() / before.norm()
    return float(drift), max(r.extra["best_overlap_with_earlier"] for r in results)


def test_a_later_edit_sharing_columns_moves_the_earlier_output_far_less_with_preservation():
    plain, overlap = drift_of_first_edit()
    kept, _ = drift_of_first_edit(preservation=1000.0)
    assert overlap > 0.2  # the later edits do write in the first edit's columns
    assert plain > 0.05
    assert kept < plain / 10


def weight_of(covariance: torch.Tensor) -> float:
    """The trace of C over all its banks: the summed squared norms of the keys in it."""
    return covariance.diagonal(dim1=-2, dim2=-1).sum().item()


def test_preservation_zero_keeps_no_covariance_and_trains_as_before():
    editor = make_editor(loss_threshold=0.0, preservation=0.0)
    editor.edit(REQUESTS[0])
    assert editor.memory.key_covariance.numel() == 0


def test_the_covariance_counts_each_position_once_and_survives_save_and_load(tmp_path):
    editor = make_editor(preservation=1.0)
    editor.edit(REQUESTS[0])
    covariance = editor.memory.key_covariance
    positions = int(editor.rows(REQUESTS[0]).attention_mask[0].sum())
    assert weight_of(covariance) == pytest.approx(positions, rel=1e-5)  # one unit key per position
    memoir.save_adapter(editor.model, tmp_path)
    again = PeftModel.from_pretrained(tiny_model("llama", num_hidden_layers=4), str(tmp_path))
    assert torch.equal(again.base_model.memory.key_covariance, covariance)


def test_the_preconditioner_leaves_unused_directions_and_damps_used_ones():
    width = 6
    covariance = torch.zeros(1, width, width)
    used = torch.tensor([[1.0, 0, 0, 0, 0, 0]])
    add_keys(covariance, unit_keys(used.reshape(1, 1, width) * 3, torch.ones(1, 1), torch.ones(width, dtype=torch.bool)))
    mask = torch.tensor([True, True, False, False, False, False])
    grad = torch.ones(2, width)
    Preconditioner.for_mask(covariance, mask, strength=9.0).apply_(grad)
    assert torch.allclose(grad[:, 0], torch.full((2,), 0.1))  # 1 / (1 + 9 * 1)
    assert torch.equal(grad[:, 1:], torch.ones(2, width - 1))


def test_preservation_switched_on_later_first_protects_the_edits_already_stored():
    from_start = make_editor(preservation=1.0)
    later = make_editor(preservation=0.0)
    for request in REQUESTS[:2]:
        from_start.edit(request)
        later.edit(request)
    assert later.memory.key_covariance.numel() == 0
    hparams = dataclasses.replace(later.hparams, preservation=1.0)
    switched = MemoirEditor(later.model, later.tokenizer, hparams, prefixes=later.prefixes, ledger=later.ledger)
    torch.testing.assert_close(switched.memory.key_covariance, from_start.memory.key_covariance)


def reopened(editor: MemoirEditor, caplog, **changes) -> MemoirEditor:
    """A new editor on `editor`'s memory and saved ledger, with `changes` to its settings; caplog records its warnings."""
    caplog.clear()
    ledger = Ledger.from_json(editor.ledger.to_json())
    return MemoirEditor(editor.model, editor.tokenizer, dataclasses.replace(editor.hparams, **changes),
                        prefixes=editor.prefixes, ledger=ledger)


def test_c_is_built_again_when_an_adapter_is_opened_with_other_protection_settings(caplog):
    editor, capped = make_editor(preservation=1.0), make_editor(preservation=1.0, max_protected_positions=3)
    for request in REQUESTS[:2]:
        editor.edit(request)
        capped.edit(request)
    assert editor.ledger.protected_with == {"preservation_variants": 0, "max_protected_positions": 0}
    same = reopened(editor, caplog)
    assert "building it again" not in caplog.text
    changed = reopened(editor, caplog, max_protected_positions=3)
    assert "building it again" in caplog.text and changed.ledger.protected_with["max_protected_positions"] == 3
    torch.testing.assert_close(changed.memory.key_covariance, capped.memory.key_covariance, atol=1e-5, rtol=1e-5)
    assert same.memory is changed.memory  # the same memory: its C now follows the cap and forget takes out what went in
    changed.forget(changed.edits[0]["id"])
    only_second = make_editor(preservation=1.0, max_protected_positions=3)
    only_second.edit(REQUESTS[1])
    torch.testing.assert_close(changed.memory.key_covariance, only_second.memory.key_covariance, atol=1e-4, rtol=1e-4)


def test_a_ledger_that_does_not_say_how_c_was_built_gets_it_built_again(caplog):
    editor = make_editor(preservation=1.0)
    editor.edit(REQUESTS[0])
    before = editor.memory.key_covariance.clone()
    editor.ledger.protected_with = None  # as ledgers saved before it was recorded
    again = reopened(editor, caplog)
    assert "settings the ledger does not record" in caplog.text
    torch.testing.assert_close(again.memory.key_covariance, before)
    assert again.ledger.protected_with == {"preservation_variants": 0, "max_protected_positions": 0}


def test_a_forgotten_or_replaced_edit_is_no_longer_protected():
    editor, only_second = make_editor(preservation=1.0), make_editor(preservation=1.0)
    for request in REQUESTS[:2]:
        editor.edit(request)
    only_second.edit(REQUESTS[1])
    editor.forget(editor.edits[0]["id"])
    torch.testing.assert_close(editor.memory.key_covariance, only_second.memory.key_covariance, atol=1e-4, rtol=1e-4)
    editor.edit(REQUESTS[1].prompt, "w70")  # re-editing replaces the stored edit of that prompt
    assert weight_of(editor.memory.key_covariance) == pytest.approx(
        int(editor.rows((REQUESTS[1].prompt, "w70")).attention_mask[0].sum()), rel=1e-4)


def second_edit_update(preservation: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R's change in the second edit's mask columns, that edit's inputs there, (I + C)^-1 of the first edit's inputs)."""
    editor = make_editor(preservation=preservation, prefix_mode="none", loss_threshold=0.0)
    editor.edit(REQUESTS[0])
    before = editor.memory.R.detach().clone()
    editor.edit(REQUESTS[1])
    (first, second), masks = editor.ledger.entries, editor.memory.index.masks
    covariance = torch.zeros(1, before.shape[1], before.shape[1])
    add_keys(covariance, editor._stored_keys(first, masks[0]))
    preconditioner = Preconditioner.for_mask(covariance, masks[1], strength=1.0)
    change = (editor.memory.R.detach() - before).double()
    outside = masks[1].reshape(-1) == 0
    assert torch.equal(change[:, outside], torch.zeros_like(change[:, outside]))
    keys = editor._stored_keys(second, masks[1])[:, preconditioner.columns].double().T
    return change[:, preconditioner.columns], keys, preconditioner.inverse.double()


@pytest.mark.parametrize("preservation, least", [(1.0, True), (0.0, False)])
def test_a_preserving_edit_already_writes_the_least_change_for_its_outputs(preservation, least):
    """Every step is a gradient times (I + C)^-1, and the gradient lies in the span of the edit's own
    inputs K, so the update is the one of least (I + C)-norm among all that give K the same outputs:
    an AlphaEdit-style projection after the edit would change nothing. Without preservation it is not."""
    change, keys, inverse = second_edit_update(preservation)
    projected = change @ keys @ torch.linalg.pinv(keys.T @ inverse @ keys) @ keys.T @ inverse
    assert keys.shape[1] < keys.shape[0] and change.norm() > 0  # fewer inputs than columns: the least change is not forced
    assert torch.allclose(projected, change, atol=1e-4 * float(change.norm())) == least


def test_dropout_variants_are_the_same_for_a_prompt_and_keep_some_of_its_words():
    prompt = "what is the name of the river that runs through the old city"
    variants = dropout_variants(prompt, 4)
    assert variants == dropout_variants(prompt, 4)  # taken out of C again exactly as they went in
    assert len(set(variants)) > 1 and prompt not in variants
    for variant in variants:
        words = variant.split()
        assert 0 < len(words) < len(prompt.split()) and set(words) <= set(prompt.split())
    assert dropout_variants("one", 3) == ["one"] * 3 and dropout_variants(prompt, 0) == []


def test_variants_weigh_in_c_together_as_much_as_the_prompt_and_leave_it_with_their_edit():
    editor, plain = make_editor(preservation=1.0, preservation_variants=4), make_editor(preservation=1.0)
    for one in (editor, plain):
        one.edit(REQUESTS[0])
    variants = dropout_variants(REQUESTS[0].prompt, 4)
    variant_positions = sum(int(editor.rows((v, REQUESTS[0].target)).attention_mask[0].sum()) for v in variants)
    assert weight_of(editor.memory.key_covariance - plain.memory.key_covariance) == pytest.approx(
        variant_positions / 4, rel=1e-4)
    editor.edit(REQUESTS[1])
    editor.forget(editor.edits[0]["id"])
    only_second = make_editor(preservation=1.0, preservation_variants=4)
    only_second.edit(REQUESTS[1])
    torch.testing.assert_close(editor.memory.key_covariance, only_second.memory.key_covariance, atol=1e-4, rtol=1e-4)


def variant_drift(variants: int) -> float:
    """How far two later edits move the residual on the first edit's own prompt variants, under its mask."""
    editor = make_editor(loss_threshold=0.0, preservation=1000.0, preservation_variants=variants)
    editor.edit(REQUESTS[0])
    mask = editor.memory.index.masks[:1]
    batch = teacher_forced_batch(editor.tokenizer, [(v, REQUESTS[0].target) for v in dropout_variants(REQUESTS[0].prompt, 4)],
                                 padding_side="right")
    _, activations = editor._layer_inputs(batch.model_inputs(), batch.prompt_mask)
    before = editor.memory.residual(activations, mask).detach()[batch.attention_mask.bool()]
    for request in REQUESTS[1:]:
        editor.edit(request)
    after = editor.memory.residual(activations, mask).detach()[batch.attention_mask.bool()]
    return float((after - before).norm() / before.norm())


def test_protecting_variants_keeps_later_edits_off_what_the_earlier_edits_paraphrases_read():
    assert variant_drift(4) < variant_drift(0) / 2


@pytest.mark.parametrize("name", ["preservation_variants", "max_protected_positions", "train_variants"])
@pytest.mark.parametrize("count", [-1, 1.5, "4"])
def test_a_bad_count_is_refused(name, count):
    with pytest.raises(InvalidSettingsError, match=f"{name} must be a whole number >= 0"):
        MemoirHparams(**{name: count})


def test_capped_keys_weigh_at_most_the_limit_and_keep_their_directions():
    keys = unit_keys(torch.randn(1, 10, 6), torch.ones(1, 10), torch.ones(6, dtype=torch.bool))
    capped = capped_keys(keys, 4)
    assert capped.pow(2).sum().item() == pytest.approx(4.0, rel=1e-5)
    torch.testing.assert_close(capped / capped.norm(dim=-1, keepdim=True), keys)
    assert torch.equal(capped_keys(keys, 10), keys) and torch.equal(capped_keys(keys, 0), keys)


def test_a_long_edit_weighs_the_cap_in_c_and_leaves_it_whole_when_forgotten():
    long, short = REQUESTS[2], REQUESTS[1]
    positions = [int(make_editor().rows(r).attention_mask[0].sum()) for r in (long, short)]
    cap = positions[1] + 1
    assert positions[0] > cap  # the long edit is capped, the short one is not
    editor, only_short = make_editor(preservation=1.0, max_protected_positions=cap), make_editor(preservation=1.0)
    editor.edit(long)
    assert weight_of(editor.memory.key_covariance) == pytest.approx(cap, rel=1e-5)
    editor.edit(short)
    only_short.edit(short)
    editor.forget(editor.edits[0]["id"])
    torch.testing.assert_close(editor.memory.key_covariance, only_short.memory.key_covariance, atol=1e-4, rtol=1e-4)


def test_a_capped_edit_is_protected_less_than_a_whole_one_and_more_than_none():
    whole, _ = drift_of_first_edit(preservation=3.0)
    capped, _ = drift_of_first_edit(preservation=3.0, max_protected_positions=2)
    unprotected, _ = drift_of_first_edit()
    assert whole < capped < unprotected


def test_an_editor_without_preservation_keeps_an_existing_c_whole_for_its_own_edits(caplog):
    editor, both = make_editor(preservation=1.0), make_editor(preservation=1.0)
    editor.edit(REQUESTS[0])
    for request in REQUESTS[:2]:
        both.edit(request)
    plain = reopened(editor, caplog, preservation=0.0)
    plain.edit(REQUESTS[1])
    torch.testing.assert_close(plain.memory.key_covariance, both.memory.key_covariance, atol=1e-5, rtol=1e-5)
    plain.forget(plain.edits[1]["id"])
    only_first = make_editor(preservation=1.0)
    only_first.edit(REQUESTS[0])
    torch.testing.assert_close(plain.memory.key_covariance, only_first.memory.key_covariance, atol=1e-4, rtol=1e-4)
