"""The editing API on a tiny model: settings resolved from configs/, the ledger, re-editing, forget."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
import torch
from peft import get_peft_model
from transformers import LlamaConfig

import editors
import memoir
from conftest import save_tiny_model, tiny_model, tiny_tokenizer
from editors import Ledger, MemoirEditor, MemoirHparams, describe
from editors.background import shipped_background_texts
from editors.edit_data import load_edit_data
from editors.errors import InvalidSettingsError, LedgerError, UnknownEditError
from editors.memoir_hparams import with_settings
from editors.ledger import LEDGER_FILE
from eval_suites.shipped_background import shipped_documents
from eval_suites.suites import SUITES, suite_path
from memoir.defaults import all_defaults, resolve_defaults

SMOLLM2_SHAPE = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30)
CONFIG = """
memoir: {target_layer: 1, top_k: 24, tau: 0.7}
editor: {lr: 50.0, max_steps: 8, loss_threshold: 0.0, prefix_mode: none, num_background_texts: 8}
"""
FACTS = [("the capital of france is", "w40 w41"), ("who was born in paris", "w50"), ("what river is in the city", "w60 w61")]


def test_one_resolver_finds_a_models_settings_by_name_folder_shape_or_explicit_file(tmp_path):
    smollm2 = all_defaults()["smollm2-135m"]
    assert resolve_defaults("smollm2-135m") is smollm2
    LlamaConfig(**SMOLLM2_SHAPE).save_pretrained(tmp_path / "folder")
    assert resolve_defaults(str(tmp_path / "folder")) is smollm2
    assert resolve_defaults(LlamaConfig(**SMOLLM2_SHAPE)) is smollm2
    assert resolve_defaults(tiny_model()) is None
    (tmp_path / "mine.yaml").write_text(CONFIG)
    assert resolve_defaults("smollm2-135m", tmp_path / "mine.yaml")["editor"]["lr"] == 50.0
    assert MemoirHparams.for_model(LlamaConfig(**SMOLLM2_SHAPE)).lr == smollm2["editor"]["lr"] == 10.0


def test_settings_changed_in_memory_go_to_their_sections_and_leave_the_shipped_config_as_it_was():
    shipped = all_defaults()["smollm2-135m"]
    before = json.dumps(shipped, sort_keys=True)
    changed = with_settings(shipped, {"tau": 0.5, "lr": 5.0, "dtype": "bfloat16"})
    assert json.dumps(shipped, sort_keys=True) == before
    assert (changed["memoir"]["tau"], changed["editor"]["lr"], changed["dtype"]) == (0.5, 5.0, "bfloat16")
    assert resolve_defaults("smollm2-135m", changed) == changed
    assert MemoirHparams.for_model("smollm2-135m", changed).lr == 5.0
    with pytest.raises(InvalidSettingsError, match="Unknown setting 'learning_rate'"):
        with_settings(shipped, {"learning_rate": 5.0})
    with pytest.raises(memoir.InvalidConfigError, match="the settings: dtype must be one of"):
        resolve_defaults("smollm2-135m", with_settings(shipped, {"dtype": "int8"}))


def test_the_paper_config_turns_off_every_mechanism_beyond_the_paper_and_is_chosen_by_name_only():
    paper, shipped = all_defaults()["smollm2-135m-paper"], all_defaults()["smollm2-135m"]
    config, hparams = memoir.MemoirConfig(**paper["memoir"]), MemoirHparams.from_dict(paper["editor"])
    plain_config, plain_hparams = memoir.MemoirConfig(), MemoirHparams()
    for key in ("pooling", "min_similarity", "min_margin", "center_residual", "banks"):
        assert getattr(config, key) == getattr(plain_config, key)
    assert plain_config.banks == 1  # one R, as the paper
    for key in ("preservation", "normalise_steps", "last_step_bisections", "consolidate_every", "weight_decay",
                "prefix_mode", "grad_clip", "loss_threshold", "max_steps", "preservation_variants",
                "max_protected_positions", "train_variants", "consolidate_in_turn", "long_target_tokens"):
        assert getattr(hparams, key) == getattr(plain_hparams, key)
    assert (config.target_layer, config.top_k) == (shipped["memoir"]["target_layer"], shipped["memoir"]["top_k"])
    assert resolve_defaults("smollm2-135m", "smollm2-135m-paper") is paper
    assert resolve_defaults(LlamaConfig(**SMOLLM2_SHAPE)) is shipped


def test_an_editor_without_settings_takes_the_models_file_or_warns_that_it_uses_the_papers(caplog):
    model = editors_model()
    model.peft_config["default"].base_model_alias = "smollm2-135m"
    assert MemoirEditor(model, tiny_tokenizer()).hparams == MemoirHparams.from_dict(all_defaults()["smollm2-135m"]["editor"])
    with caplog.at_level(logging.WARNING):
        editor = MemoirEditor(editors_model(), tiny_tokenizer())
    assert editor.hparams == MemoirHparams() and "paper's LLaMA-3-8B settings" in caplog.text


def editors_model():
    return get_peft_model(tiny_model(num_hidden_layers=4), memoir.MemoirConfig(target_layer=1, top_k=24, tau=0.7)).eval()


@pytest.fixture
def workspace(tmp_path):
    save_tiny_model(tmp_path / "model", num_hidden_layers=4)
    (tmp_path / "config.yaml").write_text(CONFIG)
    return tmp_path


def fresh_editor(workspace, tau: float = 0.7) -> MemoirEditor:
    (workspace / "config.yaml").write_text(CONFIG.replace("tau: 0.7", f"tau: {tau}"))
    return MemoirEditor.from_pretrained(workspace / "model", config=workspace / "config.yaml")


def test_edits_land_in_the_ledger_and_survive_save_and_load(workspace):
    editor = fresh_editor(workspace)
    assert editor.hparams.lr == 50.0 and editor.model.peft_config["default"].top_k == 24
    editor.edit(*FACTS[0])
    editor.edit(editors.EditRequest(id="mine", prompt=FACTS[1][0], target=FACTS[1][1]))
    editor.edit_stream([FACTS[2]])
    assert [(e["id"], e["prompt"], e["target"]) for e in editor.edits] == [("0", *FACTS[0]), ("mine", *FACTS[1]), ("2", *FACTS[2])]
    assert all(e["steps"] == 8 and e["loss"] > 0 and e["time"].endswith("+00:00") for e in editor.edits)
    folder = editor.save(workspace / "adapter")
    assert json.loads((folder / LEDGER_FILE).read_text())["written"] == 3
    loaded = MemoirEditor.from_pretrained(folder, config=workspace / "config.yaml")
    assert loaded.edits == editor.edits and loaded.ledger.written == 3
    assert torch.equal(loaded.memory.index.masks, editor.memory.index.masks)
    assert torch.equal(loaded.memory.R, editor.memory.R)
    held = describe(workspace / "adapter")
    assert held["num_edits"] == 3 and held["edits"] == editor.edits and held["config"]["tau"] == 0.7


def test_a_memory_with_edits_but_no_ledger_is_refused(workspace):
    editor = fresh_editor(workspace)
    editor.edit(*FACTS[0])
    editor.model.save_pretrained(workspace / "no-ledger")
    with pytest.raises(LedgerError, match="no ledger was given"):
        MemoirEditor.from_pretrained(workspace / "no-ledger", config=workspace / "config.yaml")
    assert describe(workspace / "no-ledger")["edits"] is None
    with pytest.raises(LedgerError, match=r"lists 0 edits \(0 forgotten\) but the memory stores 1 masks"):
        MemoirEditor(editor.model, editor.tokenizer, editor.hparams, ledger=Ledger())


def logits_of(model, tokenizer, prompt: str) -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer(prompt, return_tensors="pt")).logits


@pytest.mark.parametrize("tau", [0.7, 0.25])
def test_forget_routes_the_prompt_nowhere_and_leaves_the_other_edits_exactly_as_they_were(workspace, tau):
    editor = fresh_editor(workspace, tau)
    prompts = [prompt for prompt, _ in FACTS]
    with editor.model.disable_adapter():
        unedited = [logits_of(editor.model, editor.tokenizer, p) for p in prompts]
    editor.edit_stream(FACTS)
    edited = [logits_of(editor.model, editor.tokenizer, p) for p in prompts]
    assert not torch.equal(edited[1], unedited[1])
    kept_masks = editor.memory.index.masks[[0, 2]].clone()
    forgotten_mask = editor.memory.index.masks[1:2].clone()
    forgotten = editor.forget("1")
    assert forgotten.entry.prompt == prompts[1] and forgotten.still_fires is None
    # At tau 0.25 the forgotten mask still reaches tau with a stored one: only its kept mask stops it firing.
    assert (forgotten.overlap >= tau) == (tau == 0.25)
    assert [e["id"] for e in editor.edits] == ["0", "2"] and torch.equal(editor.memory.index.masks, kept_masks)
    assert torch.equal(editor.memory.forgotten.masks, forgotten_mask)
    assert [e["id"] for e in editor.ledger.forgotten_rows()] == ["1"] and editor.ledger.forgotten[0].forgotten_at
    assert torch.equal(logits_of(editor.model, editor.tokenizer, prompts[1]), unedited[1])
    for row in (0, 2):
        assert torch.equal(logits_of(editor.model, editor.tokenizer, prompts[row]), edited[row])
    with pytest.raises(UnknownEditError, match="No stored edit has id '1'"):
        editor.forget("1")
    reloaded = MemoirEditor.from_pretrained(editor.save(workspace / "adapter"))
    assert reloaded.ledger == editor.ledger and torch.equal(reloaded.memory.forgotten.masks, forgotten_mask)
    assert torch.equal(logits_of(reloaded.model, reloaded.tokenizer, prompts[1]), unedited[1])


def test_re_editing_a_prompt_replaces_its_entry_instead_of_adding_a_second(workspace):
    editor = fresh_editor(workspace)
    editor.edit_stream(FACTS[:2])
    first_mask = editor.memory.index.masks[0].clone()
    result = editor.edit(FACTS[0][0], "w70 w71")
    assert result.extra["replaced"] == "0" and result.id == "2"
    assert [(e["prompt"], e["target"]) for e in editor.edits] == [FACTS[1], (FACTS[0][0], "w70 w71")]
    assert editor.ledger.written == 3 and editor.memory.num_edits == 2
    assert torch.equal(editor.memory.index.masks[1], first_mask)


def test_an_edit_whose_prompt_fired_a_stored_edit_names_it_and_both_stay_stored(workspace, caplog):
    editor = fresh_editor(workspace)
    assert editor.edit(*FACTS[0]).extra["answered_by"] is None  # nothing stored yet
    assert editor.edit(*FACTS[1]).extra["answered_by"] is None  # another fact: routes to nothing
    with caplog.at_level(logging.INFO, logger="editors.memoir_editor"):
        result = editor.edit("the capital of france is now", "w70")  # the first fact in other words
    assert result.extra["answered_by"] == "0" and editor.memory.num_edits == 3
    assert "its prompt fired edit 0 before" in caplog.text


def test_a_forgotten_prompt_edited_again_fires_again(workspace):
    editor = fresh_editor(workspace)
    editor.edit_stream(FACTS)
    editor.forget("1")
    with editor.model.disable_adapter():
        unedited = logits_of(editor.model, editor.tokenizer, FACTS[1][0])
    editor.edit(*FACTS[1])
    assert torch.equal(editor.memory.index.masks[-1], editor.memory.forgotten.masks[0])
    assert not torch.equal(logits_of(editor.model, editor.tokenizer, FACTS[1][0]), unedited)


def test_ids_stay_unique_when_new_edits_reuse_a_stored_id(workspace):
    editor = fresh_editor(workspace)
    for prompt, target in FACTS:
        editor.edit(editors.EditRequest(id="0", prompt=prompt, target=target))
    assert [e["id"] for e in editor.edits] == ["0", "0.2", "0.3"]


def test_the_shipped_texts_come_from_the_train_files_only():
    for path, text in shipped_documents().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python -m eval_suites.shipped_background"
    scored = set()
    for suite in SUITES:
        scored |= {t for r in load_edit_data(suite_path(suite)).requests for t in (r.prompt, r.locality_prompt) if t}
    texts = shipped_background_texts()
    assert len(texts) >= 100 and not any(text.startswith(prompt) for text in texts for prompt in scored)


def test_the_editing_layer_imports_nothing_of_the_evaluation_harness():
    code = "import sys, editors, editors.edit_run; print(sorted(m for m in sys.modules if m.split('.')[0] == 'eval_suites'))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
