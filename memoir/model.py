"""`MemoirModel`: the peft tuner that injects one `MemoirLayer` and routes each forward pass."""

from __future__ import annotations

import inspect
import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from peft import PeftModel, get_peft_model
from peft.tuners.tuners_utils import BaseTuner
from torch import nn

from memoir.architecture import check_target, decoder_layers
from memoir.base_models import EMBEDDED_MODELS, load_base_model
from memoir.config import MemoirConfig
from memoir.defaults import resolve_defaults
from memoir.errors import InvalidConfigError
from memoir.fingerprint import base_fingerprint, check_same_base
from memoir.hub import adapter_config_file, base_model_reference
from memoir.layer import MemoirLayer, RoutedPrefill
from memoir.prompt_context import prompt_context_from_inputs
from memoir.residual_memory import ResidualMemory

logger = logging.getLogger(__name__)


class MemoirModel(BaseTuner):
    """Wraps a causal LM with a MEMOIR residual memory on one decoder layer's `down_proj`.

    Besides the usual arguments, a forward call accepts `prompt_mask` (B, S): True on prompt
    tokens, so a teacher-forced `prompt + target` sequence is routed by its prompt alone.
    """

    prefix: str = "memoir_"
    tuner_layer_cls = MemoirLayer
    target_module_mapping: dict[str, list[str]] = {}

    def inject_adapter(self, model: nn.Module, adapter_name: str, **kwargs: Any) -> None:
        # Checked here, not in a pre-injection hook: peft's add_adapter injects without that hook.
        if any(isinstance(module, MemoirLayer) for module in model.modules()):
            raise InvalidConfigError("This model already has a MEMOIR memory: one memory per model is supported.")
        config = self.peft_config[adapter_name]
        check_target(model, config.target_layer, config.module_path)
        _check_base_model(model, config)
        super().inject_adapter(model, adapter_name, **kwargs)

    def _create_and_replace(
        self, config: MemoirConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str, **kwargs: Any
    ) -> None:
        self._replace_module(parent, target_name, MemoirLayer(target, adapter_name, config), target)

    def _post_injection_hook(self, model: nn.Module, config: MemoirConfig, adapter_name: str) -> None:
        self._generation_prompt_length: Optional[int] = None
        layer = next(module for module in model.modules() if isinstance(module, MemoirLayer))
        # A plain attribute, not a registered submodule: the layer already sits inside `model`.
        object.__setattr__(self, "_memoir_layer", layer)
        self._forward_params = list(inspect.signature(model.forward).parameters)
        model.register_forward_pre_hook(self._enter_forward, with_kwargs=True)

    def _enter_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Tell the memory layer which tokens of this call are prompt, and whether it is a decode step."""
        prompt_mask = kwargs.pop("prompt_mask", None)
        inputs = dict(zip(self._forward_params, args)) | kwargs
        if prompt_mask is None and self._generation_prompt_length is not None:
            prompt_mask = _leading_positions(inputs, self._generation_prompt_length)
        self.memoir_layer.context = prompt_context_from_inputs(inputs, prompt_mask)
        return args, kwargs

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """`generate` whose routing comes from the prompt alone, with or without a KV cache.

        Without a cache every step re-reads the whole sequence; remembering the prompt length
        keeps the generated tokens out of the pooled feature, as a cached run does.
        """
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        self._generation_prompt_length = None if input_ids is None else input_ids.shape[1]
        try:
            return self.model.generate(*args, **kwargs)
        finally:
            self._generation_prompt_length = None

    @classmethod
    def _remove_adapter_name_from_key(cls, key: str, adapter_name: str) -> str:
        # The memory's tensors sit one level below the adapter name; keep saved keys name-free.
        return key.replace(f".memoir_memory.{adapter_name}.", ".memoir_memory.")

    @property
    def memoir_layer(self) -> MemoirLayer:
        """The one wrapped down_proj (found once at injection, not on every forward)."""
        return self._memoir_layer

    @property
    def memory(self) -> ResidualMemory:
        """The active adapter's memory: R, background mean, TopHash and stored masks."""
        return self.memoir_layer.memory

    @contextmanager
    def forcing_masks(self, masks: torch.Tensor) -> Iterator[None]:
        """Apply `masks` ((B, D) or (1, D) bool) to every row, bypassing retrieval; used to train an edit."""
        layer = self.memoir_layer
        layer.forced_masks = masks
        try:
            yield
        finally:
            layer.forced_masks = None

    @contextmanager
    def tracing_routing(self) -> Iterator[list[RoutedPrefill]]:
        """Record how every prefill inside the block routed (pooled prompt feature and routing), in order.

        The record is the caller's: it is neither kept on the model nor seen by an enclosing trace.
        """
        layer = self.memoir_layer
        enclosing, layer.traced = layer.traced, []
        try:
            yield layer.traced
        finally:
            layer.traced = enclosing

    @torch.no_grad()
    def route_prompts(self, **inputs: Any) -> RoutedPrefill:
        """How a batch of prompts routes: its (B, D) pooled down_proj inputs (before the background shift)
        and the stored edit each row fires, if any.

        The LM head runs on the last position only: its logits are not wanted, and over the whole
        vocabulary they cost more than the layers do.
        """
        with self.tracing_routing() as traced:
            self.model(**inputs, logits_to_keep=1)
        return traced[-1]

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        config: Optional[MemoirConfig] = None,
        dtype: torch.dtype = torch.float32,
        device_map: Optional[str | dict] = None,
        is_trainable: bool = False,
        allow_other_base: bool = False,
    ) -> PeftModel:
        """Load a saved MEMOIR adapter (folder or Hub repo id), or wrap a plain model with an empty memory.

        A repo id is fetched through the Hugging Face cache, then its base model likewise (online:
        downloaded; `HF_HUB_OFFLINE=1`: cache only). For a plain model the memory takes `config` if
        given, else the model's defaults from `configs/` (matched by short name or by shape). The
        result is a peft `PeftModel`. An adapter whose base model is not the one it was written on
        is refused unless `allow_other_base` (or `MEMOIR_ALLOW_OTHER_BASE=1`); it then takes the new
        base's fingerprint.
        """
        adapter_config = adapter_config_file(name_or_path)
        if adapter_config is not None:
            return _load_adapter(name_or_path, adapter_config, dtype, device_map, is_trainable, allow_other_base)
        base = load_base_model(name_or_path, dtype=dtype, device_map=device_map)
        config = config or _default_config(name_or_path)
        embedded = EMBEDDED_MODELS.get(name_or_path)
        if embedded is not None:
            config.base_model_alias = name_or_path
        model = get_peft_model(base, config)
        if embedded is not None:
            # The Hub id resolves on any machine; the alias keeps it loading offline from the pip package.
            model.peft_config["default"].base_model_name_or_path = embedded.hub_id
        return model


