"""memoir: lifelong model editing with a sparse residual memory (MEMOIR) as a peft adapter.

Importing this package registers the MEMOIR method with peft, so `PeftModel.from_pretrained`,
`AutoPeftModelForCausalLM` and `save_pretrained` handle MEMOIR adapters.
"""

from memoir.base_models import EMBEDDED_MODELS, load_base_model, load_model_config, load_tokenizer, resolve_model_path
from memoir.config import MemoirConfig
from memoir.errors import (
    AdapterFileError,
    AdapterShapeError,
    BaseModelMismatchError,
    InvalidConfigError,
    MemoirError,
    ModelNotAvailableError,
    RoutingError,
    UnsupportedArchitectureError,
)
from memoir.layer import MemoirLayer, RoutedPrefill
from memoir.mask_index import MaskIndex
from memoir.model import MemoirModel
from memoir.registration import register_with_peft
from memoir.residual_memory import ResidualMemory
from memoir.saving import save_adapter, write_atomic
from memoir.top_hash import TopHash

register_with_peft()

__all__ = [
    "AdapterFileError",
    "AdapterShapeError",
    "BaseModelMismatchError",
    "EMBEDDED_MODELS",
    "InvalidConfigError",
    "MaskIndex",
    "MemoirConfig",
    "MemoirError",
    "MemoirLayer",
    "MemoirModel",
    "ModelNotAvailableError",
    "ResidualMemory",
    "RoutedPrefill",
    "RoutingError",
    "TopHash",
    "UnsupportedArchitectureError",
    "load_base_model",
    "load_model_config",
    "load_tokenizer",
    "resolve_model_path",
    "save_adapter",
    "write_atomic",
]
