"""Real-model checks on the embedded SmolLM2-135M (slow: run with `pytest -m slow`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

import memoir
from eval_suites.demo import greedy_answers
from eval_suites.editor_setup import build_editor, load_requests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tokenizer():
    return memoir.load_tokenizer("smollm2-135m")


def test_wrapped_empty_model_answers_exactly_as_the_plain_model(tokenizer):
    plain = memoir.load_base_model("smollm2-135m").eval()
    wrapped = memoir.MemoirModel.from_pretrained("smollm2-135m").eval()
    config = wrapped.peft_config["default"]
    assert (config.target_layer, config.base_model_alias) == (24, "smollm2-135m")
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(wrapped(**prompt).logits, plain(**prompt).logits)
    answers = [greedy_answers(model, tokenizer, ["The capital of France is"])[0] for model in (plain, wrapped)]
    assert answers[0] == answers[1] and answers[0].startswith("Paris")


@pytest.fixture(scope="module")
def edited():
    requests = load_requests("zsre", 3, strict=False).requests
    editor = build_editor("smollm2-135m", "zsre")
    unrelated = ["The capital of France is"] + [r.locality_prompt for r in requests]
    before = greedy_answers(editor.model, editor.tokenizer, unrelated)
    results = editor.edit_stream(requests)
    return editor, requests, unrelated, before, results


def test_edited_prompts_now_generate_the_new_answer(edited):
    editor, requests, _, _, results = edited
    assert [result.id for result in results] == [r.id for r in requests]
    answers = greedy_answers(editor.model, editor.tokenizer, [r.prompt for r in requests])
    for answer, request in zip(answers, requests):
        assert answer.startswith(request.target), (request.prompt, answer)


def test_unrelated_prompts_keep_their_old_answers(edited):
    editor, _, unrelated, before, _ = edited
    assert greedy_answers(editor.model, editor.tokenizer, unrelated) == before
    assert editor.firing_rate(unrelated) == 0.0


def test_the_converted_model_cache_follows_the_umask(tmp_path, monkeypatch):
    """The embedded model's converted folder is read by every user of a shared cache."""
    monkeypatch.setenv("MEMOIR_CACHE", str(tmp_path))
    previous = os.umask(0o022)
    try:
        folder = Path(memoir.resolve_model_path("smollm2-135m"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {0o644}
