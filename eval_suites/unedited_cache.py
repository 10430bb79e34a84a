"""The unedited model's scores of a stream, kept between runs of `memoir eval`.

Every run scores its records on the unedited model before the first edit: the "unedited" row and
the locality reference that Loc compares with. For the same model, records and scoring code they
are the same every time, and on 2 cores they take ~40 of the ~105 minutes of the three suites'
mixed stream. They are kept in memoir's cache (`~/.cache/memoir/unedited/`; `$MEMOIR_UNEDITED_CACHE`
names another folder), one file per stream, named by a hash of everything they depend on; delete
the folder to score afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import platform
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from editors.base import Editor
from editors.request import EditRequest
from eval_suites.errors import ProtocolError
from memoir.base_models import cache_dir
from memoir.saving import write_atomic

CACHE_ENV = "MEMOIR_UNEDITED_CACHE"
# The code a score depends on: a change to any of these files, or to a metric module, scores afresh.
SCORING_SOURCES = (("eval_suites", "scoring.py"), ("eval_suites", "metrics.py"), ("editors", "teacher_forcing.py"))
FULLY_HASHED = 1 << 22  # tensors up to this many elements (the adapter's, a small model's) are hashed whole
SAMPLED_STRIDE = 4099  # of a larger one every so many elements (a prime, so that no row aligns with it)

logger = logging.getLogger(__name__)

Unedited = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # (locality reference, records)


def cache_folder() -> Path:
    return Path(os.environ.get(CACHE_ENV) or cache_dir() / "unedited")


def unedited_scores(editor: Editor, requests: Sequence[EditRequest], options: dict[str, Any],
                    compute: Callable[[], Unedited]) -> Unedited:
    """`compute()`'s (reference, records) for this model, these records and scoring options: read
    from the cache when a run of the same has written them, else computed and written."""
    path = cache_folder() / f"{stream_key(editor, requests, options)}.pt"
    if path.is_file():
        try:
            kept = torch.load(path, weights_only=True)
        except Exception as error:
            raise ProtocolError(f"the kept unedited scores in {path} cannot be read ({type(error).__name__}); delete that file "
                                "to score the unedited model afresh.") from error
        logger.info("unedited scores of %d records read from %s", len(requests), path)
        return kept["reference"], kept["records"]
    reference, records = compute()
    buffer = io.BytesIO()
    torch.save({"reference": reference, "records": records}, buffer)
    write_atomic(path, buffer.getvalue())
    return reference, records


def stream_key(editor: Editor, requests: Sequence[EditRequest], options: dict[str, Any]) -> str:
    """sha256 of the model (the weights its outputs depend on, sampled; dtype, device), the records, the options and the scoring code."""
    described = {
        "editor": type(editor).__qualname__,
        "model": tensors_hash(editor.output_tensors()),
        "tokenizer": editor.tokenizer.name_or_path,
        "device": next(editor.model.parameters()).device.type,
        "requests": [dataclasses.asdict(request) for request in requests],
        "options": options,
        "code": scoring_code_hash(),
        "versions": [metadata.version(name) for name in ("torch", "transformers")] + [platform.machine()],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def scoring_code_hash() -> str:
    """sha256 of the files whose code turns a model's outputs into scores."""
    digest = hashlib.sha256()
    modules = sorted(Path(str(files("eval_suites").joinpath("metrics_modules"))).rglob("*.py"))
    for path in [*(Path(str(files(package).joinpath(name))) for package, name in SCORING_SOURCES), *modules]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tensors_hash(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 over named weights and buffers: name, shape, dtype and values (a strided sample of each
    large one), so that two checkpoints of one architecture differ even where only some layers were tuned."""
    digest = hashlib.sha256()
    for name, tensor in tensors:
        values = tensor.detach().reshape(-1)
        sample = values if values.numel() <= FULLY_HASHED else values[::SAMPLED_STRIDE]
        sample = sample.to(device="cpu", dtype=torch.float32)
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode("utf-8"))
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()
