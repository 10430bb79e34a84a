"""Statistics of unrelated text that the memory keeps from its creation on.

The background mean `mu_bg` is the pooled feature of unrelated texts on the unedited model:
subtracting it before TopHash removes what every prompt shares, so masks reflect what is
specific to a prompt and unrelated prompts overlap less with stored edits. The token IDF table
weighs each prompt token by how rare it is in a reference corpus, so that with pooling="idf" a
question's subject outweighs the template words that questions about other subjects share.
A fresh memory takes both sets of texts from the caller, else from those shipped in
`editors/data/` (made from the suites' train files, never a scored edit set, by
`python -m eval_suites.shipped_background`).
"""

from __future__ import annotations

import json
from collections import Counter
from importlib.resources import files

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from editors.errors import InvalidSettingsError

SHIPPED_BACKGROUND = files("editors").joinpath("data", "background_texts.json")
SHIPPED_IDF = files("editors").joinpath("data", "idf_texts.json")


def shipped_background_texts() -> list[str]:
    """Unrelated texts for the background mean (an editor uses the first `num_background_texts`)."""
    return json.loads(SHIPPED_BACKGROUND.read_text(encoding="utf-8"))


def shipped_idf_texts() -> list[str]:
    """The reference corpus of the token IDF table (pooling="idf")."""
    return json.loads(SHIPPED_IDF.read_text(encoding="utf-8"))


@torch.no_grad()
def background_mean(
    peft_model: nn.Module, tokenizer: PreTrainedTokenizerBase, texts: list[str], batch_size: int = 16
) -> torch.Tensor:
    """Mean over `texts` of the prompt-pooled down_proj input of the edited layer.

    That input lies below R, so it is the unedited model's whatever the memory holds.
    """
    if not texts:
        raise InvalidSettingsError("The background mean needs at least one unrelated text: pass background_texts=[...] or leave it out.")
    tuner = peft_model.base_model
    total = None
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True).to(peft_model.device)
        pooled = tuner.route_prompts(**encoded).pooled.float().sum(dim=0)
        total = pooled if total is None else total + pooled
    return total / len(texts)


def token_idf(tokenizer: PreTrainedTokenizerBase, texts: list[str], vocab_size: int) -> torch.Tensor:
    """(vocab_size,) `1 + log(N / (1 + df))` over the N `texts`; a token never seen gets the largest weight."""
    if not texts:
        raise InvalidSettingsError("The token IDF table needs at least one reference text: pass idf_texts=[...] or leave it out.")
    document_frequency: Counter[int] = Counter()
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        document_frequency.update(set(ids))
    counts = torch.zeros(vocab_size)
    for token, count in document_frequency.items():
        if token < vocab_size:
            counts[token] = count
    return 1.0 + torch.log(len(texts) / (1.0 + counts))
