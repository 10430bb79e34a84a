"""Which base model an adapter was written on: architecture, sizes and a hash of the wrapped weight.

Two checkpoints of one architecture have the same shapes, so a shape check alone lets an adapter
load onto a model it was not written for, where it answers nonsense. The hash of the wrapped
down_proj's original weight tells them apart. It is taken over the weight rounded to bfloat16,
so a float32 and a bfloat16 load of the same checkpoint agree.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Optional

import torch
from torch import nn

from memoir.base_models import EMBEDDED_MODELS
from memoir.errors import BaseModelMismatchError

logger = logging.getLogger(__name__)

OVERRIDE_ENV = "MEMOIR_ALLOW_OTHER_BASE"
SIZE_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size")
COMPARED = ("architecture", *SIZE_KEYS, "weight_sha256")


def weight_sha256(weight: torch.Tensor) -> str:
    """sha256 of a weight rounded to bfloat16 (row-major bytes), whatever device or dtype it sits in."""
    rounded = weight.detach().to(device="cpu", dtype=torch.bfloat16).contiguous()
    return hashlib.sha256(rounded.view(torch.int16).numpy().tobytes()).hexdigest()


def base_fingerprint(model: nn.Module, weight: torch.Tensor) -> Optional[dict[str, Any]]:
    """What identifies `model` for an adapter on `weight`; None when the weight is not materialised (meta)."""
    if weight.device.type == "meta":
        return None
    text_config = model.config.get_text_config()
    sizes = {key: getattr(text_config, key, None) for key in SIZE_KEYS}
    name = getattr(model.config, "name_or_path", "") or ""
    return {"name": name, "architecture": type(model).__name__, **sizes, "weight_sha256": weight_sha256(weight)}


def override_requested() -> bool:
    """True when `MEMOIR_ALLOW_OTHER_BASE=1`: the user accepts an adapter on another base model."""
    return os.environ.get(OVERRIDE_ENV, "") == "1"


def describe(fingerprint: dict[str, Any], alias: Optional[str] = None) -> str:
    name = alias or fingerprint.get("name") or "an unnamed model"
    return f"{name} ({fingerprint.get('architecture')}, down_proj sha256 {str(fingerprint.get('weight_sha256'))[:12]})"


def check_same_base(saved: dict[str, Any], current: dict[str, Any], saved_alias: Optional[str]) -> None:
    """Refuse an adapter whose saved fingerprint differs from the current base model's, unless overridden."""
    differing = [key for key in COMPARED if saved.get(key) != current.get(key)]
    if not differing:
        return
    embedded = EMBEDDED_MODELS.get(saved_alias or "")
    hint = f" (the embedded {saved_alias}: `{embedded.install}`)" if embedded else ""
    message = (
        f"this adapter was written on {describe(saved, saved_alias)} but is being loaded onto {describe(current)}; "
        f"they differ in {', '.join(differing)}. Load it onto the model it was written on{hint}, or set "
        f"{OVERRIDE_ENV}=1 (or pass allow_other_base=True to MemoirModel.from_pretrained) to load it anyway."
    )
    if override_requested():
        logger.warning("%s=1: %s", OVERRIDE_ENV, message)
        return
    raise BaseModelMismatchError(message)
