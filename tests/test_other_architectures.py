"""Qwen2 and Gemma-3 have the same gate/up/down MLP: MEMOIR works on them with no special code."""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Qwen2Config, Qwen2ForCausalLM

from conftest import TINY, routed, store_edit, tiny_tokenizer, wrap
from editors.edit_loss import CachedEditLoss, NaiveEditLoss
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from editors.request import EditRequest

GEMMA = dict(head_dim=16, sliding_window=4, layer_types=["sliding_attention", "full_attention"] * 2)
BUILDERS = {
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**(TINY | {"num_hidden_layers": 4}))),
    "gemma3": lambda: Gemma3ForCausalLM(Gemma3TextConfig(**(TINY | {"num_hidden_layers": 4} | GEMMA))),
}


@pytest.fixture(params=sorted(BUILDERS))
def base(request):
    torch.manual_seed(0)
    return BUILDERS[request.param]().eval()


def test_empty_memory_is_exact_and_a_stored_edit_routes(base):
    model = wrap(base, target_layer=2, tau=0.9)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11]])
    assert torch.equal(model(ids).logits, base(ids).logits)
    store_edit(model, ids, scale=2.0)
    out, routing = routed(model, ids)
    assert not torch.equal(out.logits, base(ids).logits) and routing.active.item()
    cached = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
    uncached = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False, use_cache=False, pad_token_id=0)
    assert torch.equal(cached, uncached)


def test_cached_edit_loss_equals_naive_with_per_layer_attention_types(base):
    model = wrap(base, target_layer=1, tau=0.9)
    editor = MemoirEditor(model, tiny_tokenizer(), MemoirHparams(prefix_mode="none"), background_texts=["w1 w2 w3"])
    batch = editor.rows(EditRequest("0", "the capital of france is w3 w4 w5", "w40 w41"))
    mask = editor._mask_of_plain_row(batch)
    with torch.no_grad():
        editor.memory.R.normal_()
    torch.testing.assert_close(CachedEditLoss(model, batch, mask)(), NaiveEditLoss(model, batch, mask)())
