"""Inference cost of the MEMOIR wrapper against the plain model, measured in one process.

    python benchmarks/inference_overhead.py [--model smollm2-135m] [--stored 0,1000] [--repeats 20]

For each count of stored masks (random masks, R random in their columns) it times a batch of
prompt forwards and a greedy generation on the plain model and on the wrapped one, interleaved
so that both see the same machine state, and prints the ratios.
"""

from __future__ import annotations

import argparse
from functools import partial
import statistics
import time

import torch

import memoir

PROMPTS = [
    "The capital of France is",
    "The Eiffel Tower is located in",
    "Water boils at a temperature of",
    "The author of Hamlet is",
]


def timed_pair(first, second, repeats: int) -> tuple[float, float]:
    """Median seconds of two calls, alternated every repeat so that both see the same load."""
    first(), second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, kept in zip((first, second), samples):
            began = time.perf_counter()
            fn()
            kept.append(time.perf_counter() - began)
    return statistics.median(samples[0]), statistics.median(samples[1])


def fill_memory(model, stored: int, seed: int = 0) -> None:
    memory = model.base_model.memory
    generator = torch.Generator().manual_seed(seed)
    width = memory.R.shape[1]
    scores = torch.rand(stored, width, generator=generator)
    masks = torch.zeros(stored, width, dtype=torch.bool)
    masks.scatter_(1, scores.topk(memory.top_hash.top_k, dim=1).indices, True)
    memory.index.add(masks, torch.randn(stored, width, generator=generator))
    with torch.no_grad():
        memory.R.normal_(generator=generator).mul_(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--stored", default="0,1000", help="stored-mask counts to measure, comma-separated")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    tokenizer = memoir.load_tokenizer(args.model)
    tokenizer.padding_side = "left"
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    plain = memoir.load_base_model(args.model).eval()
    print(f"model {args.model}, batch {len(PROMPTS)}, {torch.get_num_threads()} threads, median of {args.repeats}")
    for stored in (int(x) for x in args.stored.split(",")):
        wrapped = memoir.MemoirModel.from_pretrained(args.model).eval()
        fill_memory(wrapped, stored)
        for name, call in (
            ("forward", lambda m: m(**batch)),
            ("generate 16", lambda m: m.generate(**batch, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id)),
        ):
            with torch.no_grad():
                base_s, memoir_s = timed_pair(partial(call, plain), partial(call, wrapped), args.repeats)
            print(f"{stored:6d} stored | {name:11s} | plain {base_s * 1000:8.1f} ms | memoir {memoir_s * 1000:8.1f} ms | ratio {memoir_s / base_s:5.3f}")


if __name__ == "__main__":
    main()
