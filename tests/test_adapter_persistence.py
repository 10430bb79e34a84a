"""Save and load: three loaders, a fresh process, atomic saves, adapters that do not fit."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import AutoPeftModelForCausalLM, PeftModel
from safetensors.torch import load_file

import memoir
from conftest import routed, store_edit, tiny_model, wrap
from memoir.base_models import EmbeddedModel

PROMPTS = torch.tensor([[5, 6, 7, 8, 9], [40, 41, 42, 43, 44]])


def _state(model) -> dict[str, torch.Tensor]:
    memory = model.base_model.memory
    return {
        "R": memory.R.detach(),
        "background": memory.background,
        "permutation": memory.top_hash.permutation,
        "masks": memory.index.masks,
        "banks": memory.index.banks,
    }


@pytest.fixture
def saved(tmp_path, arch):
    base = tiny_model(arch)
    model = wrap(base, tau=0.9)
    model.base_model.memory.background += torch.linspace(-0.01, 0.01, 96)
    store_edit(model, PROMPTS[:1], scale=2.0)
    store_edit(model, torch.tensor([[70, 71, 72]]), seed=2)
    base.save_pretrained(tmp_path / "base")
    model.peft_config["default"].base_model_name_or_path = str(tmp_path / "base")
    memoir.save_adapter(model, tmp_path / "adapter")
    return model, base, tmp_path


def _loaders(base, folder: Path):
    yield "MemoirModel", memoir.MemoirModel.from_pretrained(str(folder))
    yield "PeftModel", PeftModel.from_pretrained(copy.deepcopy(base), str(folder))
    yield "AutoPeftModelForCausalLM", AutoPeftModelForCausalLM.from_pretrained(str(folder))



def test_saved_folder_is_a_standard_peft_adapter_with_all_state(saved):
    model, _, tmp_path = saved
    folder = tmp_path / "adapter"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    tensors = load_file(folder / "adapter_model.safetensors")
    names = {key.rsplit(".", 1)[-1]: value for key, value in tensors.items()}
    assert set(names) == {"R", "background", "token_weights", "key_covariance", "permutation", "masks", "features", "banks"}
    assert names["masks"].dtype == torch.bool and names["masks"].shape == (2, 96)
    assert all("default" not in key for key in tensors)
    config = memoir.MemoirConfig.from_pretrained(str(folder))
    assert (config.top_k, config.tau, config.target_layer) == (24, 0.9, 1)


def test_three_loaders_give_identical_logits_and_state(saved):
    model, base, tmp_path = saved
    out, routing = routed(model, PROMPTS)
    expected = out.logits
    assert routing.active.tolist() == [True, False]
    for name, loaded in _loaders(base, tmp_path / "adapter"):
        assert torch.equal(loaded(PROMPTS).logits, expected), name
        for key, value in _state(loaded).items():
            assert torch.equal(value, _state(model)[key]), (name, key)


FRESH_PROCESS = """
import sys, torch, memoir
model = memoir.MemoirModel.from_pretrained(sys.argv[1])
torch.save(model(torch.tensor({prompts})).logits, sys.argv[2])
"""


def test_fresh_process_loads_identical_logits(saved):
    model, _, tmp_path = saved
    out = tmp_path / "logits.pt"
    script = FRESH_PROCESS.format(prompts=PROMPTS.tolist())
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "adapter"), str(out)], check=True)
    assert torch.equal(torch.load(out), model(PROMPTS).logits)


def test_adapter_that_does_not_fit_the_base_model_is_refused(saved, monkeypatch):
    _, _, tmp_path = saved
    other = tiny_model("llama", intermediate_size=80)
    with pytest.raises(memoir.BaseModelMismatchError, match="intermediate_size"):
        PeftModel.from_pretrained(other, str(tmp_path / "adapter"))
    monkeypatch.setenv("MEMOIR_ALLOW_OTHER_BASE", "1")  # past the fingerprint, the shapes still refuse it
    with pytest.raises(memoir.AdapterShapeError, match="base model"):
        PeftModel.from_pretrained(other, str(tmp_path / "adapter"))


def test_failed_save_leaves_the_previous_adapter_intact(saved, monkeypatch):
    model, _, tmp_path = saved
    folder = tmp_path / "adapter"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    store_edit(model, torch.tensor([[80, 81]]), seed=3)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("peft.peft_model.safe_save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        memoir.save_adapter(model, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def embedded_tiny(tmp_path, monkeypatch) -> str:
    """A tiny model registered as an embedded one, already converted into a private MEMOIR_CACHE."""
    monkeypatch.setenv("MEMOIR_CACHE", str(tmp_path / "cache"))
    tiny_model().save_pretrained(tmp_path / "cache" / "tiny-embedded")
    entry = EmbeddedModel(package="no_such_package_here", gguf_file="tiny.gguf", install="pip install tiny-embedded",
                          hub_id="memoir-test/tiny-embedded", description="a tiny test model")
    monkeypatch.setitem(memoir.EMBEDDED_MODELS, "tiny-embedded", entry)
    return "tiny-embedded"


def test_embedded_model_adapter_names_its_hub_id_and_reloads_offline_by_alias(embedded_tiny, tmp_path):
    model = memoir.MemoirModel.from_pretrained(embedded_tiny, config=memoir.MemoirConfig(target_layer=1, top_k=24, tau=0.6))
    store_edit(model, PROMPTS[:1], scale=2.0)
    memoir.save_adapter(model, tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (saved["base_model_name_or_path"], saved["base_model_alias"]) == ("memoir-test/tiny-embedded", embedded_tiny)
    loaded = memoir.MemoirModel.from_pretrained(str(tmp_path / "adapter"))  # HF_HUB_OFFLINE=1: the alias, not the Hub
    assert torch.equal(loaded(PROMPTS).logits, model(PROMPTS).logits)
    # Where the embedded model is missing, the Hub id is what is left to try; offline the error names it.
    shutil.rmtree(tmp_path / "cache" / embedded_tiny)
    with pytest.raises(memoir.ModelNotAvailableError, match="'memoir-test/tiny-embedded' did not load.*HF_HUB_OFFLINE=1"):
        memoir.MemoirModel.from_pretrained(str(tmp_path / "adapter"))
