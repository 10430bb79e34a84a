"""Registers MEMOIR with peft, so peft's own loaders and `save_pretrained` know it."""

from __future__ import annotations

from peft import mapping

from memoir.config import MemoirConfig
from memoir.model import MemoirModel
from memoir.peft_type import MemoirPeftType


def register_with_peft() -> None:
    """Add MEMOIR to the four dicts `peft.mapping` dispatches on; idempotent."""
    key = MemoirPeftType.MEMOIR
    mapping.PEFT_TYPE_TO_CONFIG_MAPPING[key] = MemoirConfig
    mapping.PEFT_TYPE_TO_TUNER_MAPPING[key] = MemoirModel
    mapping.PEFT_TYPE_TO_MIXED_MODEL_MAPPING[key] = MemoirModel
    mapping.PEFT_TYPE_TO_PREFIX_MAPPING[key] = MemoirModel.prefix
