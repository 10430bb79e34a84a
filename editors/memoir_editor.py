"""`MemoirEditor`: writes each edit into the residual memory, keeps the ledger, takes edits back.

Writing one edit: the prompt's mask is its TopHash code (the pooled prompt activations of the
edited layer, less the background mean); R is trained by SGD in that mask's columns only, on
the cross-entropy of the target after the prompt (and after each context prefix), until the
loss falls below a threshold or the step budget is spent; then the mask is stored.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

import memoir
from editors.background import background_mean, shipped_background_texts, shipped_idf_texts, token_idf
from editors.base import EditResult, Editor, positions
from editors.consolidation import StoredEditLosses
from editors.context_prefixes import generate_prefixes
from editors.edit_loss import CachedEditLoss, LowerLayers, NaiveEditLoss, capturing_lower_layers
from editors.errors import InvalidSettingsError, LedgerError
from editors.ledger import LEDGER_FILE, Ledger, LedgerEntry
from editors.memoir_hparams import MemoirHparams
from editors.preservation import Preconditioner, add_keys, capped_keys, dropout_variants, unit_keys
from editors.request import EditLike, as_request
from editors.teacher_forcing import TeacherForcedBatch, target_ids, teacher_forced_batch
from memoir.defaults import ConfigRef, resolve_defaults

logger = logging.getLogger(__name__)


@dataclass
class Forgotten:
    """An edit taken back, and whether its prompt still fires another stored edit (best overlap >= tau)."""

    entry: LedgerEntry
    still_fires: Optional[str]  # id of the edit its prompt still routes to (only if their masks are identical)
    overlap: float  # best overlap of its mask with the stored edits left (it routes nowhere all the same)


@dataclass
class PlainRow:
    """What one forward of an edit's plain row (prompt and target, no context prefix) gives the editor."""

    pooled: torch.Tensor  # (1, D) pooled prompt feature: the edit's mask and stored feature
    activations: torch.Tensor  # (1, S, D) down_proj inputs at every position: the keys preservation protects
    lower: Optional[LowerLayers]  # the row's lower layers for training; None when the row was padded to prefixed rows


