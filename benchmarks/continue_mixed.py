"""A short mixed stream of *train* records written on top of a saved, crowded adapter: how a setting
writes and wears when the memory is already full, in half an hour instead of a whole edit-set run.

    python benchmarks/continue_mixed.py runs/results/mixed/adapter [--num-edits 80,48,6] [--set loss_threshold=0.005]

Writes the first records of the ZsRE, hallucination and temporal train files (in the edit sets'
proportions by default, six passages to ten questions) in one seeded order, as `memoir eval` mixes
its suites, with the adapter's editor settings (consolidation included) and `--set` on top. Prints
ZsRE Rel and Gen right after each ZsRE edit is written and after the last edit, hallucination PPL
and temporal Rel after the last edit, the rewrites consolidation made and the minutes of editing.
"""

from __future__ import annotations

import argparse
import json
import time

from editors.edit_data import load_edit_data
from crowded_write import adapter_editor, mean
from eval_suites.editor_setup import setting
from eval_suites.protocol import Stream, interleaved, mixed_order
from eval_suites.scoring import score_records
from eval_suites.suites import get_suite, suite_train_path
from write_time_gen import without_locality

SUITES = ("zsre", "hallucination", "temporal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", help="an adapter folder with its ledger (the adapter/ of a `memoir eval` --out)")
    parser.add_argument("--num-edits", default="80,48,6", help="train records of ZsRE, hallucination and temporal")
    parser.add_argument("--seed", type=int, default=1, help="the order the suites' records are mixed in")
    parser.add_argument("--set", type=setting, nargs="*", default=[], metavar="KEY=VALUE", help="editor settings on top of the adapter's")
    args = parser.parse_args()
    counts = [int(count) if count.isdigit() else -1 for count in args.num_edits.split(",")]
    if len(counts) != len(SUITES) or min(counts) < 1:
        parser.error(f"--num-edits takes one whole count >= 1 for each of {SUITES}, got {args.num_edits!r}")
    streams = [Stream(name, [without_locality(r) for r in load_edit_data(suite_train_path(name)).requests[:count]],
                      with_perplexity=get_suite(name).perplexity) for name, count in zip(SUITES, counts)]
    editor = adapter_editor(args.adapter, dict(args.set))
    order = mixed_order(streams, args.seed)
    at_write, rewrites, started = [], 0, time.perf_counter()
    for label, request in zip(order, interleaved(streams, order)):
        rewrites += len(editor.edit(request).extra.get("consolidated", []))
        if label == 0:
            at_write.extend(score_records(editor, [request], [{}]))
    minutes = (time.perf_counter() - started) / 60
    zsre, passages, temporal = (score_records(editor, s.requests, [{}] * len(s.requests), with_perplexity=s.with_perplexity)
                                for s in streams)
    print(json.dumps({
        "adapter": args.adapter, "settings": dict(args.set), "num_edits": counts,
        "zsre_at_write": {"rel": mean(at_write, "rel"), "gen": mean(at_write, "gen")},
        "zsre_at_end": {"rel": mean(zsre, "rel"), "gen": mean(zsre, "gen")},
        "hallucination_ppl": mean(passages, "ppl"), "temporal_rel": mean(temporal, "rel"),
        "rewrites": rewrites, "editing_minutes": round(minutes, 1),
    }))


if __name__ == "__main__":
    main()
