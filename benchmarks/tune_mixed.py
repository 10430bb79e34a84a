"""Score MEMOIR settings on one mixed stream of several suites' *train* files (never the scored edit sets).

    python benchmarks/tune_mixed.py --data zsre,hallucination,temporal --num-edits 500,150,37 [--set last_step_bisections=0] [--background SUITES]

The suites' edits are interleaved in one seeded order, as `memoir eval --data zsre,hallucination`
interleaves the edit sets, and after the last edit each suite is scored with its own metrics: its
scores over all its edits and by fifth of edit age (oldest first), Loc, neighbour Loc, and
seconds per edit; and how often an edited prompt still fires its own edit after the last one.
Settings start from the model's shipped ones and `--set` overrides them, as in tune_memoir.py.
The mixed-stream figures in configs/smollm2-135m.yaml come from this script.
"""

from __future__ import annotations

import argparse
import json
from itertools import zip_longest

from editors.memoir_hparams import MemoirHparams
from eval_suites.editor_setup import setting
from eval_suites.protocol import Stream, run_mixed
from eval_suites.shipped_background import suite_background_texts
from eval_suites.suites import get_suite
from memoir import MemoirConfig
from tune_memoir import by_fifth, kept_editors, own_edit_rate, settings, train_requests


def interleaved_texts(suites: list[str]) -> list[str]:
    """The suites' background texts taken in turn, so that the first `num_background_texts` hold each alike."""
    texts = [suite_background_texts(suite) for suite in suites]
    return [text for row in zip_longest(*texts) for text in row if text is not None]


def stream_parser(doc: str) -> argparse.ArgumentParser:
    """The options that choose a mixed train stream and its settings, shared by the scripts that run one."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default="zsre,hallucination,temporal", help="suites whose train files are mixed")
    parser.add_argument("--num-edits", default="500,150,37", help="edits of each suite, in the order of --data")
    parser.add_argument("--seed", type=int, default=0, help="the order of the mixed stream")
    parser.add_argument("--config", help="a shipped config name or YAML file instead of the model's own")
    parser.add_argument("--set", nargs="*", type=setting, default=[], help="settings, e.g. last_step_bisections=0 preservation=1.0")
    return parser


def train_streams(parser: argparse.ArgumentParser, args: argparse.Namespace
                  ) -> tuple[list[str], MemoirConfig, MemoirHparams, list[Stream]]:
    """The suites of `stream_parser`'s options, their settings, and one stream of train records per suite."""
    names, counts = args.data.split(","), [int(count) for count in args.num_edits.split(",")]
    if len(names) != len(counts):
        parser.error(f"--num-edits needs one count for each of the {len(names)} suites of --data")
    config, hparams = settings(args.model, args.config, args.set)
    streams = [Stream(name, train_requests(name, count)[:count], with_perplexity=get_suite(name).perplexity)
               for name, count in zip(names, counts)]
    return names, config, hparams, streams


def main() -> None:
    parser = stream_parser(__doc__)
    parser.add_argument("--batch-size", type=int, default=4, help="records scored at once (4, as make results-mixed)")
    parser.add_argument("--background", help="suites whose unrelated texts, taken in turn, centre the memory "
                                             "(default: the first of --data, as memoir eval takes it)")
    args = parser.parse_args()
    names, config, hparams, streams = train_streams(parser, args)
    # One memory, one background: the first suite's, as `memoir eval` takes it for a mixed stream.
    background = interleaved_texts((args.background or names[0]).split(","))
    make_editor, editors = kept_editors(args.model, config, hparams, background)
    results = run_mixed(make_editor, streams, args.seed, args.model, args.batch_size, cache_unedited=True)
    summary = {
        "settings": vars(args) | {"memoir": config.to_dict(), "hparams": hparams.to_dict()},
        "own_prompt_fires_own_edit": own_edit_rate(editors[0], [entry.prompt for entry in editors[0].ledger.entries]),
    }
    for name, result in results.items():
        scores = [key for key in ("rel", "gen", "ood", "ppl") if result.records[0].get(key) is not None]
        summary[name] = {
            **{key: result.metrics[key] for key in [*scores, "loc", "loc_neighbour"] if key in result.metrics},
            f"{'_'.join(scores)}_by_fifth": by_fifth(result.records, scores),
            "converged": sum(e.extra["converged"] for e in result.edits) / len(result.edits),
            "seconds_per_edit": result.metrics["edit_seconds"] / len(result.edits),
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
