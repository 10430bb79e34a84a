"""eval_suites.unedited_cache: a second run of the same model and records reads the unedited scores."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_model
from eval_suites.errors import ProtocolError
from eval_suites.protocol import run_sequential
from eval_suites.unedited_cache import stream_key, tensors_hash
from test_banks import SHORT, bank_editor
from test_eval_protocol import REQUESTS, LookupEditor
from tiny_tokenizer import word_tokenizer


def run(made: list, requests=REQUESTS, seed: int = 0):
    def make_editor() -> LookupEditor:
        made.append(LookupEditor(tiny_model(seed=seed), word_tokenizer()))
        return made[-1]

    return run_sequential(make_editor, requests, num_edits=len(requests), cache_unedited=True, with_exact_match=True)


def scored_before_editing(editor: LookupEditor) -> bool:
    return "logits" in editor.calls[: editor.calls.index(f"edit {REQUESTS[0].id}")]


def test_a_second_run_of_the_same_model_and_records_reads_the_unedited_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMOIR_UNEDITED_CACHE", str(tmp_path))
    made: list[LookupEditor] = []
    first, second = run(made), run(made)
    assert scored_before_editing(made[0]) and not scored_before_editing(made[1])
    assert second.unedited_records == first.unedited_records and second.unedited == first.unedited
    assert second.records == first.records  # Loc still compares with the kept unedited outputs
    assert [path.suffix for path in tmp_path.iterdir()] == [".pt"]  # one file, no temporary left


def test_other_records_or_other_weights_are_scored_afresh(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMOIR_UNEDITED_CACHE", str(tmp_path))
    made: list[LookupEditor] = []
    run(made)
    run(made, requests=REQUESTS[:2])
    run(made, seed=1)
    assert all(scored_before_editing(editor) for editor in made)
    assert len(list(tmp_path.iterdir())) == 3


def test_the_model_hash_sees_one_changed_weight():
    model = tiny_model()
    before = tensors_hash(model.named_parameters())
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[3, 5] += 1e-3
    assert tensors_hash(model.named_parameters()) != before


def test_empty_memories_of_any_shape_share_the_unedited_scores_and_a_stored_edit_does_not():
    one_bank, two_banks = bank_editor(1), bank_editor(2)
    assert one_bank.memory.R.shape != two_banks.memory.R.shape
    key = stream_key(one_bank, REQUESTS, {})
    assert stream_key(two_banks, REQUESTS, {}) == key
    with torch.no_grad():
        two_banks.model.get_base_model().model.layers[1].mlp.down_proj.base_layer.weight[3, 5] += 1e-3
    assert stream_key(two_banks, REQUESTS, {}) != key  # the base model's weights still count
    one_bank.edit(SHORT)
    assert stream_key(one_bank, REQUESTS, {}) != key


def test_an_unreadable_kept_file_names_itself_and_the_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMOIR_UNEDITED_CACHE", str(tmp_path))
    run([])
    (kept,) = tmp_path.iterdir()
    kept.write_bytes(b"not a torch file")
    with pytest.raises(ProtocolError, match=f"{kept}.*delete that file"):
        run([])
