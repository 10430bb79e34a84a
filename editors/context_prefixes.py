"""Short generic prefixes the model writes itself, placed before each edit's text.

Training an edit behind several contexts makes it hold when the prompt is not at the start of
the input. They are generated once per editor from the unedited model and reused for every edit.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

from editors.errors import InvalidSettingsError


@torch.no_grad()
def generate_prefixes(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, seeds: tuple[str, ...], lengths: tuple[int, ...], mode: str
) -> list[str]:
    """One prefix per (seed, length); each seed is generated alone, since padded batches run past the pads."""
    if mode == "none":
        return []
    if mode not in ("greedy", "sampled"):
        raise InvalidSettingsError(f"prefix_mode must be 'greedy', 'sampled' or 'none', got {mode!r}.")
    prefixes = []
    for index, seed in enumerate(seeds):
        ids = tokenizer(seed, return_tensors="pt").input_ids.to(model.device)
        for length in lengths:
            torch.manual_seed(index * 1000 + length)
            sampling = dict(do_sample=True, top_k=50) if mode == "sampled" else dict(do_sample=False)
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=length,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
            prefixes.append(tokenizer.decode(out[0], skip_special_tokens=True).strip())
    return prefixes
