"""The background mean `mu_bg`: the pooled feature of unrelated texts on the unedited model.

Subtracting it before TopHash removes what every prompt shares, so masks reflect what is
specific to a prompt and unrelated prompts overlap less with stored edits.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase


@torch.no_grad()
def background_mean(
    peft_model: nn.Module, tokenizer: PreTrainedTokenizerBase, texts: list[str], batch_size: int = 16
) -> torch.Tensor:
    """Mean over `texts` of the prompt-pooled down_proj input of the edited layer.

    That input lies below R, so it is the unedited model's whatever the memory holds.
    """
    if not texts:
        raise ValueError("The background mean needs at least one unrelated text.")
    tuner = peft_model.base_model
    total = None
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True).to(peft_model.device)
        pooled = tuner.pooled_prompt_activations(**encoded).float().sum(dim=0)
        total = pooled if total is None else total + pooled
    return total / len(texts)
