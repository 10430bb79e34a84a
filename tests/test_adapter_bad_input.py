"""Bad configs and unsupported models raise specific errors that say what to change."""

from __future__ import annotations

import pytest
from peft import get_peft_model
from transformers import PhiConfig, PhiForCausalLM

import memoir
from conftest import tiny_model, wrap


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(top_k=0), "top_k must be a positive"),
        (dict(top_k=-3), "top_k must be a positive"),
        (dict(tau=0.0), r"tau must lie in \(0, 1\]"),
        (dict(tau=1.5), r"tau must lie in \(0, 1\]"),
        (dict(target_layer=-1), "target_layer must be"),
        (dict(pooling="max"), "pooling must be one of"),
        (dict(min_margin=-0.1), r"min_margin must be an overlap difference in \[0, 1\]"),
        (dict(min_margin="0.1"), "min_margin must be"),
        (dict(margin_rank=1), "margin_rank must be an int >= 2"),
        (dict(margin_rank=True), "margin_rank must be an int >= 2"),
    ],
)
def test_invalid_config_values(config, message):
    with pytest.raises(memoir.InvalidConfigError, match=message):
        memoir.MemoirConfig(**config)


def test_layer_index_out_of_range():
    with pytest.raises(memoir.InvalidConfigError, match=r"layers 0\.\.1"):
        wrap(tiny_model(), target_layer=2)


def test_k_larger_than_the_mlp_width():
    with pytest.raises(memoir.InvalidConfigError, match="exceeds this MLP's width D=96"):
        wrap(tiny_model(), top_k=97)


def test_model_without_gated_mlp_names_what_is_missing():
    phi = PhiForCausalLM(PhiConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4))
    with pytest.raises(memoir.UnsupportedArchitectureError, match="missing gate_proj, up_proj, down_proj"):
        get_peft_model(phi, memoir.MemoirConfig(target_layer=0, top_k=8))


def test_a_second_memory_on_the_same_model_is_refused():
    model = wrap(tiny_model())
    with pytest.raises(memoir.InvalidConfigError, match="already has a MEMOIR memory"):
        model.add_adapter("other", memoir.MemoirConfig(target_layer=0, top_k=8))


def test_merging_is_refused():
    model = wrap(tiny_model())
    with pytest.raises(memoir.MemoirError, match="cannot be merged"):
        model.merge_and_unload()


def test_offline_an_uncached_hub_id_says_the_cache_lacks_it():
    with pytest.raises(memoir.ModelNotAvailableError, match="HF_HUB_OFFLINE=1, so only the local Hugging Face cache"):
        memoir.load_base_model("no-such-org/no-such-model")
    with pytest.raises(memoir.ModelNotAvailableError, match="'no-such-org/no-such-model'.*HF_HUB_OFFLINE=1"):
        memoir.MemoirModel.from_pretrained("no-such-org/no-such-model")
