"""`MemoirEditor`: writes each edit into the residual memory (DESIGN §3.4)."""

from __future__ import annotations

import logging
import time
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from editors.background import background_mean, token_idf
from editors.base import EditResult, Editor, positions
from editors.context_prefixes import generate_prefixes
from editors.edit_loss import CachedEditLoss, NaiveEditLoss
from editors.memoir_hparams import MemoirHparams
from editors.request import EditRequest
from editors.teacher_forcing import TeacherForcedBatch, teacher_forced_batch

logger = logging.getLogger(__name__)


class MemoirEditor(Editor):
    """Edits a MEMOIR `PeftModel`: one mask per edit from its plain prompt, SGD on R's masked columns.

    The background mean is computed before the first edit (from `background_texts`) unless the
    adapter already carries one; context prefixes are generated once and reused for every edit.
    """

    name = "memoir"

    def __init__(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        hparams: Optional[MemoirHparams] = None,
        background_texts: Optional[list[str]] = None,
        prefixes: Optional[list[str]] = None,
        idf_texts: Optional[list[str]] = None,
    ) -> None:
        super().__init__(model, tokenizer)
        self.hparams = hparams or MemoirHparams()
        self.memory = model.base_model.memory
        if self.memory.num_edits == 0 and not self.memory.background.any():
            if background_texts is None:
                raise ValueError("A fresh MEMOIR memory needs background_texts (unrelated texts) for its background mean.")
            self.memory.background.copy_(background_mean(model, tokenizer, background_texts))
        if model.base_model.memoir_layer.pooling == "idf" and self.memory.token_weights.numel() == 0:
            if idf_texts is None:
                raise ValueError("pooling='idf' needs idf_texts (a reference corpus) for the memory's token weights.")
            vocab_size = model.get_input_embeddings().num_embeddings
            self.memory.token_weights = token_idf(tokenizer, idf_texts, vocab_size).to(self.memory.R.device)
        if prefixes is None:
            with model.disable_adapter():
                prefixes = generate_prefixes(
                    model, tokenizer, self.hparams.prefix_seeds, self.hparams.prefix_lengths, self.hparams.prefix_mode
                )
        self.prefixes = prefixes

    def rows(self, request: EditRequest) -> TeacherForcedBatch:
        """The plain row, then the same text behind each context prefix."""
        prompts = [request.prompt] + [f"{prefix} {request.prompt}" for prefix in self.prefixes]
        batch = teacher_forced_batch(self.tokenizer, [(p, request.target) for p in prompts], padding_side="right")
        return batch.to(self.model.device)

    def edit(self, request: EditRequest) -> EditResult:
        started = time.perf_counter()
        batch = self.rows(request)
        pooled = self.plain_row_pooled(batch)
        mask = self.memory.mask_of(pooled)
        earlier = self.memory.index.best_match(mask)
        loss_fn = (CachedEditLoss if self.hparams.fast_path else NaiveEditLoss)(self.model, batch, mask)
        steps, loss = self._train(loss_fn)
        self.memory.store(pooled)
        result = EditResult(
            id=request.id,
            steps=steps,
            loss=loss,
            seconds=round(time.perf_counter() - started, 4),
            extra={"best_overlap_with_earlier": round(float(earlier.overlap[0]), 4)},
        )
        logger.info("edit %s: %d steps, loss %.4f, %.2fs, overlap %.3f", result.id, steps, loss, result.seconds, result.extra["best_overlap_with_earlier"])
        return result

    def _mask_of_plain_row(self, batch: TeacherForcedBatch) -> torch.Tensor:
        return self.memory.mask_of(self.plain_row_pooled(batch))

    @torch.no_grad()
    def plain_row_pooled(self, batch: TeacherForcedBatch) -> torch.Tensor:
        """(1, D) pooled prompt feature of the plain row: what the edit's mask and stored feature come from.

        The down_proj input does not depend on R, so the memory need not be switched off here.
        """
        plain = {key: value[:1] for key, value in batch.model_inputs().items()}
        return self.model.base_model.pooled_prompt_activations(**plain, prompt_mask=batch.prompt_mask[:1])

    def _train(self, loss_fn) -> tuple[int, float]:
        """SGD on R until the loss falls below the threshold or the step budget is spent."""
        hp = self.hparams
        R = self.memory.R
        R.requires_grad_(True)
        optimizer = torch.optim.SGD([R], lr=hp.lr, weight_decay=hp.weight_decay)
        steps = 0
        while True:
            loss = loss_fn()
            if loss.item() < hp.loss_threshold or steps == hp.max_steps:
                return steps, loss.item()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([R], hp.grad_clip)
            optimizer.step()
            steps += 1

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask), prompt_mask=prompt_mask
            ).logits

    @torch.no_grad()
    def firing_rate(self, prompts: list[str], batch_size: int = 32) -> float:
        """Fraction of `prompts` on which the memory fires (best overlap >= tau)."""
        fired = 0
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            encoded = self.tokenizer(chunk, return_tensors="pt", padding=True).to(self.model.device)
            self.model(**encoded, logits_to_keep=1)
            routing = self.model.base_model.memoir_layer.routing
            fired += 0 if routing is None else int(routing.active.sum())
        return fired / len(prompts) if prompts else 0.0