def _leading_positions(inputs: dict[str, Any], length: int) -> torch.Tensor:
    """(B, S) mask of the first `length` positions of this call's full sequence."""
    tokens = inputs["input_ids"] if inputs.get("input_ids") is not None else inputs["inputs_embeds"]
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    return (positions < length).expand(tokens.shape[0], -1)


def _default_config(name_or_path: str) -> MemoirConfig:
    defaults = resolve_defaults(name_or_path)
    if defaults is None:
        raise InvalidConfigError(
            f"No shipped config in configs/ matches {name_or_path!r}: pass config=MemoirConfig(target_layer=..., "
            "top_k=..., tau=...) explicitly."
        )
    return MemoirConfig(task_type="CAUSAL_LM", **defaults["memoir"])


def _check_base_model(model: nn.Module, config: MemoirConfig) -> None:
    """Record the base model's fingerprint in a new adapter's config; refuse a saved one that differs."""
    weight = decoder_layers(model)[config.target_layer].get_submodule(config.module_path).weight
    current = base_fingerprint(model, weight)
    if current is None:
        logger.warning("the base model's weights are not loaded (meta device): its fingerprint is not checked")
        return
    if config.base_fingerprint is not None:
        check_same_base(config.base_fingerprint, current, config.base_model_alias)
    config.base_fingerprint = current


def _load_adapter(
    source: str, config_file: Path, dtype: torch.dtype, device_map: Optional[str | dict], is_trainable: bool,
    allow_other_base: bool,
) -> PeftModel:
    config = MemoirConfig.from_pretrained(str(config_file.parent))
    if allow_other_base:
        logger.warning("%s: allow_other_base=True, its base model is not checked", source)
        config.base_fingerprint = None
    reference = base_model_reference(json.loads(config_file.read_text()), source)
    base = load_base_model(reference, dtype=dtype, device_map=device_map)
    return PeftModel.from_pretrained(base, str(source), is_trainable=is_trainable, config=config)
