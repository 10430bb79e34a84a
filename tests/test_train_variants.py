"""Training variants: an edit is written on word-dropout variants of its prompt beside the prompt itself."""

from __future__ import annotations

import torch

from editors.preservation import dropout_variants
from test_memoir_editor import REQUESTS, make_editor

REQUEST = REQUESTS[2]  # six words, so that its variants differ from it


def variant_loss_drop(request, train_variants: int) -> float:
    """How far one edit of `request` lowers the loss of its target after 4 seeded variants of its prompt, under its mask."""
    editor = make_editor(prefix_mode="none", train_variants=train_variants, loss_threshold=0.0)
    pairs = [(variant, request.target) for variant in dropout_variants(request.prompt, 4)]
    masks = editor.memory.mask_of(editor.plain_row_pooled(editor.rows(request))).expand(len(pairs), -1)
    before = editor._stored_edit_losses(pairs, masks)
    editor.edit(request)
    return float((before - editor._stored_edit_losses(pairs, masks)).sum())


def test_the_rows_are_the_plain_prompt_then_its_variants():
    editor = make_editor(prefix_mode="none", train_variants=2)
    batch = editor.rows(REQUEST)
    prompts = [editor.tokenizer.decode(row[prompt.bool()]) for row, prompt in zip(batch.input_ids, batch.prompt_mask)]
    assert prompts == [REQUEST.prompt, *dropout_variants(REQUEST.prompt, 2)]
    assert make_editor(prefix_mode="none").rows(REQUEST).input_ids.shape[0] == 1


def test_an_edit_written_on_its_variants_moves_their_outputs_towards_its_target_further():
    # The tiny random model is far from fitting any target in a few steps, so the test compares how far each moves.
    plain = sum(variant_loss_drop(request, 0) for request in REQUESTS)
    varied = sum(variant_loss_drop(request, 4) for request in REQUESTS)
    assert plain > 0 and varied > 1.2 * plain


def test_a_rewrite_trains_on_the_variants_as_the_first_writing_did():
    editor = make_editor(prefix_mode="none", train_variants=4, consolidate_above=0.0, loss_threshold=0.0)
    editor.edit(REQUEST)
    written = editor.memory.R.detach().clone()
    with torch.no_grad():
        editor.memory.R.zero_()  # worn down completely: the rewrite starts where the first writing did
    assert editor.consolidate() == [editor.edits[0]["id"]]
    torch.testing.assert_close(editor.memory.R.detach(), written)
    plain = make_editor(prefix_mode="none", loss_threshold=0.0)
    plain.edit(REQUEST)
    assert not torch.allclose(plain.memory.R.detach(), written)

