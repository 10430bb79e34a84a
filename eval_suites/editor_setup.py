"""Building an editor and its edit stream from command-line style arguments.

Shared by `memoir edit`, `memoir eval` and the demo, so that all three set up a model, its
background texts and its hyperparameters the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
from accelerate import Accelerator

import memoir
from editors.edit_data import EditData, load_edit_data
from editors.memoir_editor import MemoirEditor
from editors.memoir_hparams import MemoirHparams
from memoir.defaults import load_defaults
from eval_suites.suites import SUITES, resolve_data, suite_train_path

logger = logging.getLogger("memoir")


def background_texts(data: str, count: int) -> list[str]:
    """Unrelated texts for the background mean: the locality texts of the matching suite's train
    file (ZsRE's for a user's file), never the scored edit file itself."""
    suite = data if data in SUITES else "zsre"
    requests = load_edit_data(suite_train_path(suite)).requests
    texts = [f"{r.locality_prompt} {r.locality_answer or ''}".strip() for r in requests if r.locality_prompt]
    return texts[:count]


def idf_texts() -> list[str]:
    """The reference corpus of the token IDF table: the prompts and locality prompts of every suite's
    train file (never a scored edit file), so that the words of the suites' templates count little."""
    texts = []
    for suite in SUITES:
        for request in load_edit_data(suite_train_path(suite)).requests:
            texts += [text for text in (request.prompt, request.locality_prompt) if text]
    return texts


def load_requests(data: str, num_edits: Optional[int], strict: bool) -> EditData:
    """Valid records of `--data`, bad ones reported with their index on stderr."""
    loaded = load_edit_data(resolve_data(data), limit=num_edits, strict=strict)
    for bad in loaded.bad_records:
        logger.warning("skipped %s", bad)
    if loaded.duplicate_prompts:
        logger.warning("records %s repeat an earlier prompt", loaded.duplicate_prompts)
    if num_edits is not None and len(loaded.requests) < num_edits:
        logger.warning("only %d valid records for --num-edits %d", len(loaded.requests), num_edits)
    return loaded


def build_editor(
    model_name: str,
    data: str,
    accelerator: Accelerator,
    adapter_dir: Optional[Path] = None,
    prefixes: Optional[list[str]] = None,
    config: Optional[str] = None,
    dtype: Optional[str] = None,
    device_map: Optional[str] = None,
) -> MemoirEditor:
    """A MEMOIR editor on `model_name`, fresh or continuing a saved adapter.

    `config` names a shipped config or a YAML file of that layout; without it the model's own
    file in `configs/` is used (matched by name or shape). `dtype` ("float32", "bfloat16", ...)
    overrides the config's; R itself stays float32. With `device_map` (e.g. "auto") the base
    model is placed by transformers instead of on this process's device.
    """
    defaults = load_defaults(config) if config else None
    placement = dict(dtype=getattr(torch, dtype or (defaults or {}).get("dtype", "float32")), device_map=device_map)
    resuming = adapter_dir is not None and adapter_dir.exists()
    if resuming:
        model = memoir.MemoirModel.from_pretrained(str(adapter_dir), is_trainable=True, **placement)
    else:
        memoir_config = memoir.MemoirConfig(**defaults["memoir"]) if defaults else None
        model = memoir.MemoirModel.from_pretrained(model_name, config=memoir_config, **placement)
    if device_map is None:
        model.to(accelerator.device)
    tokenizer = memoir.load_tokenizer(model_name)
    if defaults:
        hparams = MemoirHparams.from_dict(defaults.get("editor", {}))
    else:
        hparams = MemoirHparams.for_model(model.get_base_model().config, model_name)
    texts = background_texts(data, hparams.num_background_texts)
    return MemoirEditor(model, tokenizer, hparams, background_texts=texts, prefixes=prefixes, idf_texts=idf_texts())
