"""Banks of R: long targets are written and read in their own block of R, short ones in theirs."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file

import memoir
from conftest import tiny_model, tiny_tokenizer, wrap
from editors.errors import InvalidSettingsError
from editors.ledger import Ledger
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from editors.preservation import Preconditioner, add_keys
from editors.request import EditRequest
from memoir.errors import AdapterShapeError, InvalidConfigError
from test_long_targets import LONG, LONG_AFTER, SHORT
from test_memoir_editor import BACKGROUND, REQUESTS

OTHER_SHORT = REQUESTS[0]
LONG_TWIN = EditRequest("3", "what river is in the town", "w70 w71 w72")


def bank_editor(banks: int = 2, **hparams) -> MemoirEditor:
    model = wrap(tiny_model("llama", num_hidden_layers=4), target_layer=1, tau=0.7, banks=banks)
    settings = dict(lr=5.0, max_steps=6, prefix_mode="none", loss_threshold=0.0, long_target_tokens=LONG_AFTER,
                    long_target_lr=5.0, long_target_loss_threshold=0.0) | hparams
    return MemoirEditor(model, tiny_tokenizer(), MemoirHparams(**settings), background_texts=BACKGROUND)


def stored_output(editor: MemoirEditor, row: int) -> torch.Tensor:
    """What R adds to the stored edit `row`'s own prompt and target inputs, under its stored mask and bank."""
    entry = editor.ledger.entries[row]
    activations = editor._plain_row_inputs(editor.rows((entry.prompt, entry.target))).activations
    return editor.memory.residual(activations, editor.memory.stored_masks([row])).detach()


def test_long_targets_are_written_in_bank_1_and_short_ones_in_bank_0():
    editor = bank_editor()
    for request in (SHORT, LONG, OTHER_SHORT):
        editor.edit(request)
    width = editor.memory.index.width
    assert editor.memory.index.banks.tolist() == [0, 1, 0]
    short_columns = editor.memory.index.masks[[0, 2]].any(dim=0)
    R = editor.memory.R.detach()
    assert R[:, width:][:, ~editor.memory.index.masks[1]].abs().max() == 0  # bank 1: the long edit's columns only
    assert R[:, width:].abs().max() > 0
    assert R[:, :width][:, ~short_columns].abs().max() == 0


def test_a_long_edit_leaves_a_short_edits_output_exactly_as_it_was_where_one_R_does_not():
    changed = {}
    for banks in (1, 2):
        editor = bank_editor(banks)
        editor.edit(SHORT)
        before = stored_output(editor, 0)
        result = editor.edit(LONG)
        assert result.extra["best_overlap_with_earlier"] > 0.2  # the long edit's mask shares the short one's columns
        changed[banks] = float((stored_output(editor, 0) - before).abs().max())
    assert changed[1] > 1e-3
    assert changed[2] == 0.0


@pytest.mark.parametrize("request_", [SHORT, LONG], ids=["short", "long"])
def test_edits_that_all_sit_in_one_bank_are_written_as_one_R_writes_them(request_):
    one, two = bank_editor(1), bank_editor(2)
    for editor in (one, two):
        editor.edit(request_)
        editor.edit(OTHER_SHORT if request_ is SHORT else LONG_TWIN)
    width = one.memory.index.width
    block = slice(width, None) if request_ is LONG else slice(0, width)
    torch.testing.assert_close(two.memory.R.detach()[:, block], one.memory.R.detach(), rtol=1e-4, atol=1e-6)


def test_routing_applies_the_columns_of_the_routed_edits_bank():
    editor = bank_editor()
    editor.edit(SHORT)
    editor.edit(LONG)
    encoded = editor.tokenizer([LONG.prompt], return_tensors="pt")
    routing = editor.model.base_model.route_prompts(**encoded).routing
    assert bool(routing.active[0]) and int(routing.index[0]) == 1
    assert torch.equal(routing.masks, editor.memory.stored_masks([1]))
    assert routing.masks[0, : editor.memory.index.width].sum() == 0


def test_stored_losses_read_each_edit_in_its_own_bank():
    editor = bank_editor()
    results = [editor.edit(request) for request in (SHORT, LONG)]
    losses = editor.stored_losses()
    # The short edit's loss is still its own after the long edit, and the long one's is read in bank 1.
    assert losses.tolist() == pytest.approx([result.loss for result in results], rel=1e-3, abs=1e-4)


def test_forgetting_a_bank_1_edit_takes_exactly_its_inputs_out_of_C():
    editor = bank_editor(preservation=1.0)
    editor.edit(SHORT)
    covariance = editor.memory.key_covariance.clone()
    assert covariance.shape == (2, editor.memory.index.width, editor.memory.index.width)
    assert covariance[0].any() and not covariance[1].any()
    editor.edit(LONG)
    assert torch.equal(editor.memory.key_covariance[0], covariance[0]) and editor.memory.key_covariance[1].any()
    editor.forget(LONG.id)
    torch.testing.assert_close(editor.memory.key_covariance, covariance, rtol=1e-5, atol=1e-5)