class MemoirEditor(Editor):
    """Edits a MEMOIR `PeftModel`: one mask per edit from its plain prompt, SGD on R's masked columns.

    Without `hparams` the editor takes the `editor:` settings of the model's own file in
    `configs/`; without `background_texts` (and `idf_texts`, for pooling="idf") a fresh memory's
    statistics come from the texts shipped with the package. A memory that already holds edits
    needs their `ledger`
    (`MemoirEditor.from_pretrained(folder)` reads it). Context prefixes are generated once.
    """

    name = "memoir"

    def __init__(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        hparams: Optional[MemoirHparams] = None,
        background_texts: Optional[list[str]] = None,
        prefixes: Optional[list[str]] = None,
        ledger: Optional[Ledger] = None,
        idf_texts: Optional[list[str]] = None,
    ) -> None:
        super().__init__(model, tokenizer)
        self.hparams = hparams or MemoirHparams.for_model(model)
        self.memory = model.base_model.memory
        self.ledger = self._ledger_for_memory(ledger)
        self._stored_edit_losses = StoredEditLosses(model, tokenizer)
        if self.memory.num_edits == 0 and not self.memory.background.any():
            texts = shipped_background_texts() if background_texts is None else background_texts
            self.memory.background.copy_(background_mean(model, tokenizer, texts[: self.hparams.num_background_texts]))
        if model.base_model.memoir_layer.pooling == "idf" and self.memory.token_weights.numel() == 0:
            vocab_size = model.get_input_embeddings().num_embeddings
            texts = shipped_idf_texts() if idf_texts is None else idf_texts
            self.memory.token_weights = token_idf(tokenizer, texts, vocab_size).to(self.memory.R.device)
        if prefixes is None:
            with model.disable_adapter():
                prefixes = generate_prefixes(
                    model, tokenizer, self.hparams.prefix_seeds, self.hparams.prefix_lengths, self.hparams.prefix_mode
                )
        self.prefixes = prefixes
        self._check_banks()
        self._build_protection()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        config: Optional[ConfigRef] = None,
        dtype: torch.dtype = torch.float32,
        device_map: Optional[str | dict] = None,
        device: Optional[str | torch.device] = None,
        **editor_kwargs: Any,
    ) -> "MemoirEditor":
        """An editor on a saved adapter folder (its memory and ledger), or on a model with an empty memory.

        `config` (a shipped config name, a YAML file of that layout or that layout as a dict) replaces the model's own
        file in `configs/`; a saved adapter keeps its own adapter config and takes only the
        editor settings from it. `device` moves the model there unless `device_map` places it.
        """
        folder = Path(name_or_path)
        saved = (folder / "adapter_config.json").is_file()
        adapter_config = None
        if config is not None and not saved:
            adapter_config = memoir.MemoirConfig(**resolve_defaults(name_or_path, config)["memoir"])
        model = memoir.MemoirModel.from_pretrained(
            str(name_or_path), config=adapter_config, dtype=dtype, device_map=device_map, is_trainable=saved
        )
        if device is not None and device_map is None:
            model.to(device)
        tokenizer = memoir.load_tokenizer(model.get_base_model().name_or_path)
        editor_kwargs.setdefault("hparams", MemoirHparams.for_model(model, config))
        return cls(model, tokenizer, ledger=Ledger.read(folder) if saved else None, **editor_kwargs)

    def _ledger_for_memory(self, ledger: Optional[Ledger]) -> Ledger:
        if ledger is None and (self.memory.num_edits or len(self.memory.forgotten)):
            raise LedgerError(
                f"This memory holds {self.memory.num_edits} edits but no ledger was given: load the adapter with "
                "MemoirEditor.from_pretrained(folder), or pass ledger=Ledger.read(folder)."
            )
        ledger = Ledger() if ledger is None else ledger
        ledger.check_matches(self.memory.num_edits, len(self.memory.forgotten), "MemoirEditor")
        return ledger

    @property
    def edits(self) -> list[dict]:
        """The stored edits, oldest first: id, prompt, target, time, steps, final loss, seconds."""
        return self.ledger.rows()

    def rows(self, request: EditLike) -> TeacherForcedBatch:
        """The plain row, then the same text behind each context prefix, then its `train_variants` word-dropout variants."""
        request = as_request(request)
        prompts = [request.prompt] + [f"{prefix} {request.prompt}" for prefix in self.prefixes]
        prompts += dropout_variants(request.prompt, self.hparams.train_variants)
        batch = teacher_forced_batch(self.tokenizer, [(p, request.target) for p in prompts], padding_side="right")
        return batch.to(self.model.device)

    def edit(self, request: EditLike, target: Optional[str] = None, id: Optional[str] = None) -> EditResult:
        """Write one edit: `edit(EditRequest(...))`, `edit(prompt, target)` or `edit((prompt, target))`.

        A prompt that a stored edit already has is re-edited: the old edit is forgotten first,
        then the new target is written, so the ledger never holds two answers to one prompt.
        """
        request = as_request(request, target, id)
        started = time.perf_counter()
        row = self.ledger.row_of_prompt(request.prompt)
        replaced = None if row is None else self._drop_row(row).id
        batch = self.rows(request)
        plain = self._plain_row_inputs(batch)
        pooled, code, bank = plain.pooled, self.memory.mask_of(plain.pooled), self._bank_of(request.target)
        mask = self.memory.write_masks(code, torch.tensor([bank]))
        # How the prompt routes before its edit: a stored edit it fires is most likely the same
        # fact asked in other words. Both stay stored and its paraphrases may get either answer,
        # so the log names it; `forget` the earlier one if the new edit replaces it.
        earlier = self.memory.route_centred(code, self.memory.centred(pooled))
        answered_by = self.ledger.entries[int(earlier.index[0])].id if bool(earlier.active[0]) else None
        steps, loss = self._write((request.prompt, request.target), batch, mask, plain.lower)
        self.memory.store(pooled, bank)
        if self.hparams.preservation or self.memory.key_covariance.numel():
            # C, once there, holds every stored edit's inputs, so that forgetting any of them takes out what went in,
            # even an edit written by an editor that does not preserve (preservation 0).
            self._protect(self._protected_keys((request.prompt, request.target), mask, plain.activations, batch.attention_mask[:1]))
        seconds = round(time.perf_counter() - started, 4)
        entry = LedgerEntry(self.ledger.free_id(request.id), request.prompt, request.target, LedgerEntry.now(), steps, loss, seconds)
        self.ledger.append(entry)
        extra = {"best_overlap_with_earlier": round(float(earlier.overlap[0]), 4), "replaced": replaced, "answered_by": answered_by,
                 "converged": loss < self._settings_of(request.target).loss_threshold}
        if self._consolidates:
            extra["consolidated"] = self._consolidate_after_edit()
        result = EditResult(id=entry.id, steps=steps, loss=loss, seconds=round(time.perf_counter() - started, 4), extra=extra)
        logger.info("edit %s: %d steps, loss %.4f, %.2fs, overlap %.3f%s%s", result.id, steps, loss, seconds,
                    extra["best_overlap_with_earlier"], f", replaces {replaced}" if replaced else "",
                    f", its prompt fired edit {answered_by} before" if answered_by else "")
        return result

    def consolidate(self, rows: Optional[Sequence[int]] = None) -> list[str]:
        """Write again each stored edit (of ledger `rows`, default all) whose loss has risen above
        `consolidate_above`; their ids, oldest first.

        Each is trained as a new edit is, under its own stored mask, from R as it is now; its
        ledger row keeps the figures of its first writing.
        """
        entries = self.ledger.entries
        rows = sorted(range(len(entries)) if rows is None else rows)
        losses = self.stored_losses(rows)
        drifted = [row for row, loss in zip(rows, losses.tolist()) if loss > self._settings_of(entries[row].target).consolidate_above]
        for row in drifted:
            self._rewrite(entries[row], self.memory.stored_masks([row]))
        if drifted:
            logger.info("consolidation: wrote again %d of the %d stored edits checked", len(drifted), len(rows))
        return [entries[row].id for row in drifted]

    def stored_losses(self, rows: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Loss of each stored edit (of ledger `rows`, default all) on its plain prompt under its own mask: its drift."""
        entries = self.ledger.entries
        rows = range(len(entries)) if rows is None else rows
        pairs = [(entries[row].prompt, entries[row].target) for row in rows]
        return self._stored_edit_losses(pairs, self.memory.stored_masks(rows))

    def _consolidate_after_edit(self) -> list[str]:
        """The whole ledger every `consolidate_every`-th edit, else the next `consolidate_in_turn` earlier edits.

        In turn rather than by shared mask columns: which stored edits a new edit wears down is
        hardly told by their overlap with it (README, "Mixed stream"), so every stored edit is
        checked once every `earlier / K` edits instead.
        """
        if self.hparams.consolidate_every and self.ledger.written % self.hparams.consolidate_every == 0:
            return self.consolidate()
        earlier = len(self.ledger.entries) - 1
        count = min(self.hparams.consolidate_in_turn, earlier)
        if count == 0:
            return []
        rows = [(self.ledger.next_check + step) % earlier for step in range(count)]
        self.ledger.next_check = (rows[-1] + 1) % earlier
        return self.consolidate(rows)

    def _rewrite(self, entry: LedgerEntry, mask: torch.Tensor) -> None:
        """Write a stored edit again; its own inputs leave the covariance meanwhile (it should not avoid itself)."""
        keys = self._stored_keys(entry, mask) if self.memory.key_covariance.numel() else None
        if keys is not None:
            self._protect(keys, weight=-1.0)
        pair = (entry.prompt, entry.target)
        self._write(pair, self.rows(pair), mask)
        if keys is not None:
            self._protect(keys)

    def _write(self, pair: tuple[str, str], batch: TeacherForcedBatch, mask: torch.Tensor,
               lower: Optional[LowerLayers] = None) -> tuple[int, float]:
        """Train R on `batch`'s rows (those of the (prompt, target) `pair`) under `mask`, avoiding what
        the stored edits read; (steps, final loss). `lower`: the plain row's lower layers, if already run."""
        return self._train(self._edit_loss(pair, batch, mask, lower), self._settings_of(pair[1]), self._preconditioner(mask))

    def _settings_of(self, target: str) -> MemoirHparams:
        """The settings an edit of `target` is written and checked with (`MemoirHparams.for_target`)."""
        return self.hparams.for_target(len(target_ids(self.tokenizer, target)))

    def _bank_of(self, target: str) -> int:
        """The bank of R an edit of `target` is written in: in a memory of two, long targets (passages) in bank 1, so
        that their updates, 2-3x a question's, land in none of the columns questions are read in (README, "How it works": banks)."""
        return int(self.memory.banks > 1 and self.hparams.is_long(len(target_ids(self.tokenizer, target))))

    def _check_banks(self) -> None:
        """This editor sorts edits into banks by target length alone: a memory of two needs that length set."""
        if self.memory.banks > 2 or (self.memory.banks == 2 and not self.hparams.long_target_tokens):
            raise InvalidSettingsError(
                f"This adapter has {self.memory.banks} banks; the MEMOIR editor writes targets of more than "
                "long_target_tokens tokens in bank 1 and the others in bank 0: use banks 1 or 2, and with 2 set the "
                "editor setting long_target_tokens (e.g. 16)."
            )

    def _edit_loss(self, pair: tuple[str, str], batch: TeacherForcedBatch, mask: torch.Tensor,
                   lower: Optional[LowerLayers]) -> Callable[[], torch.Tensor]:
        """An edit trained on its plain row alone reuses that row's lower layers from the forward that
        chose its mask, and under consolidation keeps them for the checks: the model runs below the
        edited layer once for all three."""
        if not self.hparams.fast_path:
            return NaiveEditLoss(self.model, batch, mask)
        if batch.input_ids.shape[0] > 1:
            return CachedEditLoss(self.model, batch, mask)
        if self._consolidates:
            return partial(self._stored_edit_losses.kept(pair, mask, lower).under, mask)
        return CachedEditLoss(self.model, batch, mask, lower)

    @property
    def _consolidates(self) -> bool:
        return bool(self.hparams.consolidate_every or self.hparams.consolidate_in_turn)

    def forget(self, edit_id: str) -> Forgotten:
        """Take back the stored edit `edit_id`; R stays as it is.

        Its mask moves from the stored edits to the forgotten ones: an input nearer to it than to
        every stored edit, the forgotten prompt first of all, gets the unedited model's output,
        and every other input routes and answers exactly as before. (Dropping the mask alone is
        not enough: on ZsRE most prompts' masks reach tau with another edit's; see README.)
        """
        row = self.ledger.row_of_id(edit_id)
        written = self.memory.stored_masks([row])
        mask, feature = self.memory.index.remove([row])
        self.memory.forgotten.add(mask, feature)
        entry = self.ledger.forget(row)
        self._unprotect(entry, written)
        routing = self.memory.route_centred(mask, feature)
        still_fires = self.ledger.entries[int(routing.index[0])].id if routing.active[0] else None
        if still_fires is not None:
            logger.warning("forgotten edit %s: its prompt still fires edit %s", edit_id, still_fires)
        return Forgotten(entry, still_fires, float(routing.overlap[0]))

    def _drop_row(self, row: int) -> LedgerEntry:
        """Remove a stored edit outright: a new edit of the same prompt takes its place."""
        written = self.memory.stored_masks([row])
        self.memory.index.remove([row])
        entry = self.ledger.remove(row)
        self._unprotect(entry, written)
        return entry

    def save(self, folder: str | os.PathLike) -> Path:
        """Save the adapter and its ledger to `folder`, together and atomically."""
        self.ledger.check_matches(self.memory.num_edits, len(self.memory.forgotten), str(folder))
        return memoir.save_adapter(self.model, folder, files={LEDGER_FILE: self.ledger.to_json()})

    def _mask_of_plain_row(self, batch: TeacherForcedBatch) -> torch.Tensor:
        return self.memory.mask_of(self.plain_row_pooled(batch))

    def plain_row_pooled(self, batch: TeacherForcedBatch) -> torch.Tensor:
        """(1, D) pooled prompt feature of the plain row: what the edit's mask and stored feature come from."""
        return self._plain_row_inputs(batch).pooled

    @torch.no_grad()
    def _plain_row_inputs(self, batch: TeacherForcedBatch) -> PlainRow:
        """The plain row's pooled prompt feature, down_proj inputs and lower layers, from one forward.

        None of them depends on R, so the memory need not be switched off here.
        """
        plain = {key: value[:1] for key, value in batch.model_inputs().items()}
        with capturing_lower_layers(self.model) as lower:
            pooled, activations = self._layer_inputs(plain, batch.prompt_mask[:1])
        # Lower layers of a row padded to longer prefixed rows are not those of the row alone, which training reads.
        return PlainRow(pooled, activations, lower if batch.input_ids.shape[0] == 1 else None)

    @torch.no_grad()
    def _layer_inputs(self, inputs: dict[str, torch.Tensor], prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) pooled prompt features and (B, S, D) down_proj inputs of a batch, from one forward."""
        captured: dict[str, torch.Tensor] = {}
        hook = self.model.base_model.memoir_layer.register_forward_pre_hook(lambda m, args: captured.update(x=args[0]))
        try:
            routed = self.model.base_model.route_prompts(**inputs, prompt_mask=prompt_mask, use_cache=False)
        finally:
            hook.remove()
        return routed.pooled, captured["x"]

    def _preconditioner(self, mask: torch.Tensor) -> Optional[Preconditioner]:
        if self.hparams.preservation == 0 or self.memory.key_covariance.numel() == 0:
            return None
        return Preconditioner.for_mask(self.memory.key_covariance, mask, self.hparams.preservation)

    def _keys(self, activations: torch.Tensor, attention_mask: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The unit masked inputs R reads for an edit, one per position of its plain row."""
        return unit_keys(self.memory.centred_inputs(activations), attention_mask, mask)

    def _stored_keys(self, entry: LedgerEntry, mask: torch.Tensor) -> torch.Tensor:
        """The inputs a stored edit is protected on (`_protected_keys`), from its ledger entry: they do not depend on R."""
        pair = (entry.prompt, entry.target)
        batch = self.rows(pair)
        return self._protected_keys(pair, mask, self._plain_row_inputs(batch).activations, batch.attention_mask[:1])

    def _protected_keys(self, pair: tuple[str, str], mask: torch.Tensor, activations: torch.Tensor,
                        attention_mask: torch.Tensor) -> torch.Tensor:
        """The `_keys` of an edit's plain row (its `activations`), then those of its prompt's `preservation_variants`
        word-dropout variants (weighing together as much as the plain row's), all within `max_protected_positions`."""
        keys = self._keys(activations, attention_mask, mask)
        variants = dropout_variants(pair[0], self.hparams.preservation_variants)
        if variants:
            batch = teacher_forced_batch(self.tokenizer, [(variant, pair[1]) for variant in variants], padding_side="right")
            batch = batch.to(self.model.device)
            _, variant_activations = self._layer_inputs(batch.model_inputs(), batch.prompt_mask)
            keys = torch.cat([keys, self._keys(variant_activations, batch.attention_mask, mask) / len(variants) ** 0.5])
        return capped_keys(keys, self.hparams.max_protected_positions)

    def _protect(self, keys: torch.Tensor, weight: float = 1.0) -> None:
        """Add (weight 1) or take back (weight -1) an edit's inputs in the covariance later updates avoid."""
        memory = self.memory
        if memory.key_covariance.numel() == 0:
            width = memory.index.width
            memory.key_covariance = torch.zeros(memory.banks, width, width, device=memory.R.device)
            self.ledger.protected_with = self.hparams.protection()
        add_keys(memory.key_covariance, keys, weight)

    def _unprotect(self, entry: LedgerEntry, mask: torch.Tensor) -> None:
        """An edit taken back no longer needs its inputs protected."""
        if self.memory.key_covariance.numel():
            self._protect(self._stored_keys(entry, mask), weight=-1.0)

    def _build_protection(self) -> None:
        """Build C from the ledger when it lacks the stored edits' inputs (a memory written without preservation), or
        holds them under other settings than this editor's: forget and rewrite take out the inputs these settings name."""
        covariance, wanted = self.memory.key_covariance, self.hparams.protection()
        stale = covariance.numel() > 0 and self.ledger.protected_with != wanted
        missing = covariance.numel() == 0 and self.hparams.preservation > 0 and self.memory.num_edits > 0
        if not (stale or missing):
            return
        if stale:
            logger.warning("preservation: C was built with %s, this editor uses %s; building it again",
                           self.ledger.protected_with or "settings the ledger does not record", wanted)
        self.memory.key_covariance, self.ledger.protected_with = torch.zeros(0, device=covariance.device), None
        logger.info("preservation: reading the inputs of the %d stored edits", self.memory.num_edits)
        masks = self.memory.stored_masks(range(self.memory.num_edits))
        for entry, mask in zip(self.ledger.entries, masks):
            self._protect(self._stored_keys(entry, mask[None]))

    def _train(self, loss_fn, hp: MemoirHparams, preconditioner: Optional[Preconditioner] = None) -> tuple[int, float]:
        """SGD on R with `hp` (this edit's settings) until the loss falls below the threshold or max_steps are spent;
        the step that takes it below is cut back to what the threshold needs when `last_step_bisections` asks."""
        R = self.memory.R
        R.requires_grad_(True)
        optimizer = torch.optim.SGD([R], lr=hp.lr, weight_decay=hp.weight_decay)
        steps, before = 0, None
        while True:
            loss = loss_fn()
            value = loss.item()
            if value < hp.loss_threshold and before is not None:
                return steps, self._shorten_last_step(loss_fn, before, value, hp)
            if value < hp.loss_threshold or steps == hp.max_steps:
                return steps, value
            before = R.detach().clone() if hp.last_step_bisections else None  # R before this step, to shorten it
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if preconditioner is not None:
                preconditioner.apply_(R.grad)
            norm = torch.nn.utils.clip_grad_norm_([R], hp.grad_clip)
            if hp.normalise_steps and 0 < norm < hp.grad_clip:
                R.grad.mul_(hp.grad_clip / norm)
            optimizer.step()
            steps += 1

    @torch.no_grad()
    def _shorten_last_step(self, loss_fn, before: torch.Tensor, loss: float, hp: MemoirHparams) -> float:
        """Keep the shortest fraction of the last step that still ends below the loss threshold,
        found by bisection: a full step overshoots a short target, and every unneeded change of R
        is one that earlier edits reading the same columns must absorb. Returns the loss there."""
        R = self.memory.R
        step = R.detach() - before
        low, high = 0.0, 1.0
        for _ in range(hp.last_step_bisections):
            middle = (low + high) / 2
            R.copy_(before + middle * step)
            trial = loss_fn().item()
            if trial < hp.loss_threshold:
                high, loss = middle, trial
            else:
                low = middle
        R.copy_(before + high * step)
        return loss

    def output_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Without stored edits nothing is routed and every output is the base model's, so the memory's
        tensors (whose shape follows settings such as `banks`) are left out: the unedited scores are shared."""
        if self.memory.num_edits:
            yield from super().output_tensors()
            return
        idle = {id(tensor) for tensor in [*self.memory.parameters(), *self.memory.buffers()]}
        yield from ((name, tensor) for name, tensor in super().output_tensors() if id(tensor) not in idle)

    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_mask: torch.Tensor, logits_to_keep: int = 0
    ) -> torch.Tensor:
        with torch.no_grad():
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask), prompt_mask=prompt_mask,
                logits_to_keep=logits_to_keep,
            ).logits

    @torch.no_grad()
    def firing_rate(self, prompts: list[str], batch_size: int = 32) -> float:
        """Fraction of `prompts` on which the memory fires (best overlap >= tau)."""
        fired = 0
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            encoded = self.tokenizer(chunk, return_tensors="pt", padding=True).to(self.model.device)
            routing = self.model.base_model.route_prompts(**encoded).routing
            fired += 0 if routing is None else int(routing.active.sum())
        return fired / len(prompts) if prompts else 0.0
