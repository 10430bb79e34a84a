"""`memoir demo`: edit a few ZsRE facts into SmolLM2 and show greedy answers before and after.

The answers are shown for the edit prompts, their paraphrases and unrelated prompts, then again
after saving the adapter and loading it back with peft's own `PeftModel.from_pretrained`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import torch
from peft import PeftModel
from transformers import PreTrainedTokenizerBase

import memoir
from editors.memoir_editor import MemoirEditor
from editors.request import EditRequest
from eval_suites.editor_setup import load_requests


@torch.no_grad()
def greedy_answers(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], max_new_tokens: int = 8) -> list[str]:
    """First line of each prompt's greedy continuation (left-padded batch, one routing per prompt)."""
    tokenizer.padding_side = "left"
    encoded = tokenizer(list(prompts), return_tensors="pt", padding=True).to(model.device)
    out = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(out[:, encoded.input_ids.shape[1] :], skip_special_tokens=True)
    return [text.strip().split("\n")[0] for text in texts]


def answer_table(
    title: str, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, requests: Sequence[EditRequest], before: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Print greedy answers for edit prompts, paraphrases and unrelated prompts; return them."""
    kinds = {
        "edit": [r.prompt for r in requests],
        "paraphrase": [r.rephrase or r.prompt for r in requests],
        "unrelated": [r.locality_prompt or "" for r in requests],
    }
    answers = {kind: greedy_answers(model, tokenizer, prompts) for kind, prompts in kinds.items()}
    print(f"\n== {title}")
    for kind, prompts in kinds.items():
        print(f"-- {kind} prompts")
        for i, prompt in enumerate(prompts):
            wanted = f"   (new: {requests[i].target})" if kind != "unrelated" else ""
            was = f"   [before: {before[kind][i]}]" if before is not None else ""
            print(f"  {prompt[:60]:<60} -> {answers[kind][i][:40]}{wanted}{was}")
    return answers


def run_demo(num_edits: int = 10, model_name: str = "smollm2-135m", out_dir: str | None = None) -> Path:
    """Edit, compare, save, reload with peft, compare again; returns the adapter folder."""
    requests = load_requests("zsre", num_edits, strict=False).requests
    editor = MemoirEditor.from_pretrained(model_name)
    before = answer_table("unedited model", editor.model, editor.tokenizer, requests)
    for request in requests:
        result = editor.edit(request)
        print(f"edit {result.id}: {result.steps} steps, loss {result.loss:.4f}, {result.seconds:.1f}s")
    answer_table(f"after {len(requests)} edits", editor.model, editor.tokenizer, requests, before)
    folder = editor.save(Path(out_dir or tempfile.mkdtemp(prefix="memoir-demo-")) / "adapter")
    base = memoir.load_base_model(model_name)
    reloaded = PeftModel.from_pretrained(base, str(folder)).eval()
    answer_table(f"reloaded from {folder} with PeftModel.from_pretrained", reloaded, editor.tokenizer, requests, before)
    return folder
