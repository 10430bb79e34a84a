"""Time per edit step: the cached fast path against naive whole-model steps, in one process.

    python benchmarks/edit_fast_path.py [--model smollm2-135m] [--edits 5] [--steps 10] [--prefix-mode greedy]

`--prefix-mode greedy` trains each edit behind the paper's ~10 generated prefixes (11 rows), the
default of configs/smollm2-135m.yaml is one row; the saving grows with the rows per step.

Both paths train the same edits from the same R, so their losses are printed side by side too.
"""

from __future__ import annotations

import argparse
import time

import torch

import memoir
from editors.edit_loss import CachedEditLoss, NaiveEditLoss
from editors.edit_data import load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from eval_suites.suites import suite_path


def time_steps(editor: MemoirEditor, loss_cls, requests, steps: int) -> tuple[float, float, list[float]]:
    """Seconds per step with the once-per-edit setup spread over the steps (as in a real edit),
    seconds per step without it, and the final loss of each edit."""
    memory = editor.memory
    start_R = memory.R.detach().clone()
    setup, stepping, losses = 0.0, 0.0, []
    for request in requests:
        memory.R.data.copy_(start_R)
        batch = editor.rows(request)
        mask = editor._mask_of_plain_row(batch)
        began = time.perf_counter()
        loss_fn = loss_cls(editor.model, batch, mask)
        optimizer = torch.optim.SGD([memory.R], lr=editor.hparams.lr)
        ready = time.perf_counter()
        for _ in range(steps):
            loss = loss_fn()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        setup += ready - began
        stepping += time.perf_counter() - ready
        losses.append(loss.item())
    memory.R.data.copy_(start_R)
    count = steps * len(requests)
    return (setup + stepping) / count, stepping / count, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--prefix-mode", choices=["greedy", "sampled", "none"], default=None, help="default: the model's config")
    args = parser.parse_args()
    model = memoir.MemoirModel.from_pretrained(args.model)
    model.base_model.memory.R.requires_grad_(True)
    tokenizer = memoir.load_tokenizer(args.model)
    hparams = MemoirHparams.for_model(args.model)
    if args.prefix_mode is not None:
        hparams.prefix_mode = args.prefix_mode
    editor = MemoirEditor(model, tokenizer, hparams, background_texts=["unused"] * 2)
    requests = load_edit_data(suite_path("zsre"), limit=args.edits).requests
    naive, naive_steps_only, naive_losses = time_steps(editor, NaiveEditLoss, requests, args.steps)
    cached, cached_steps_only, cached_losses = time_steps(editor, CachedEditLoss, requests, args.steps)
    layer = model.peft_config["default"].target_layer
    print(f"model {args.model}, layer {layer}, {len(editor.prefixes) + 1} rows per edit, {torch.get_num_threads()} threads")
    print(f"{'':12s} {'with setup':>12s} {'steps only':>12s}")
    print(f"{'naive  step':12s} {naive * 1000:9.1f} ms {naive_steps_only * 1000:9.1f} ms")
    print(f"{'cached step':12s} {cached * 1000:9.1f} ms {cached_steps_only * 1000:9.1f} ms")
    print(f"{'speed-up':12s} {naive / cached:10.2f}x {naive_steps_only / cached_steps_only:10.2f}x")
    print("final losses naive :", " ".join(f"{x:.5f}" for x in naive_losses))
    print("final losses cached:", " ".join(f"{x:.5f}" for x in cached_losses))


if __name__ == "__main__":
    main()
