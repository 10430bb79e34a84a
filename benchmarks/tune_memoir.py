"""Score MEMOIR hyperparameters on the ZsRE *train* slice (never the scored edit set).

    python benchmarks/tune_memoir.py --num-edits 30 --set lr=5.0 prefix_mode=none [--layer 24 --top-k 440 --tau 0.5 --center-residual]

Prints Rel/Gen/Loc after all edits (the harness's definitions), how many edits reached the loss
threshold, mean steps and seconds per edit, and the best-overlap quantiles of unrelated prompts
and of paraphrases against the stored masks, with the firing rates a range of tau would give.
The figures behind the choices in configs/smollm2-135m.yaml come from this script.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

import memoir
from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from eval_suites.protocol import run_sequential
from eval_suites.suites import suite_train_path

TAUS = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def parse_setting(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    default = getattr(MemoirHparams(), key)
    return key, type(default)(value) if not isinstance(default, tuple) else tuple(value.split(","))


@torch.no_grad()
def best_overlaps(editor: MemoirEditor, prompts: list[str]) -> torch.Tensor:
    tuner, memory = editor.model.base_model, editor.memory
    found = []
    for start in range(0, len(prompts), 16):
        encoded = editor.tokenizer(prompts[start : start + 16], return_tensors="pt", padding=True)
        found.append(memory.index.best_match(memory.mask_of(tuner.pooled_prompt_activations(**encoded))).overlap)
    return torch.cat(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--num-edits", type=int, default=30)
    parser.add_argument("--layer", type=int, default=24)
    parser.add_argument("--top-k", type=int, default=440)
    parser.add_argument("--tau", type=float, default=0.5)
    parser.add_argument("--center-residual", action="store_true", help="feed R with a - background (MemoirConfig)")
    parser.add_argument("--set", nargs="*", default=[], help="editor hyperparameters, e.g. lr=5.0 prefix_mode=none")
    args = parser.parse_args()
    hparams = MemoirHparams(**dict(parse_setting(s) for s in args.set))
    train = load_edit_data(suite_train_path("zsre")).requests
    # The background mean comes from the last texts of the slice, the probes from its middle,
    # the edits from its start: three disjoint parts.
    background = [f"{r.locality_prompt} {r.locality_answer}" for r in train[-100:]]
    unrelated = [r.locality_prompt for r in train[200:400]]
    editors: list[MemoirEditor] = []

    def make_editor() -> MemoirEditor:
        config = memoir.MemoirConfig(
            target_layer=args.layer, top_k=args.top_k, tau=args.tau, center_residual=args.center_residual
        )
        model = memoir.MemoirModel.from_pretrained(args.model, config=config)
        editors.append(MemoirEditor(model, memoir.load_tokenizer(args.model), hparams, background_texts=background))
        return editors[-1]

    result = run_sequential(make_editor, train, args.num_edits, model_name=args.model, with_exact_match=False)
    editor = editors[0]
    unrelated_overlap = best_overlaps(editor, unrelated)
    paraphrase_overlap = best_overlaps(editor, [r.rephrase for r in train[: args.num_edits]])
    quantiles = torch.tensor([0.5, 0.9, 0.99, 1.0])
    summary = {
        "settings": vars(args) | {"hparams": hparams.to_dict()},
        "rel": result.metrics["rel"], "gen": result.metrics["gen"], "loc": result.metrics["loc"],
        "fired_on_unrelated": result.metrics["fired_on_unrelated"],
        "rel_gen_by_fifth": [
            [round(statistics.mean(r[key] for r in part), 3) for key in ("rel", "gen")]
            for part in (result.records[i * args.num_edits // 5 : (i + 1) * args.num_edits // 5] for i in range(5))
        ],
        "unedited": {k: result.unedited[k] for k in ("rel", "gen")},
        "converged": sum(e.loss < hparams.loss_threshold for e in result.edits) / len(result.edits),
        "mean_steps": statistics.mean(e.steps for e in result.edits),
        "seconds_per_edit": result.metrics["edit_seconds"] / len(result.edits),
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
