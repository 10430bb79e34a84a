"""Shared fixtures: tiny random LLaMA / Mistral models that build in milliseconds."""

from __future__ import annotations

import os

# Tests never reach the public Hub: set before huggingface_hub is first imported (it reads this once).
os.environ["HF_HUB_OFFLINE"] = "1"

import copy  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from peft import get_peft_model  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM  # noqa: E402

import memoir  # noqa: E402

TINY = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    pad_token_id=0,
)
ARCHITECTURES = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
}


def tiny_model(arch: str = "llama", seed: int = 0, **overrides) -> torch.nn.Module:
    config_cls, model_cls = ARCHITECTURES[arch]
    torch.manual_seed(seed)
    return model_cls(config_cls(**(TINY | overrides))).eval()


def wrap(base: torch.nn.Module, **config) -> torch.nn.Module:
    defaults = dict(target_layer=1, top_k=24, tau=0.6)
    return get_peft_model(copy.deepcopy(base), memoir.MemoirConfig(**(defaults | config))).eval()


def store_edit(model, input_ids: torch.Tensor, seed: int = 1, scale: float = 0.5) -> torch.Tensor:
    """Store the mask of `input_ids` (1, S) as an edit and fill its columns of R; returns the mask."""
    tuner = model.base_model
    memory = tuner.memory
    mask = memory.store(tuner.route_prompts(input_ids=input_ids).pooled)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        memory.R += scale * torch.randn(memory.R.shape, generator=generator) * mask.float()
    return mask


def routed(model, *args, **kwargs):
    """The model's output for one call and how that call routed (a `Routing`; None with an empty memory)."""
    with model.base_model.tracing_routing() as traced:
        out = model(*args, **kwargs)
    return out, traced[-1].routing


@pytest.fixture(autouse=True, scope="session")
def unedited_cache_in_a_temporary_folder(tmp_path_factory):
    """`memoir eval` keeps unedited scores (eval_suites.unedited_cache): never in the user's cache."""
    os.environ["MEMOIR_UNEDITED_CACHE"] = str(tmp_path_factory.mktemp("unedited"))


@pytest.fixture(params=sorted(ARCHITECTURES))
def arch(request) -> str:
    return request.param


def save_tiny_model(folder, **overrides):
    """A tiny LLaMA and its word tokenizer saved as a model folder, for code that loads a model by path."""
    tiny_model("llama", **overrides).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


WORDS = "the capital of france is paris when was who what where in a an and to by born city country year river".split()


def tiny_tokenizer():
    """A word-level tokenizer over a small vocabulary (unknown words -> [UNK]); ids fit TINY's vocab."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1} | {word: i + 2 for i, word in enumerate(WORDS)}
    vocab |= {f"w{i}": len(vocab) + i for i in range(128 - len(vocab))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
