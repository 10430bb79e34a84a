"""The wrapped layer: exact identity when nothing routes, the stored mask when something does."""

from __future__ import annotations

import pytest
import torch

from conftest import routed, store_edit, tiny_model, wrap


def test_empty_memory_gives_the_unwrapped_logits_exactly(arch):
    base = tiny_model(arch)
    ids = torch.randint(1, 128, (3, 9), generator=torch.Generator().manual_seed(0))
    assert torch.equal(wrap(base)(ids).logits, base(ids).logits)


def test_query_below_tau_gives_the_unwrapped_logits_exactly(arch):
    base = tiny_model(arch)
    model = wrap(base, tau=1.0)
    edited = torch.tensor([[5, 6, 7, 8, 9]])
    other = torch.tensor([[90, 91, 92, 93, 94, 95]])
    store_edit(model, edited)
    out, routing = routed(model, other)
    assert out.logits.ne(base(other).logits).sum() == 0
    assert not routing.active.any()
    assert not torch.equal(model(edited).logits, base(edited).logits)


@pytest.mark.parametrize("center_residual", [False, True])
def test_matching_query_gets_the_residual_of_the_stored_mask(arch, center_residual):
    base = tiny_model(arch)
    model = wrap(base, tau=0.3, center_residual=center_residual)
    model.base_model.memory.background += 0.01
    prompt = torch.tensor([[5, 6, 7, 8, 9]])
    stored = store_edit(model, prompt)
    layer = model.base_model.memoir_layer
    seen = {}
    layer.register_forward_hook(lambda module, args, out: seen.update(a=args[0], out=out))
    _, routing = routed(model, prompt)
    assert routing.active.item() and routing.overlap.item() == 1.0
    assert torch.equal(routing.masks, stored)
    a = seen["a"]
    fed = a - layer.memory.background if center_residual else a
    expected = layer.base_layer(a) + (fed * stored.unsqueeze(1).float()) @ layer.memory.R.T
    torch.testing.assert_close(seen["out"], expected)


def test_paraphrase_is_routed_with_the_stored_mask_not_its_own():
    base = tiny_model("llama")
    model = wrap(base, tau=0.05)
    stored = store_edit(model, torch.tensor([[5, 6, 7, 8, 9]]))
    tuner = model.base_model
    with tuner.tracing_routing() as traced:
        model(torch.tensor([[5, 6, 7, 8, 10, 11]]))
    own, routing = tuner.memory.mask_of(traced[0].pooled), traced[0].routing
    assert routing.active.item() and not torch.equal(own, stored)
    assert torch.equal(routing.masks[0], stored[0])


def _pad(rows: list[list[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    attention = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row)
        attention[i, span] = 1
    return ids, attention


def test_mixed_batch_with_left_and_right_padding_matches_each_row_alone(arch):
    base = tiny_model(arch)
    model = wrap(base, tau=0.9)
    edited, unrelated = [5, 6, 7, 8, 9], [40, 41, 42, 43, 44, 45, 46, 47]
    store_edit(model, torch.tensor([edited]), scale=2.0)
    alone = {tuple(row): model(torch.tensor([row])).logits[0] for row in (edited, unrelated)}
    for side in ("left", "right"):
        ids, attention = _pad([edited, unrelated, edited], side)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        out, routing = routed(model, ids, attention_mask=attention, position_ids=positions)
        logits = out.logits
        assert routing.active.tolist() == [True, False, True]
        for i, row in enumerate((edited, unrelated, edited)):
            kept = attention[i].bool()
            torch.testing.assert_close(logits[i][kept], alone[tuple(row)], rtol=1e-5, atol=1e-5)


def test_prompt_mask_routes_a_teacher_forced_sequence_by_its_prompt(arch):
    base = tiny_model(arch)
    model = wrap(base, tau=0.99)
    prompt = [5, 6, 7, 8, 9]
    store_edit(model, torch.tensor([prompt]))
    full = torch.tensor([prompt + [60, 61, 62]])
    assert not routed(model, full)[1].active.item()
    prompt_mask = torch.tensor([[True] * 5 + [False] * 3])
    assert routed(model, full, prompt_mask=prompt_mask)[1].active.item()


def test_generate_gives_the_same_tokens_with_and_without_kv_cache(arch):
    base = tiny_model(arch)
    model = wrap(base, tau=0.5)
    prompt = torch.tensor([[5, 6, 7, 8, 9]])
    store_edit(model, prompt, scale=3.0)
    ids, attention = _pad([[5, 6, 7, 8, 9], [30, 31, 32]], "left")
    for inputs in (dict(input_ids=prompt), dict(input_ids=ids, attention_mask=attention)):
        cached = model.generate(**inputs, max_new_tokens=12, do_sample=False, use_cache=True, pad_token_id=0)
        uncached = model.generate(**inputs, max_new_tokens=12, do_sample=False, use_cache=False, pad_token_id=0)
        assert torch.equal(cached, uncached)
    unwrapped = base.generate(input_ids=prompt, max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert not torch.equal(model.generate(input_ids=prompt, max_new_tokens=12, do_sample=False, pad_token_id=0), unwrapped)


def test_decode_step_reuses_the_prefill_routing(arch):
    base = tiny_model(arch)
    model = wrap(base, tau=0.5)
    prompt = torch.tensor([[5, 6, 7, 8, 9]])
    store_edit(model, prompt)
    with model.base_model.tracing_routing() as traced:
        out = model(prompt, use_cache=True)
        step = model(torch.tensor([[100]]), cache=out.past_key_values, use_cache=True)
    assert len(traced) == 1 and traced[0].routing.active.item()  # the decode step did not route again
    whole = model(torch.cat([prompt, torch.tensor([[100]])], dim=1), prompt_mask=torch.tensor([[True] * 5 + [False]]))
    torch.testing.assert_close(step.logits[0, -1], whole.logits[0, -1], rtol=1e-4, atol=1e-5)


def test_a_trace_is_its_callers_alone():
    model = wrap(tiny_model("llama"), tau=0.5)
    prompt = torch.tensor([[5, 6, 7, 8, 9]])
    assert routed(model, prompt)[1] is None  # an empty memory routes nothing
    store_edit(model, prompt)
    tuner = model.base_model
    with tuner.tracing_routing() as outer:
        model(prompt)
        with tuner.tracing_routing() as inner:
            model(prompt)
        model(prompt)
    assert (len(outer), len(inner)) == (2, 1) and tuner.memoir_layer.traced is None


def test_only_masked_columns_of_R_receive_gradient():
    model = wrap(tiny_model("llama"))
    memory = model.base_model.memory
    memory.R.requires_grad_(True)
    mask = torch.zeros(1, memory.R.shape[1], dtype=torch.bool)
    mask[0, [3, 10, 50]] = True
    with model.base_model.forcing_masks(mask):
        model(torch.tensor([[5, 6, 7]])).logits.sum().backward()
    touched = memory.R.grad.abs().sum(0).nonzero().squeeze(-1).tolist()
    assert touched == [3, 10, 50]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "base_model.model.model.layers.1.mlp.down_proj.memoir_memory.default.R"
    ]