def test_the_preconditioner_damps_the_inputs_stored_in_the_masks_bank_alone():
    width = 4
    covariance = torch.zeros(2, width, width)
    key = torch.zeros(1, 2 * width)
    key[0, 0] = 1.0  # column 0 of bank 0
    add_keys(covariance, key)
    assert covariance[0, 0, 0] == 1.0 and covariance.sum() == 1.0
    for bank, damped in ((0, 0.1), (1, 1.0)):  # 1 / (1 + 9 * 1), and nothing stored in bank 1
        mask = torch.zeros(2 * width, dtype=torch.bool)
        mask[bank * width : bank * width + 2] = True
        grad = torch.ones(1, 2 * width)
        Preconditioner.for_mask(covariance, mask, strength=9.0).apply_(grad)
        assert grad[0, bank * width].item() == pytest.approx(damped) and grad[0, bank * width + 1].item() == 1.0


def test_banks_survive_save_and_load(tmp_path):
    editor = bank_editor()
    editor.edit(SHORT)
    editor.edit(LONG)
    memoir.save_adapter(editor.model, tmp_path)
    again = PeftModel.from_pretrained(tiny_model("llama", num_hidden_layers=4), str(tmp_path)).base_model.memory
    assert again.banks == 2 and torch.equal(again.index.banks, editor.memory.index.banks)
    torch.testing.assert_close(again.R, editor.memory.R)


def test_an_adapter_saved_before_banks_loads_with_every_edit_in_bank_0(tmp_path):
    editor = bank_editor(1)
    editor.edit(SHORT)
    editor.edit(OTHER_SHORT)
    memoir.save_adapter(editor.model, tmp_path)
    weights = tmp_path / "adapter_model.safetensors"
    tensors = {key: value for key, value in load_file(weights).items() if not key.endswith(".banks")}
    save_file(tensors, weights)
    again = PeftModel.from_pretrained(tiny_model("llama", num_hidden_layers=4), str(tmp_path)).base_model.memory
    assert again.index.banks.tolist() == [0, 0]
    assert torch.equal(again.stored_masks([0, 1]), editor.memory.index.masks)


def test_an_adapter_whose_edits_name_a_bank_its_config_lacks_is_refused_at_load(tmp_path):
    editor = bank_editor()
    editor.edit(SHORT)
    memoir.save_adapter(editor.model, tmp_path)
    weights = tmp_path / "adapter_model.safetensors"
    tensors = {key: value.fill_(2) if key.endswith(".banks") else value for key, value in load_file(weights).items()}
    save_file(tensors, weights)
    with pytest.raises(AdapterShapeError, match=r"banks \[2\] but its R has 2 bank"):
        PeftModel.from_pretrained(tiny_model("llama", num_hidden_layers=4), str(tmp_path))


def test_an_adapter_saved_with_one_c_over_both_banks_loads_as_its_blocks(tmp_path):
    editor = bank_editor(preservation=1.0)
    editor.edit(SHORT)
    editor.edit(LONG)
    memoir.save_adapter(editor.model, tmp_path)
    weights = tmp_path / "adapter_model.safetensors"
    tensors = load_file(weights)
    (name,) = [key for key in tensors if key.endswith("key_covariance")]
    tensors[name] = torch.block_diag(*tensors[name])  # as adapters saved before C was kept per bank
    save_file(tensors, weights)
    again = PeftModel.from_pretrained(tiny_model("llama", num_hidden_layers=4), str(tmp_path)).base_model.memory
    assert torch.equal(again.key_covariance, editor.memory.key_covariance)


def test_a_c_of_another_shape_is_refused_at_load_and_one_rebuilt_from_the_ledger_once_deleted(tmp_path):
    editor = bank_editor(preservation=1.0)
    editor.edit(SHORT)
    editor.save(tmp_path)
    weights = tmp_path / "adapter_model.safetensors"
    tensors = load_file(weights)
    (name,) = [key for key in tensors if key.endswith("key_covariance")]
    save_file({**tensors, name: tensors[name][:1]}, weights)
    with pytest.raises(AdapterShapeError, match="delete that tensor"):
        PeftModel.from_pretrained(tiny_model("llama", num_hidden_layers=4), str(tmp_path))
    save_file({key: value for key, value in tensors.items() if key != name}, weights)
    model = PeftModel.from_pretrained(tiny_model("llama", num_hidden_layers=4), str(tmp_path), is_trainable=True)
    again = MemoirEditor(model, tiny_tokenizer(), editor.hparams, prefixes=editor.prefixes, ledger=Ledger.read(tmp_path))
    torch.testing.assert_close(again.memory.key_covariance, editor.memory.key_covariance)


@pytest.mark.parametrize("banks, settings", [(2, dict(long_target_tokens=0)), (3, {})], ids=["no-length", "three"])
def test_the_editor_refuses_banks_it_cannot_sort_edits_into(banks, settings):
    with pytest.raises(InvalidSettingsError, match="long_target_tokens"):
        bank_editor(banks, **settings)


@pytest.mark.parametrize("banks", [0, True, 1.5])
def test_the_config_refuses_a_bank_count_that_is_not_a_whole_number_from_1(banks):
    with pytest.raises(InvalidConfigError, match="banks"):
        memoir.MemoirConfig(banks=banks)


def test_each_stored_edit_costs_its_mask_feature_and_bank_bytes():
    editor = bank_editor()
    index = editor.memory.index
    assert index.bytes_per_edit == index.width * (1 + 2) + 8  # bool mask, fp16 feature, int64 bank
