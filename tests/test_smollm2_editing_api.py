"""The editing API on the embedded SmolLM2-135M (slow): the README example, forget and re-edit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from editors import MemoirEditor, MemoirHparams
from editors.ledger import LEDGER_FILE
from eval_suites.demo import greedy_answers
from eval_suites.editor_setup import load_requests
from eval_suites.scoring import score_records, unedited_locality
from memoir.defaults import all_defaults

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parent.parent / "README.md"
NUM_EDITS = 20
FORGET = (3, 11)  # rows of the stream to take back


def readme_example() -> str:
    return re.search(r"## Using it\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)


def test_the_readme_example_edits_generates_saves_and_reloads_with_peft(tmp_path):
    code = readme_example()
    assert "eval_suites" not in code and "accelerate" not in code
    report = "\nimport json, sys\nprint(json.dumps({'hparams': editor.hparams.to_dict(), 'eval_suites': 'eval_suites' in sys.modules}))\n"
    env = os.environ | {"OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    finished = subprocess.run([sys.executable, "-c", code + report], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    edited, reloaded, checks = finished.stdout.strip().splitlines()[-3:]
    assert edited.startswith("The capital of Yemen is Aden") and reloaded == edited
    checks = json.loads(checks)
    assert not checks["eval_suites"]
    assert checks["hparams"] == MemoirHparams.from_dict(all_defaults()["smollm2-135m"]["editor"]).to_dict()
    ledger = json.loads((tmp_path / "out" / "adapter" / LEDGER_FILE).read_text())
    assert [(e["prompt"], e["target"]) for e in ledger["edits"]] == [("The capital of Yemen is", "Aden")]
    assert ledger["edits"][0]["loss"] < checks["hparams"]["loss_threshold"]


def teacher_forced(editor, requests, reference) -> list[dict]:
    return [{key: record[key] for key in ("rel", "gen", "loc")} for record in score_records(editor, requests, reference)]


@torch.no_grad()
def routed_to(editor, prompts: list[str]) -> list[int]:
    """The stored-mask row each prompt routes to, -1 where it routes nowhere."""
    found = []
    for prompt in prompts:
        pooled = editor.model.base_model.route_prompts(**editor.tokenizer(prompt, return_tensors="pt")).pooled
        routing = editor.memory.route(pooled)
        found.append(int(routing.index[0]) if routing.active[0] else -1)
    return found


@pytest.fixture(scope="module")
def stream():
    editor = MemoirEditor.from_pretrained("smollm2-135m")
    requests = load_requests("zsre", NUM_EDITS, strict=False).requests
    reference = unedited_locality(editor, requests)
    unedited_scores = teacher_forced(editor, requests, reference)
    unedited = greedy_answers(editor.model, editor.tokenizer, [r.prompt for r in requests])
    editor.edit_stream(requests)
    scores = teacher_forced(editor, requests, reference)
    return editor, requests, reference, unedited, unedited_scores, scores


def test_forget_gives_back_the_unedited_answer_and_keeps_every_other_edits_scores(stream):
    editor, requests, reference, unedited, unedited_scores, scores = stream
    edited = greedy_answers(editor.model, editor.tokenizer, [requests[row].prompt for row in FORGET])
    assert all(answer != unedited[row] for answer, row in zip(edited, FORGET))
    paraphrase_route = routed_to(editor, [r.rephrase for r in requests])
    forgotten = [editor.forget(requests[row].id) for row in FORGET]
    assert all(f.still_fires is None for f in forgotten)
    assert greedy_answers(editor.model, editor.tokenizer, [requests[row].prompt for row in FORGET]) == [unedited[row] for row in FORGET]
    for row in FORGET:
        encoded = editor.tokenizer(requests[row].prompt, return_tensors="pt")
        with torch.no_grad():
            now = editor.model(**encoded).logits
            with editor.model.disable_adapter():
                before = editor.model(**encoded).logits
        assert torch.equal(now, before)
    kept = [row for row in range(NUM_EDITS) if row not in FORGET]
    now = dict(zip(kept, teacher_forced(editor, [requests[row] for row in kept], [reference[row] for row in kept])))
    for row in kept:
        # A paraphrase that was answered by a forgotten edit (ZsRE repeats some facts) now answers unedited.
        served_by_forgotten = paraphrase_route[row] in FORGET
        expected_gen = unedited_scores[row]["gen"] if served_by_forgotten else scores[row]["gen"]
        assert now[row] == {"rel": scores[row]["rel"], "gen": expected_gen, "loc": scores[row]["loc"]}, row
    assert [e["id"] for e in editor.edits] == [requests[row].id for row in kept]


def test_re_editing_a_prompt_replaces_its_old_target(stream):
    editor, requests, *_ = stream
    request = requests[0]
    assert greedy_answers(editor.model, editor.tokenizer, [request.prompt])[0].startswith(request.target)
    editor.edit(request.prompt, "Stockholm")
    assert greedy_answers(editor.model, editor.tokenizer, [request.prompt])[0].startswith("Stockholm")
    assert [e["target"] for e in editor.edits if e["prompt"] == request.prompt] == ["Stockholm"]
