"""`MemoirHparams`: how the MEMOIR editor writes one edit (the optimisation of R for one fact)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional

from editors.errors import InvalidSettingsError
from memoir.config import is_int, is_number
from memoir.defaults import CONFIG_KEYS, ConfigRef, ModelRef, resolve_defaults

DEFAULT_PREFIX_SEEDS = ("I", "You", "Because", "Yes", "Q: ")
PREFIX_MODES = ("greedy", "sampled", "none")

logger = logging.getLogger(__name__)


# Settings of earlier releases and what replaced each, so that a config still naming one is told what to write.
REPLACED = {"consolidate_neighbours": "consolidate_in_turn: K (the next K earlier edits in turn; the K sharing most "
                                      "mask columns with the new edit hardly include those it wears down)"}


@dataclass
class MemoirHparams:
    """Optimisation of one edit. Defaults are the paper's LLaMA-3-8B values; per-model files in
    `configs/` override them where a measurement justified it (e.g. lr on SmolLM2)."""

    lr: float = 1.0
    max_steps: int = 30
    grad_clip: float = 1.0
    # Scale every step's gradient up to grad_clip as well as down, so each SGD step moves R by lr:
    # a long target's gradient (a 130-token passage) is 10x smaller than the clip and plain clipped
    # SGD crawls; false clips only, as the paper does.
    normalise_steps: bool = False
    loss_threshold: float = 0.02
    # Halvings of the step that first crosses loss_threshold, keeping the shortest part that still
    # crosses it (editors.memoir_editor: `_shorten_last_step`); 0 keeps whole steps, as the paper does.
    last_step_bisections: int = 0
    # The authors' code decays all of R by 1e-5 per step, slowly erasing older edits; we keep 0 so
    # that an edit, once written, stays exactly as written (the paper's text updates masked columns only).
    weight_decay: float = 0.0
    # λ of editors.preservation: damp a new edit's update along the inputs earlier edits are read
    # on; 0 writes each edit as the paper does, ignoring the edits it overwrites in shared columns.
    preservation: float = 0.0
    # Word-dropout variants of each edit's prompt whose inputs C protects too (weighing together as
    # much as the prompt's own), so that later edits also avoid what its paraphrases read; 0: the prompt's alone.
    # Changing it for an adapter that holds edits rebuilds C from its ledger (one forward per stored edit).
    preservation_variants: int = 0
    # The most one edit weighs in C, in unit inputs (positions): a longer edit's inputs are scaled down
    # to weigh this much together, so that a 130-token passage does not damp later edits' updates ten
    # times as much as a 13-token question does; 0: every position weighs 1. Changing it rebuilds C, as above.
    max_protected_positions: int = 0
    # Word-dropout variants of each edit's prompt trained beside it, under its mask, when it is written
    # or written again, so that it holds on inputs near its prompt, where its paraphrases read R; 0: the prompt alone
    # (2 lost ZsRE Gen to wear on the mixed train stream: configs/smollm2-135m.yaml).
    train_variants: int = 0
    # editors.consolidation: after every `consolidate_every`-th edit, write again each stored edit
    # whose own prompt's loss has risen above `consolidate_above`; 0 never does (the paper's editor).
    consolidate_every: int = 0
    consolidate_above: float = 0.2  # configs/smollm2-135m.yaml sets 0.05, measured on the mixed train stream
    # After every edit, check this many earlier edits in turn (oldest first, round and round the
    # ledger) and write again those above `consolidate_above`; 0 checks none.
    consolidate_in_turn: int = 0
    # Targets of more than `long_target_tokens` tokens (passages; a ZsRE answer has at most 16) are written with
    # `long_target_lr` to `long_target_loss_threshold` and written again above `long_target_consolidate_above`:
    # a passage's update is 2-3x a question's, and so is what it leaves on the inputs of edits written after it
    # (README, "Mixed stream"); 0: every target takes the settings above. In an adapter of two banks
    # (`MemoirConfig.banks`), long targets are written in bank 1 and the others in bank 0.
    long_target_tokens: int = 0
    long_target_lr: float = 1.0
    long_target_loss_threshold: float = 0.02
    long_target_consolidate_above: float = 0.2
    prefix_seeds: tuple[str, ...] = DEFAULT_PREFIX_SEEDS
    prefix_lengths: tuple[int, ...] = (5, 10)
    prefix_mode: str = "greedy"  # "greedy" (the authors'), "sampled" (seeded sampling), or "none"
    num_background_texts: int = 100
    fast_path: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse values an edit cannot run with, before any model is loaded."""
        for name in ("lr", "grad_clip", "long_target_lr"):
            _require(name, getattr(self, name), is_number(getattr(self, name)) and getattr(self, name) > 0, "a number > 0")
        for name in ("loss_threshold", "weight_decay", "preservation", "consolidate_above", "long_target_loss_threshold",
                     "long_target_consolidate_above"):
            _require(name, getattr(self, name), is_number(getattr(self, name)) and getattr(self, name) >= 0, "a number >= 0")
        for name in ("last_step_bisections", "consolidate_every", "consolidate_in_turn", "preservation_variants",
                     "max_protected_positions", "train_variants", "long_target_tokens"):
            _require(name, getattr(self, name), is_int(getattr(self, name)) and getattr(self, name) >= 0, "a whole number >= 0")
        for name in ("max_steps", "num_background_texts"):
            _require(name, getattr(self, name), is_int(getattr(self, name)) and getattr(self, name) >= 1, "a whole number >= 1")
        _require("prefix_seeds", self.prefix_seeds, _tuple_of(self.prefix_seeds, lambda seed: isinstance(seed, str) and seed != ""),
                 "a list of non-empty strings")
        _require("prefix_lengths", self.prefix_lengths, _tuple_of(self.prefix_lengths, lambda n: is_int(n) and n >= 1),
                 "a list of whole numbers >= 1")
        _require("prefix_mode", self.prefix_mode, isinstance(self.prefix_mode, str) and self.prefix_mode in PREFIX_MODES,
                 f"one of {PREFIX_MODES}")
        for name in ("fast_path", "normalise_steps"):
            _require(name, getattr(self, name), isinstance(getattr(self, name), bool), "true or false")

    @classmethod
    def from_dict(cls, values: Any) -> "MemoirHparams":
        if not isinstance(values, dict):
            raise InvalidSettingsError(f"the editor settings must be a mapping of names to values, got {type(values).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        gone = sorted(map(str, unknown & set(REPLACED)))
        if gone:
            raise InvalidSettingsError(f"The editor setting {gone[0]!r} is gone: use {REPLACED[gone[0]]}.")
        if unknown:
            raise InvalidSettingsError(f"Unknown editor hyperparameters {sorted(map(str, unknown))}; known: {sorted(known)}.")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    @classmethod
    def for_model(cls, model: ModelRef, config: Optional[ConfigRef] = None) -> "MemoirHparams":
        """The `editor:` section of `config`, else of the model's own file in `configs/`.

        A model no shipped file matches gets the paper's values, with a warning: they were set
        for LLaMA-3-8B and may need tuning (see benchmarks/tune_memoir.py).
        """
        defaults = resolve_defaults(model, config)
        if defaults is None:
            logger.warning("No file in configs/ matches this model: editing with the paper's LLaMA-3-8B settings.")
            return cls()
        return cls.from_dict(defaults.get("editor", {}))

    def is_long(self, tokens: int) -> bool:
        """Whether a target of `tokens` tokens takes the long_target_* settings (and, in a memory of two banks, bank 1)."""
        return bool(self.long_target_tokens) and tokens > self.long_target_tokens

    def for_target(self, tokens: int) -> "MemoirHparams":
        """The settings an edit whose target has `tokens` tokens is written and checked with."""
        if not self.is_long(tokens):
            return self
        return replace(self, lr=self.long_target_lr, loss_threshold=self.long_target_loss_threshold,
                       consolidate_above=self.long_target_consolidate_above)

    def protection(self) -> dict[str, int]:
        """The settings that choose which inputs of an edit C holds: an adapter's C is built under one set of them."""
        return {"preservation_variants": self.preservation_variants, "max_protected_positions": self.max_protected_positions}

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def with_settings(sections: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a config's layout with each of `settings` put in the section that has it: adapter
    settings under `memoir:`, editor settings under `editor:`, `dtype` at the top."""
    editor_keys = {f.name for f in fields(MemoirHparams)}
    changed = {**sections, "memoir": dict(sections["memoir"]), "editor": dict(sections.get("editor", {}))}
    for key, value in settings.items():
        if key in CONFIG_KEYS:
            changed["memoir"][key] = value
        elif key in editor_keys:
            changed["editor"][key] = value
        elif key == "dtype":
            changed["dtype"] = value
        else:
            raise InvalidSettingsError(
                f"Unknown setting {key!r}: adapter settings are {sorted(CONFIG_KEYS)}; editor settings {sorted(editor_keys)}; "
                "and dtype."
            )
    return changed


def _require(name: str, value: Any, valid: bool, expected: str) -> None:
    if not valid:
        raise InvalidSettingsError(f"editor setting {name} must be {expected}, got {value!r}; fix it in the config file.")



def _tuple_of(values: Any, valid: Any) -> bool:
    return isinstance(values, tuple) and all(valid(value) for value in values)
