"""Score MEMOIR hyperparameters on a suite's *train* file (never the scored edit set).

    python benchmarks/tune_memoir.py --num-edits 500 [--data zsre|temporal|hallucination] [--config FILE] [--background SUITE] [--set lr=5.0 preservation=1.0]

Starts from the model's shipped settings (configs/, or `--config`); `--set` overrides any adapter
(`memoir:`) or editor (`editor:`) setting by name, each value read as YAML, `none` as None.
Prints the suite's scores (Rel/Gen, OOD, PPL), Loc and neighbour Loc after all edits (the
harness's definitions), the same scores by fifth of edit age
(oldest first: how much later edits erode earlier ones), how many edits reached the loss
threshold, mean steps and seconds per edit, how often an edited prompt still fires its own edit
after the last one (an edit lost with that at 1.0 was overwritten, not misrouted), and the best-overlap quantiles of unrelated prompts
and of paraphrases (the edited prompt itself where the suite has none) against the stored masks, with the firing rates a range of tau would give.
The figures behind the choices in configs/smollm2-135m.yaml come from this script.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any, Callable

import torch

import memoir
from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from editors.request import EditRequest
from eval_suites.editor_setup import run_settings, setting
from eval_suites.protocol import run_sequential
from eval_suites.shipped_background import suite_background_texts
from eval_suites.neighbours import with_neighbours
from eval_suites.suites import get_suite, suite_train_path
from memoir.defaults import resolve_defaults
from routing_diagnostic import route

TAUS = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def settings(model: str, config: str | None, overrides: list[tuple[str, Any]]) -> tuple[memoir.MemoirConfig, MemoirHparams]:
    """The shipped (or `config`) settings with each `--set key=value` put in the section that has `key`."""
    sections = resolve_defaults(model, run_settings(model, config, dict(overrides)))
    return memoir.MemoirConfig(**sections["memoir"]), MemoirHparams.from_dict(sections.get("editor", {}))


def fresh_editor(model: str, config: memoir.MemoirConfig, hparams: MemoirHparams, background: list[str]) -> MemoirEditor:
    """An editor on an unedited `model` with these settings, its memory centred by `background`."""
    return MemoirEditor(memoir.MemoirModel.from_pretrained(model, config=config), memoir.load_tokenizer(model), hparams,
                        background_texts=background)


def kept_editors(model: str, config: memoir.MemoirConfig, hparams: MemoirHparams, background: list[str]
                 ) -> tuple[Callable[[], MemoirEditor], list[MemoirEditor]]:
    """A factory of `fresh_editor`s for a protocol run, and the list it keeps them in, so that the
    memory can be inspected after the run."""
    editors: list[MemoirEditor] = []

    def make_editor() -> MemoirEditor:
        editors.append(fresh_editor(model, config, hparams, background))
        return editors[-1]

    return make_editor, editors


def own_edit_rate(editor: MemoirEditor, prompts: list[str]) -> float:
    """How often the i-th edited prompt fires the i-th stored edit: an edit lost with this at 1.0
    was overwritten in shared columns, not misrouted."""
    fires, index, _ = route(editor, prompts)
    return round(float((fires & (index == torch.arange(len(prompts)))).float().mean()), 3)


def train_requests(suite_name: str, num_edits: int) -> list[EditRequest]:
    """The suite's train file, its first `num_edits` records given neighbour probes from the same file,
    half of it away (about subjects not edited there): the scored edit set stays unread."""
    train = load_edit_data(suite_train_path(suite_name)).requests
    half = len(train) // 2
    edited = with_neighbours(train[:num_edits], [*train[half:], *train[:half]], get_suite(suite_name).neighbours)
    return [*edited, *train[num_edits:]]


def by_fifth(records: list[dict], scores: list[str]) -> list[list[float]]:
    """Mean scores of each fifth of the records by edit age, oldest first: how much later edits erode earlier ones."""
    count = len(records)
    parts = (records[i * count // 5 : (i + 1) * count // 5] for i in range(5))
    return [[round(statistics.mean(r[key] for r in part), 3) for key in scores] for part in parts if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--num-edits", type=int, default=30)
    parser.add_argument("--data", default="zsre", help="the suite whose train file is edited")
    parser.add_argument("--config", help="a shipped config name or YAML file instead of the model's own")
    parser.add_argument("--set", nargs="*", type=setting, default=[], help="settings, e.g. lr=5.0 tau=0.5 pooling=mean min_similarity=none")
    parser.add_argument("--background", help="the suite whose unrelated texts centre the memory (default: --data's, as "
                        "`memoir eval` takes it; zsre's is what a mixed stream starting with ZsRE gives every input)")
    args = parser.parse_args()
    config, hparams = settings(args.model, args.config, args.set)
    suite = get_suite(args.data)
    train = train_requests(args.data, args.num_edits)
    background = suite_background_texts(args.background or args.data)
    unrelated = [r.locality_prompt for r in train[len(train) * 2 // 5 : len(train) * 4 // 5]]
    make_editor, editors = kept_editors(args.model, config, hparams, background)
    result = run_sequential(make_editor, train, args.num_edits, model_name=args.model, with_perplexity=suite.perplexity,
                            cache_unedited=True)
    scores = [key for key in ("rel", "gen", "ood", "ppl") if result.records[0].get(key) is not None]
    editor = editors[0]
    unrelated_overlap = route(editor, unrelated)[2]
    paraphrase_overlap = route(editor, [r.rephrase or r.ood_rephrase or r.prompt for r in train[: args.num_edits]])[2]
    quantiles = torch.tensor([0.5, 0.9, 0.99, 1.0])
    summary = {
        "settings": vars(args) | {"memoir": config.to_dict(), "hparams": hparams.to_dict()},
        **{key: result.metrics[key] for key in [*scores, "loc", "loc_neighbour", "ppl_neighbour"] if key in result.metrics},
        "fired_on_unrelated": result.metrics["fired_on_unrelated"],
        f"{'_'.join(scores)}_by_fifth": by_fifth(result.records, scores),
        "unedited": {key: result.unedited[key] for key in [*scores, "ppl_neighbour"] if key in result.unedited},
        "own_prompt_fires_own_edit": own_edit_rate(editor, [r.prompt for r in train[: args.num_edits]]),
        "converged": sum(e.extra["converged"] for e in result.edits) / len(result.edits),
        "mean_steps": statistics.mean(e.steps for e in result.edits),
        "seconds_per_edit": result.metrics["edit_seconds"] / len(result.edits),
        "bytes_per_edit": editor.memory.index.bytes_per_edit,
        "memory_bytes": sum(tensor.numel() * tensor.element_size() for tensor in [*editor.memory.parameters(), *editor.memory.buffers()]),
        "unrelated_overlap_q50_q90_q99_max": [round(x, 3) for x in unrelated_overlap.quantile(quantiles).tolist()],
        "paraphrase_overlap_min_q10_q50": [round(x, 3) for x in paraphrase_overlap.quantile(torch.tensor([0.0, 0.1, 0.5])).tolist()],
        "firing_by_tau": {
            tau: {"unrelated": round((unrelated_overlap >= tau).float().mean().item(), 3),
                  "paraphrase": round((paraphrase_overlap >= tau).float().mean().item(), 3)}
            for tau in TAUS
        },
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
