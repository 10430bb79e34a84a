"""Whether an edit's paraphrases are lost when it is written or worn down by later edits.

    python benchmarks/write_time_gen.py --data zsre,hallucination,temporal --num-edits 500,150,37 [--set max_protected_positions=16]
    python benchmarks/write_time_gen.py --data zsre --num-edits 500

Runs one (mixed) stream of the suites' *train* files as tune_mixed.py does and, right after each
edit of the first suite is written (its consolidation included), scores that edit's Rel and Gen;
after the last edit it scores them all again. Printed per fifth of edit age (oldest first) and by
whether the subject is edited again: Gen at write time, Gen at the end; and the other suites'
scores. A gap already there at write time is the writing's; one that opens afterwards is wear by
later edits. The first suite of --data is the one probed; the memory is centred by its background.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from typing import Any, Sequence

from editors.base import EditResult
from eval_suites.protocol import mixed_order, run_mixed
from eval_suites.repeats import repeat_rows
from eval_suites.scoring import score_records
from eval_suites.shipped_background import suite_background_texts
from tune_memoir import by_fifth, kept_editors
from tune_mixed import stream_parser, train_streams

OTHER_SCORES = ("rel", "ood", "ppl", "loc", "loc_neighbour")


def without_locality(request: Any) -> Any:
    """The request with no locality or neighbour probe, so that it is scored without an unedited reference."""
    return dataclasses.replace(request, locality_prompt=None, locality_answer=None, neighbour_prompt=None, neighbour_answer=None)


def summary(records: list[dict[str, Any]], requests: Sequence[Any]) -> dict[str, Any]:
    """Rel and Gen over all records, by fifth of edit age and by repeat group."""
    return {
        "rel": round(statistics.mean(r["rel"] for r in records), 3),
        "gen": round(statistics.mean(r["gen"] for r in records), 3),
        "rel_gen_by_fifth": by_fifth(records, ["rel", "gen"]),
        "gen_by_repeat": {row["group"]: [row["records"], round(row["gen"], 3)] for row in repeat_rows(records, requests)},
    }


def main() -> None:
    parser = stream_parser(__doc__)
    args = parser.parse_args()
    names, config, hparams, streams = train_streams(parser, args)
    make_editor, editors = kept_editors(args.model, config, hparams, suite_background_texts(names[0]))
    # Each suite's records keep their own order in the stream, so the probed suite's n-th edit is its n-th record.
    order, probed = iter(mixed_order(streams, args.seed)), iter(streams[0].requests)
    at_write: list[dict[str, Any]] = []

    def on_edit(result: EditResult) -> None:
        if next(order) == 0:
            request = next(probed)
            at_write.extend(score_records(editors[0], [without_locality(request)], [{}]))

    results = run_mixed(make_editor, streams, args.seed, args.model, on_edit=on_edit, cache_unedited=True)
    requests = streams[0].requests
    print(json.dumps({
        "settings": vars(args),
        "at_write": summary(at_write, requests),
        "at_end": summary(results[names[0]].records, requests),
        **{name: {key: round(value, 3) for key, value in results[name].metrics.items() if key in OTHER_SCORES}
           for name in names[1:]},
    }, indent=1))


if __name__ == "__main__":
    main()
