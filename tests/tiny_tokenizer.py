"""A word-level tokenizer built in memory, where a leading space makes a different token (like BPE).

"Yemen" and " Yemen" get different ids, as on SmolLM2, so tests can check that targets are
scored in their spaced form. Nothing is downloaded.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
WORDS = (
    "The capital of Yemen France Peru Chile is was Sanaa Paris Lima Santiago city a an old new "
    "largest river in flows through Seine Nile Who wrote Hamlet Shakespeare has"
).split()


def word_tokenizer(bos: bool = False) -> PreTrainedTokenizerFast:
    """Every word twice, bare and with a leading space ("▁"); `bos=True` prepends [BOS] to sequences."""
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS + ["▁" + word for word in WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never")
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", vocab["[BOS]"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]"
    )
