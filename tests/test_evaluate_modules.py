"""The shipped `evaluate` modules reproduce the harness's scores of a real run (slow: `pytest -m slow`).

`memoir eval --data zsre --num-edits 10` on the embedded SmolLM2 writes records.jsonl and the
adapter it scored; the modules, loaded as a user would with `evaluate.load(<folder>)`, are fed the
logits of that adapter and the run's generations and must give the same per-record numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import evaluate
import pytest
import torch

from editors.teacher_forcing import teacher_forced_batch
from eval_suites.cli import main
from eval_suites.editor_setup import build_editor, load_requests
from eval_suites.metrics import MODULES_DIR, target_predictions

pytestmark = pytest.mark.slow
NUM_EDITS = 10


@pytest.fixture(scope="module")
def zsre_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zsre10")
    assert main(["eval", "--data", "zsre", "--num-edits", str(NUM_EDITS), "--perplexity", "--out", str(out)]) == 0
    return out


def _module_scores(editor, pairs: list[tuple[str, str]]) -> tuple[list[float], list[float]]:
    """Token accuracy and PPL of `pairs` on the editor's model, computed by the modules alone."""
    batch = teacher_forced_batch(editor.tokenizer, pairs)
    logits = editor.logits(batch.input_ids, batch.attention_mask, batch.prompt_mask)
    counts = batch.target_mask.sum(dim=1).tolist()
    targets = torch.split(batch.input_ids[batch.target_mask], counts)
    selected = logits[:, :-1][batch.target_mask[:, 1:]]
    nll = torch.split(torch.nn.functional.cross_entropy(selected.float(), batch.input_ids[batch.target_mask], reduction="none"), counts)
    accuracy = evaluate.load(str(MODULES_DIR / "token_accuracy")).compute(
        predictions=[row.tolist() for row in target_predictions(logits, batch.target_mask)],
        references=[row.tolist() for row in targets],
    )["scores"]
    ppl = evaluate.load(str(MODULES_DIR / "target_perplexity")).compute(predictions=[row.tolist() for row in nll])["perplexities"]
    return accuracy, ppl


def test_modules_give_the_harness_numbers_on_zsre_t10(zsre_run):
    records = [json.loads(line) for line in (zsre_run / "records.jsonl").read_text().splitlines()]
    requests = load_requests("zsre", NUM_EDITS, strict=False).requests
    editor = build_editor("smollm2-135m", "zsre", adapter_dir=zsre_run / "adapter")
    assert editor.memory.num_edits == NUM_EDITS
    rel, ppl = _module_scores(editor, [(r.prompt, r.target) for r in requests])
    gen, _ = _module_scores(editor, [(r.rephrase, r.target) for r in requests])
    assert [record["rel"] for record in records] == rel
    # The harness runs the LM head on the target columns only; a matmul of another shape may round the last
    # bit of a float otherwise on some CPUs, which PPL shows (exp of a mean) and token accuracy does not.
    assert [record["ppl"] for record in records] == pytest.approx(ppl, rel=1e-6)
    assert [record["gen"] for record in records] == gen
    exact = evaluate.load(str(MODULES_DIR / "generation_exact_match")).compute(
        predictions=[record["generated"] for record in records], references=[r.target for r in requests]
    )
    assert [record["exact_match"] for record in records] == exact["scores"]
    metrics = json.loads((zsre_run / "metrics.json").read_text())
    assert metrics["rel"] == pytest.approx(sum(rel) / NUM_EDITS) and metrics["exact_match"] == exact["exact_match"]
