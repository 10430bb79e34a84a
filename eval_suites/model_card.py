"""The model card of a pushed adapter, written with `huggingface_hub.ModelCard`.

Its metadata is what peft users and the Hub read (`library_name: peft`, `base_model`, tags,
`pipeline_tag`), plus `model-index` results built from the run's `metrics.json` files: one
result per suite and T, each score exactly as `memoir eval` wrote it. The edits themselves are
listed only on request: they may be private.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from eval_suites.table import format_table, table_rows
from memoir.base_models import EMBEDDED_MODELS
from memoir.hub import ADAPTER_CONFIG

# metrics.json key -> model-index metric name (the key itself is the metric type)
CARD_SCORES = {
    "rel": "Rel (edit success, token accuracy on the edit prompt)",
    "gen": "Gen (token accuracy on a paraphrase)",
    "ood": "OOD (token accuracy on an out-of-distribution prompt)",
    "loc": "Loc (agreement with the unedited model on unrelated prompts)",
    "loc_neighbour": "neighbour Loc (agreement with the unedited model on the same question about another subject)",
    "ppl": "PPL of the corrected text",
    "ppl_neighbour": "PPL of a neighbour's answer",
    "exact_match": "exact match of greedy generation",
}
CONFIG_FIELDS = ("target_layer", "module_path", "top_k", "tau", "permutation_seed", "pooling", "center_residual")
TASK_NAME = "Sequential knowledge editing (scored after all T edits)"


@dataclass
class CardInputs:
    """What a card is written from: the adapter, its Hub ids, its scores and (optionally) its edits."""

    adapter_dir: Path
    repo_id: str
    base_model: str  # Hub id
    num_edits: int
    metrics: list[dict[str, Any]]  # one metrics.json per scored T, in T order
    edits: Optional[list[dict[str, str]]] = None  # id, prompt, target; None: not listed


def eval_results(metrics: list[dict[str, Any]]) -> list[EvalResult]:
    """One model-index result per score, suite and T, with the value of `metrics.json` unchanged."""
    results = []
    for run in metrics:
        data = str(run.get("data", "edits"))
        for key, name in CARD_SCORES.items():
            if run.get(key) is None:
                continue
            results.append(EvalResult(
                task_type="text-generation", task_name=TASK_NAME, dataset_type=data, dataset_name=data,
                dataset_config=f"T={run['num_edits']}", metric_type=key, metric_name=name, metric_value=run[key],
            ))
    return results


def _base_note(saved: dict[str, Any], base_model: str) -> str:
    embedded = EMBEDDED_MODELS.get(saved.get("base_model_alias") or "")
    if embedded is None or embedded.hub_id != base_model:
        return f"Base model: [{base_model}](https://huggingface.co/{base_model})."
    return (
        f"Base model: [{base_model}](https://huggingface.co/{base_model}), as embedded in memoir: "
        f"{embedded.description}. The memory was written on those weights; `memoir.MemoirModel.from_pretrained` "
        f"loads them again (short name `{saved['base_model_alias']}`, after `{embedded.install}`). Do not load it onto "
        "the Hub's full-precision weights: the memory's routing and residual were fitted to the dequantized model."
    )


def _scores_section(metrics: list[dict[str, Any]]) -> str:
    if not metrics:
        return "No scores: this adapter was pushed from a run without `memoir eval` results."
    rows = [row for run in metrics for row in table_rows(run)]
    return (
        "Scored with `memoir eval`, the sequential protocol of WISE and MEMOIR: the first T records are edited "
        "one after another, then all T are scored, beside the unedited model's scores:\n\n" + format_table(rows)
    )


def _edits_section(edits: Optional[list[dict[str, str]]]) -> str:
    if edits is None:
        return "The edited facts are not listed (push with `--include-edits` to list them)."
    lines = ["| # | id | prompt | new target |", "|---|---|---|---|"]
    lines += [f"| {i} | {_cell(e['id'])} | {_cell(e['prompt'])} | {_cell(e['target'])} |" for i, e in enumerate(edits, 1)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def build_card(inputs: CardInputs) -> ModelCard:
    """The card: metadata as peft users expect it, then what the adapter is, how to load it, its scores."""
    saved = json.loads((inputs.adapter_dir / ADAPTER_CONFIG).read_text())
    count = inputs.num_edits
    data = ModelCardData(
        library_name="peft",
        base_model=inputs.base_model,
        pipeline_tag="text-generation",
        tags=["memoir", "knowledge-editing", "model-editing", "peft", f"base_model:adapter:{inputs.base_model}"],
        model_name=inputs.repo_id,
        eval_results=eval_results(inputs.metrics) or None,
    )
    config = {name: saved[name] for name in CONFIG_FIELDS if name in saved}
    body = "\n\n".join([
        f"# {inputs.repo_id}",
        f"A [MEMOIR](https://arxiv.org/abs/2506.07899) knowledge-editing adapter holding **{count} edit{'s' * (count != 1)}**: a sparse "
        "residual memory beside one MLP `down_proj`, written only in the columns of each edit's input-dependent "
        "mask and used only for inputs whose mask matches a stored edit. " + _base_note(saved, inputs.base_model),
        "## How to load\n\n```python\nimport memoir  # pip install memoir-edit; registers MEMOIR with peft\n"
        f"model = memoir.MemoirModel.from_pretrained(\"{inputs.repo_id}\")\n"
        f"tokenizer = memoir.load_tokenizer(\"{saved.get('base_model_alias') or inputs.base_model}\")\n```",
        "## MEMOIR config\n\n```json\n" + json.dumps(config, indent=2) + "\n```",
        "## Scores\n\n" + _scores_section(inputs.metrics),
        "## Edits\n\n" + _edits_section(inputs.edits),
    ])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")
