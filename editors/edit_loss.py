"""The loss of one edit as a function of R, computed naively or on cached lower layers.

While an edit trains only R changes, so the layers below the edited one give the same result at
every step. `CachedEditLoss` runs them once and then, per step, only the edited layer and the
layers above, the final norm, and the LM head at the target positions. The edited layer is re-run
whole rather than patched, so architectures that normalise the MLP output before the residual
add (Gemma's sandwich norms) need no special case. `NaiveEditLoss` runs the whole model each
step; both must agree.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import torch
from torch import nn

from editors.teacher_forcing import TeacherForcedBatch, per_row_nll
from memoir.layer import MemoirLayer


def row_loss(target_logits: torch.Tensor, batch: TeacherForcedBatch) -> torch.Tensor:
    """Cross-entropy on target tokens, averaged per row, then over rows, so long targets and short ones weigh alike."""
    return per_row_nll(target_logits, batch).mean()


class NaiveEditLoss:
    """Whole-model forward with the edit's mask forced on every row."""

    def __init__(self, peft_model: nn.Module, batch: TeacherForcedBatch, mask: torch.Tensor) -> None:
        self.model, self.batch, self.mask = peft_model, batch, mask

    def __call__(self) -> torch.Tensor:
        with self.model.base_model.forcing_masks(self.mask):
            logits = self.model(**self.batch.model_inputs(), use_cache=False).logits
        return row_loss(logits[self.batch.target_rows, self.batch.target_positions], self.batch)


def _decoder_parts(peft_model: nn.Module) -> tuple[nn.ModuleList, int, nn.Module, nn.Module]:
    """The decoder's layer list, the edited layer's index, the final norm and the LM head."""
    base = peft_model.get_base_model()
    for module in base.modules():
        layers = getattr(module, "layers", None)
        if isinstance(layers, nn.ModuleList) and hasattr(module, "norm"):
            for index, layer in enumerate(layers):
                if any(isinstance(m, MemoirLayer) for m in layer.modules()):
                    return layers, index, module.norm, base.get_output_embeddings()
    raise TypeError("No decoder stack (`layers` beside a final `norm`) holds the MEMOIR layer.")


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@dataclass
class LowerLayers:
    """What the layers below the edited one give a batch: the edited layer's input `h` and the
    arguments each layer from there on receives (attention masks, rotary embeddings). R sits
    above them, so they hold at every step and whatever the memory holds."""

    h: Optional[torch.Tensor] = None
    layer_kwargs: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def capturing_lower_layers(peft_model: nn.Module) -> Iterator[LowerLayers]:
    """Capture the `LowerLayers` of the one forward run inside the block (without a KV cache: a
    cache among the kept arguments would grow at every step)."""
    layers, index, _, _ = _decoder_parts(peft_model)
    lower = LowerLayers()
    hooks = [layers[index].register_forward_pre_hook(lambda module, args: setattr(lower, "h", args[0]))]
    hooks += [layer.register_forward_pre_hook(lambda module, args, kwargs: lower.layer_kwargs.append(dict(kwargs)), with_kwargs=True)
              for layer in layers[index:]]
    try:
        yield lower
    finally:
        for hook in hooks:
            hook.remove()


class CachedEditLoss:
    """Runs the layers below the edited one once per edit (or takes `lower`, from a forward of the
    same batch already run), then at each call only the edited layer and those above."""

    def __init__(self, peft_model: nn.Module, batch: TeacherForcedBatch, mask: torch.Tensor,
                 lower: Optional[LowerLayers] = None) -> None:
        self.tuner, self.batch, self.mask = peft_model.base_model, batch, mask
        layers, index, self.norm, self.head = _decoder_parts(peft_model)
        self.softcap = getattr(peft_model.get_base_model().config, "final_logit_softcapping", None)
        self.layers = list(layers[index:])
        if lower is None:
            with capturing_lower_layers(peft_model) as lower, torch.no_grad(), peft_model.disable_adapter():
                peft_model(**batch.model_inputs(), use_cache=False, logits_to_keep=1)
        self.h, self.layer_kwargs = lower.h, lower.layer_kwargs

    def __call__(self) -> torch.Tensor:
        return self.under(self.mask)

    def under(self, mask: torch.Tensor) -> torch.Tensor:
        """The loss with `mask` forced on every row: the edit's own while it trains, a stored one's when checked."""
        return self.loss_of(self.head(self.target_states(mask)))

    def target_states(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, hidden) final-normed states at the target positions with `mask` forced: what the LM head reads.

        Apart from `loss_of` so that checks of several stored edits share one pass of the LM head,
        whose weights (vocabulary x hidden) take longer to read than the layers above R take to run.
        """
        hidden = self.h
        with self.tuner.forcing_masks(mask):
            for layer, kwargs in zip(self.layers, self.layer_kwargs):
                hidden = _first(layer(hidden, **kwargs))
        return self.norm(hidden[self.batch.target_rows, self.batch.target_positions])

    def loss_of(self, logits: torch.Tensor) -> torch.Tensor:
        """The loss of the LM head's `logits` at the target positions."""
        if self.softcap:  # Gemma-style final logit soft-capping, as its ForCausalLM applies it
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return row_loss(logits, self.batch)
