"""The MEMOIR editor: fast path equals naive steps, masks and columns, kept edits."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_model, tiny_tokenizer, wrap
from editors.background import background_mean, shipped_background_texts
from editors.edit_loss import CachedEditLoss, NaiveEditLoss
from editors.errors import InvalidSettingsError
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from editors.request import EditRequest

BACKGROUND = ["the city of w9", "w5 w6 w7 w8", "who was born in a year"]
REQUESTS = [
    EditRequest("0", "the capital of france is", "w40 w41"),
    EditRequest("1", "who was born in paris", "w50"),
    EditRequest("2", "what river is in the city", "w60 w61 w62"),
]


def make_editor(arch: str = "llama", **hparams) -> MemoirEditor:
    model = wrap(tiny_model(arch, num_hidden_layers=4), target_layer=1, tau=0.7)
    settings = dict(lr=5.0, max_steps=12, prefix_seeds=("the", "who"), prefix_lengths=(3,)) | hparams
    return MemoirEditor(model, tiny_tokenizer(), MemoirHparams(**settings), background_texts=BACKGROUND)


def test_fast_path_gives_the_naive_loss_and_R_after_n_steps(arch):
    trained = {}
    for fast in (True, False):
        editor = make_editor(arch, fast_path=fast, loss_threshold=0.0)
        results = [editor.edit(request) for request in REQUESTS]
        trained[fast] = (editor.memory.R.detach().clone(), [r.loss for r in results], [r.steps for r in results])
    torch.testing.assert_close(trained[True][0], trained[False][0], rtol=1e-4, atol=1e-6)
    assert trained[True][1] == pytest.approx(trained[False][1], rel=1e-4)
    assert trained[True][2] == trained[False][2] == [12, 12, 12]


@pytest.mark.parametrize("consolidating", [False, True])
def test_a_plain_row_edit_runs_the_whole_model_once_and_trains_as_the_naive_loss_does(arch, consolidating):
    settings = dict(prefix_mode="none", loss_threshold=0.0) | (dict(consolidate_in_turn=1, consolidate_above=1e9) if consolidating else {})
    naive, fast = make_editor(arch, fast_path=False, **settings), make_editor(arch, **settings)
    whole_model_calls = []
    fast.model.get_base_model().register_forward_pre_hook(lambda module, args: whole_model_calls.append(1))
    for request in REQUESTS:
        naive.edit(request)
        fast.edit(request)
    # One forward per edit chooses its mask and gives the lower layers its steps and its checks reuse.
    assert len(whole_model_calls) == len(REQUESTS)
    torch.testing.assert_close(fast.memory.R, naive.memory.R, rtol=1e-4, atol=1e-6)


def test_cached_loss_equals_naive_loss_with_a_nonzero_memory(arch):
    editor = make_editor(arch)
    editor.edit(REQUESTS[0])
    batch = editor.rows(REQUESTS[1])
    mask = editor._mask_of_plain_row(batch)
    torch.testing.assert_close(CachedEditLoss(editor.model, batch, mask)(), NaiveEditLoss(editor.model, batch, mask)())


def test_each_edit_moves_only_its_own_mask_columns_and_stores_its_mask():
    editor = make_editor()
    before = editor.memory.R.detach().clone()
    editor.edit(REQUESTS[0])
    mask = editor.memory.index.masks[0]
    changed = (editor.memory.R.detach() != before).any(dim=0)
    assert changed.any() and not changed[~mask].any()
    assert len(editor.memory.index) == 1 and int(mask.sum()) == 24


def test_training_lowers_the_loss_and_the_prompt_routes_to_its_mask():
    # A random tiny model's final norm caps its logits, so the loss cannot reach the threshold.
    editor = make_editor(lr=1000.0, grad_clip=1000.0, max_steps=30)
    batch = editor.rows(REQUESTS[0])
    mask = editor._mask_of_plain_row(batch)
    before = NaiveEditLoss(editor.model, batch, mask)().item()
    result = editor.edit(REQUESTS[0])
    assert result.loss < before - 0.5
    with editor.model.base_model.tracing_routing() as traced:
        editor.logits(batch.input_ids[:1], batch.attention_mask[:1], batch.prompt_mask[:1])
    routing = traced[0].routing
    assert routing.active.item() and torch.equal(routing.masks[0], editor.memory.index.masks[0])


def test_edits_are_kept_between_calls_and_reported_with_their_overlap():
    editor = make_editor()
    first = editor.edit(REQUESTS[0])
    second = editor.edit(REQUESTS[1])
    assert len(editor.memory.index) == 2
    assert first.extra["best_overlap_with_earlier"] == 0.0
    assert 0.0 < second.extra["best_overlap_with_earlier"] <= 1.0


def test_fresh_memory_without_background_texts_takes_the_shipped_ones():
    hparams = MemoirHparams(prefix_mode="none", num_background_texts=5)
    editor = MemoirEditor(wrap(tiny_model()), tiny_tokenizer(), hparams)
    expected = background_mean(wrap(tiny_model()), tiny_tokenizer(), shipped_background_texts()[:5])
    assert editor.memory.background.any()
    torch.testing.assert_close(editor.memory.background, expected)
    with pytest.raises(InvalidSettingsError, match="background_texts"):
        MemoirEditor(wrap(tiny_model()), tiny_tokenizer(), hparams, background_texts=[])


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(ValueError, match="Unknown editor hyperparameters"):
        MemoirHparams.from_dict({"learning_rate": 1.0})
    with pytest.raises(InvalidSettingsError, match="'consolidate_neighbours' is gone: use consolidate_in_turn"):
        MemoirHparams.from_dict({"consolidate_neighbours": 4})


def test_bfloat16_model_trains_a_float32_R():
    model = wrap(tiny_model("llama", num_hidden_layers=4).to(torch.bfloat16), target_layer=1, tau=0.7)
    editor = MemoirEditor(model, tiny_tokenizer(), MemoirHparams(lr=1000.0, grad_clip=1000.0, prefix_mode="none"),
                          background_texts=BACKGROUND)
    result = editor.edit(REQUESTS[0])
    assert editor.memory.R.dtype == torch.float32 and editor.memory.R.abs().sum() > 0
    assert result.steps > 0 and torch.isfinite(torch.tensor(result.loss))


def test_normalised_steps_move_R_by_lr_times_the_clip_even_when_the_gradient_is_small():
    lengths = {}
    for normalise in (False, True):
        editor = make_editor(lr=0.5, grad_clip=1000.0, max_steps=1, loss_threshold=0.0, normalise_steps=normalise)
        assert editor.edit(REQUESTS[2]).steps == 1
        lengths[normalise] = editor.memory.R.norm().item()
    assert 0 < lengths[False] < 50  # plain clipped SGD: lr * |gradient|, far below the clip
    assert abs(lengths[True] - 0.5 * 1000.0) < 0.5


def test_bisection_keeps_the_shortest_part_of_the_last_step_that_still_crosses_the_threshold():
    whole = make_editor(lr=5.0, max_steps=1, loss_threshold=0.0, normalise_steps=True, prefix_mode="none")
    batch = whole.rows(REQUESTS[2])
    start = NaiveEditLoss(whole.model, batch, whole._mask_of_plain_row(batch))().item()
    after_step = whole.edit(REQUESTS[2]).loss
    full_step = whole.memory.R.detach().clone()
    threshold = (start + after_step) / 2  # crossed by the whole step, not by a very short one
    for bisections in (0, 3):
        editor = make_editor(lr=5.0, max_steps=1, loss_threshold=threshold, normalise_steps=True,
                             prefix_mode="none", last_step_bisections=bisections)
        result = editor.edit(REQUESTS[2])
        fraction = editor.memory.R.norm().item() / full_step.norm().item()
        torch.testing.assert_close(editor.memory.R.detach(), fraction * full_step, rtol=1e-4, atol=1e-6)
        assert result.steps == 1 and result.loss < threshold
        if bisections == 0:
            assert fraction == pytest.approx(1.0) and result.loss == pytest.approx(after_step)
        else:  # a multiple of 1/8 short of the whole step, where the loss is above the whole step's
            assert fraction < 1.0 and (fraction * 8) == pytest.approx(round(fraction * 8), abs=1e-3)
            assert result.loss > after_step


def test_last_step_bisections_must_be_a_whole_number():
    with pytest.raises(InvalidSettingsError, match="last_step_bisections"):
        MemoirHparams(last_step_bisections=-1)
