"""Which stored edit fires for which prompt, at several numbers of stored edits.

    python benchmarks/routing_diagnostic.py --data zsre --stored 100,1000 [--config FILE] [--set min_margin=none tau=0.5] [--out FILE.json]

Routing reads the edited layer's *input*, which no edit changes, so storing an edit's mask and
feature without training it gives exactly the routing of a trained memory, in seconds. For the
first N records of `--data` it prints: how often a paraphrase selects its own edit (and fires),
over all records and over those whose subject no other stored edit has (and, for scale, the rate
a router picking at random among the edits of the paraphrase's subject would reach); how often it
selects an edit of its subject; how often the memory fires on neighbour probes (the same question
about another subject, see eval_suites.neighbours), on the records' NQ locality questions, and on
non-question text (the hallucination suite's locality passages); the mean overlap between
different edits' masks, and the bytes stored per edit. `--out` also writes them to a JSON file,
which `make results` puts in RESULTS.md's routing table.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import torch

import memoir
from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.request import EditRequest
from editors.memoir_hparams import MemoirHparams
from eval_suites.editor_setup import setting
from eval_suites.shipped_background import suite_background_texts, suite_idf_texts
from memoir.defaults import load_defaults
from memoir.saving import write_atomic
from eval_suites.run_dir import source_commit
from eval_suites.suites import resolve_data, suite_path, with_neighbour_probes


@torch.no_grad()
def route(editor: MemoirEditor, prompts: list[str], batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(fires, index of the best stored edit, its mask overlap) for each prompt."""
    fires, index, overlap = [], [], []
    for start in range(0, len(prompts), batch_size):
        encoded = editor.tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        routing = editor.model.base_model.route_prompts(**encoded.to(editor.model.device)).routing
        fires.append(routing.active.cpu())
        index.append(routing.index.cpu())
        overlap.append(routing.overlap.cpu())
    return torch.cat(fires), torch.cat(index), torch.cat(overlap)


def store(editor: MemoirEditor, requests: list[EditRequest]) -> None:
    """Store each request's mask and feature as `edit` would, without training R."""
    for request in requests:
        editor.memory.store(editor.plain_row_pooled(editor.rows(request)))


def mean_pairwise_overlap(masks: torch.Tensor) -> float:
    overlap = masks.float() @ masks.float().T / masks.sum(dim=1, keepdim=True).float()
    count = masks.shape[0]
    return float((overlap.sum() - overlap.diagonal().sum()) / max(count * (count - 1), 1))


def rate(fires: torch.Tensor) -> float:
    return round(float(fires.float().mean()), 3) if fires.numel() else float("nan")


def diagnose(editor: MemoirEditor, requests: list[EditRequest], stored: int, passages: list[str]) -> dict[str, Any]:
    store(editor, requests[len(editor.memory.index) : stored])
    edited = requests[:stored]
    with_rephrase = [(i, r.rephrase) for i, r in enumerate(edited) if r.rephrase]
    fires, index, _ = route(editor, [text for _, text in with_rephrase])
    own = index == torch.tensor([i for i, _ in with_rephrase])
    same_subject = torch.tensor([
        bool(edited[i].subject) and j >= 0 and edited[int(j)].subject == edited[i].subject
        for (i, _), j in zip(with_rephrase, index.tolist())
    ])
    # A subject edited again is mostly the same question in other words with another answer: its
    # paraphrase is one of all of them, so "own" is only decidable for subjects edited once.
    subjects = Counter(r.subject for r in edited if r.subject)
    edited_once = torch.tensor([subjects[edited[i].subject] == 1 for i, _ in with_rephrase])
    return {
        "stored": stored,
        "paraphrase_selects_own_and_fires": rate(own & fires),
        "paraphrase_selects_own_and_fires_subject_edited_once": rate((own & fires)[edited_once]),
        # what picking at random among the edits of the paraphrase's subject would give
        "own_edit_by_chance_within_subject": rate(torch.tensor([1 / max(subjects[edited[i].subject], 1) for i, _ in with_rephrase])),
        "paraphrase_selects_an_edit_of_its_subject_and_fires": rate(same_subject & fires),
        "paraphrase_fires": rate(fires),
        "fires_on_neighbours": rate(route(editor, [r.neighbour_prompt for r in edited if r.neighbour_prompt])[0]),
        "fires_on_nq": rate(route(editor, [r.locality_prompt for r in edited if r.locality_prompt])[0]),
        "fires_on_passages": rate(route(editor, passages)[0]),
        "mean_overlap_between_edits": round(mean_pairwise_overlap(editor.memory.index.masks), 3),
        "bytes_per_edit": editor.memory.index.bytes_per_edit,
    }


def main() -> None:
    torch.set_grad_enabled(False)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default="zsre")
    parser.add_argument("--stored", default="100,1000", help="numbers of stored edits, ascending")
    parser.add_argument("--config", default=None, help="a shipped config name or YAML file (default: the model's)")
    parser.add_argument("--set", nargs="*", type=setting, default=[], help="MemoirConfig overrides, e.g. pooling=mean min_similarity=none")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    requests = with_neighbour_probes(args.data, load_edit_data(resolve_data(args.data)).requests)
    passages = [r.locality_prompt for r in load_edit_data(suite_path("hallucination")).requests if r.locality_prompt]
    defaults = load_defaults(args.config or args.model)
    config = memoir.MemoirConfig(**(defaults["memoir"] | dict(args.set)))
    hparams = MemoirHparams.from_dict(defaults.get("editor", {}))
    model = memoir.MemoirModel.from_pretrained(args.model, config=config)
    texts = suite_background_texts(args.data)
    editor = MemoirEditor(model, memoir.load_tokenizer(args.model), hparams, texts, idf_texts=suite_idf_texts())
    settings = {"config": editor.model.peft_config["default"].to_dict() | {"peft_type": "MEMOIR"}, "commit": source_commit()}
    print(json.dumps(settings, default=str))
    rows = []
    for stored in sorted(int(n) for n in args.stored.split(",")):
        rows.append(diagnose(editor, requests, min(stored, len(requests)), passages))
        print(json.dumps(rows[-1]))
    if args.out:
        write_atomic(args.out, json.dumps(settings | {"rows": rows}, default=str, indent=1))


if __name__ == "__main__":
    main()
