"""Which stored edits does a new edit wear down, and can the editor tell them in advance?

    python benchmarks/drift_ranking.py [--data zsre,hallucination,temporal] [--num-edits 500,150,37] [--stored 300] [--probes 12]

Writes the first `--stored` edits of the mixed stream of the suites' *train* files (the order of
tune_mixed.py), then, for each of the next `--probes` edits, measures every earlier edit's loss on
its own prompt under its own mask before and after it: the rise it caused. Prints how spread out
the rise is (stored edits rising by more than 0.001, the share of the whole rise in the 8 that rose
most) and how well three rankings, known before checking, find those 8: the columns the new
edit's mask shares with each one's (what a check of "neighbours" reads), the first-order change of
each one's residual (|ΔR k| over its positions' unit inputs k), and each one's loss before the new
edit; beside them what a random pick of 8 finds. A ranking that finds them would let consolidation
check few edits per edit; one that does not says to check them in turn.
"""

from __future__ import annotations

import argparse

import torch

from eval_suites.editor_setup import setting
from eval_suites.protocol import Stream, interleaved, mixed_order
from tune_memoir import fresh_editor, settings, train_requests
from tune_mixed import interleaved_texts

TOP = 8


def rank_of(values: torch.Tensor) -> torch.Tensor:
    return values.argsort().argsort().float()


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([rank_of(a), rank_of(b)]))[0, 1])


def hits(ranking: torch.Tensor, rise: torch.Tensor) -> int:
    """How many of the TOP stored edits that rose most are among the TOP the ranking puts first."""
    return len(set(ranking.topk(TOP).indices.tolist()) & set(rise.topk(TOP).indices.tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default="zsre,hallucination,temporal")
    parser.add_argument("--num-edits", default="500,150,37", help="records of each train file in the stream, as tune_mixed.py")
    parser.add_argument("--stored", type=int, default=300, help="edits written before the probes")
    parser.add_argument("--probes", type=int, default=12, help="edits whose effect on every earlier edit is measured")
    parser.add_argument("--set", nargs="*", type=setting, default=[], help="settings, as tune_memoir.py")
    args = parser.parse_args()
    names, counts = args.data.split(","), [int(count) for count in args.num_edits.split(",")]
    streams = [Stream(name, train_requests(name, count)[:count]) for name, count in zip(names, counts)]
    order = mixed_order(streams, 0)
    stream = list(zip([names[label] for label in order], interleaved(streams, order)))
    if not 2 * TOP <= args.stored <= len(stream) - args.probes:
        parser.error(f"--stored must be at least {2 * TOP} and, with --probes, at most the stream's {len(stream)} edits")
    config, hparams = settings(args.model, None, args.set)
    editor = fresh_editor(args.model, config, hparams, interleaved_texts(names[:1]))
    for _, request in stream[: args.stored]:
        editor.edit(request)
    keys = [editor._stored_keys(entry, mask[None]) for entry, mask in zip(editor.ledger.entries, editor.memory.index.masks)]
    scores: dict[str, list[float]] = {"overlap": [], "residual change": [], "loss before": []}
    found: dict[str, list[int]] = {name: [] for name in scores}
    after = editor.stored_losses()
    for name, request in stream[args.stored : args.stored + args.probes]:
        earlier, before, R = len(after), after, editor.memory.R.detach().clone()
        editor.edit(request)
        after = editor.stored_losses()  # the next probe's `before`, the new edit's own loss last
        rise = after[:earlier] - before
        change = editor.memory.R.detach() - R
        masks = editor.memory.index.masks.float()
        rankings = {
            "overlap": masks[:earlier] @ masks[earlier],
            "residual change": torch.stack([(k @ change.T).square().sum().sqrt() for k in keys]),
            "loss before": before,
        }
        keys.append(editor._stored_keys(editor.ledger.entries[-1], editor.memory.index.masks[-1:]))
        positive = rise.clamp(min=0)
        top_share = float(positive.topk(TOP).values.sum() / positive.sum().clamp(min=1e-12))
        for key, ranking in rankings.items():
            scores[key].append(spearman(ranking, rise))
            found[key].append(hits(ranking, rise))
        print(f"{name:13s} max rise {float(rise.max()):.3f}, {int((rise > 1e-3).sum())} of {earlier} rise > 0.001, "
              f"top {TOP} hold {top_share:.0%} of the rise; found of the top {TOP}: "
              + ", ".join(f"{key} {found[key][-1]}" for key in rankings))
    print(f"\nmean over {args.probes} edits after {args.stored} stored (a random pick finds {TOP * TOP / args.stored:.2f}):")
    for key in scores:
        print(f"  {key:16s} Spearman with the rise {sum(scores[key]) / args.probes:+.3f}, "
              f"finds {sum(found[key]) / args.probes:.2f} of the top {TOP}")


if __name__ == "__main__":
    main()
