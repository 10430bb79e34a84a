"""Time per edit step: the cached fast path against naive whole-model steps, in one process.

    python benchmarks/edit_fast_path.py [--model smollm2-135m] [--edits 5] [--steps 10]

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


def time_steps(editor: MemoirEditor, loss_cls, requests, steps: int) -> tuple[float, list[float]]:
    """Seconds per step (setup included, as in a real edit) and the final loss of each edit."""
    memory = editor.memory
    start_R = memory.R.detach().clone()
    total, losses = 0.0, []
    for request in requests:
        memory.R.data.copy_(start_R)
        batch = editor.rows(request)
        mask = editor._mask_of_plain_row(batch)
        began = time.perf_counter()
        loss_fn = loss_cls(editor.model, batch, mask)
        optimizer = torch.optim.SGD([memory.R], lr=editor.hparams.lr)
        for _ in range(steps):
            loss = loss_fn()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total += time.perf_counter() - began
        losses.append(loss.item())
    memory.R.data.copy_(start_R)
    return total / (steps * len(requests)), losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    model = memoir.MemoirModel.from_pretrained(args.model)
    model.base_model.memory.R.requires_grad_(True)
    tokenizer = memoir.load_tokenizer(args.model)
    hparams = MemoirHparams.for_model(model.get_base_model().config, args.model)
    editor = MemoirEditor(model, tokenizer, hparams, background_texts=["unused"] * 2)
    requests = load_edit_data(suite_path("zsre"), limit=args.edits).requests
    naive, naive_losses = time_steps(editor, NaiveEditLoss, requests, args.steps)
    cached, cached_losses = time_steps(editor, CachedEditLoss, requests, args.steps)
    layer = model.peft_config["default"].target_layer
    print(f"model {args.model}, layer {layer}, {len(editor.prefixes) + 1} rows per edit, {torch.get_num_threads()} threads")
    print(f"naive  step: {naive * 1000:8.1f} ms")
    print(f"cached step: {cached * 1000:8.1f} ms")
    print(f"speed-up:    {naive / cached:8.2f}x")
    print("final losses naive :", " ".join(f"{x:.5f}" for x in naive_losses))
    print("final losses cached:", " ".join(f"{x:.5f}" for x in cached_losses))


if __name__ == "__main__":
    main()
