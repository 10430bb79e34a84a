"""`MemoirConfig`: the peft config of a MEMOIR residual memory on one MLP down-projection."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from peft.config import PeftConfig

from memoir.adapter_files import check_adapter_folder
from memoir.errors import AdapterFileError, InvalidConfigError
from memoir.peft_type import MemoirPeftType

POOLINGS = ("mean", "last", "idf")


@dataclass
class MemoirConfig(PeftConfig):
    """Where the memory sits and how inputs are routed to it.

    `target_modules` is derived from `target_layer` and `module_path`, so a config only names the
    decoder layer; peft's own matching then finds `...layers.<target_layer>.mlp.down_proj`.
    """

    target_layer: int = field(default=24, metadata={"help": "Index of the decoder layer whose down_proj is wrapped."})
    top_k: int = field(default=440, metadata={"help": "Active columns per mask (k of the MLP width D)."})
    tau: float = field(default=0.5, metadata={"help": "Minimum mask overlap in (0, 1] for the memory to fire."})
    permutation_seed: int = field(default=0, metadata={"help": "Seed of the fixed column permutation of TopHash."})
    pooling: str = field(
        default="mean",
        metadata={"help": "How prompt tokens become one feature: 'mean' (paper), 'last', or 'idf' (mean weighted by rarity)."},
    )
    idf_power: float = field(
        default=2.0, metadata={"help": "With pooling='idf', each token weighs idf**idf_power: template words count less."}
    )
    min_similarity: Optional[float] = field(
        default=None,
        metadata={"help": "Second routing stage: the best-overlap edit fires only if the cosine of the centred "
                  "pooled features reaches this. None: overlap alone decides (paper)."},
    )
    min_margin: Optional[float] = field(
        default=None,
        metadata={"help": "Third routing stage: the best overlap must beat the margin_rank-th best by this much, so a "
                  "prompt that resembles many edits alike (a shared template) fires none. None: off (paper)."},
    )
    margin_rank: int = field(
        default=8,
        metadata={"help": "Which stored edit the margin is taken against: ranks 2..margin_rank-1 are left to the "
                  "best's siblings (other edits of one subject), which a paraphrase may match as well."},
    )
    center_residual: bool = field(
        default=False,
        metadata={"help": "Feed R with (a - background) instead of a: edits then share less of what all inputs have in common."},
    )
    banks: int = field(
        default=1,
        metadata={"help": "Residual matrices side by side; each stored edit writes and is read in one of them (its "
                  "editor chooses which), so edits of different kinds do not overwrite each other. 1: one R (paper)."},
    )
    module_path: str = field(default="mlp.down_proj", metadata={"help": "Path of the wrapped module in a layer."})
    base_model_alias: Optional[str] = field(
        default=None, metadata={"help": "Short name of an embedded base model, used when its local path is gone."}
    )
    base_fingerprint: Optional[dict[str, Any]] = field(
        default=None,
        metadata={"help": "Architecture, sizes and wrapped-weight hash of the base model, set at injection (memoir.fingerprint)."},
    )
    target_modules: Optional[list[str]] = field(default=None, metadata={"help": "Derived from target_layer."})
    task_type: Optional[str] = field(default="CAUSAL_LM", metadata={"help": "peft task type."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = MemoirPeftType.MEMOIR
        self.validate()
        self.target_modules = [f"layers.{self.target_layer}.{self.module_path}"]

    def validate(self) -> None:
        """Check the values that need no model; the model-dependent checks run at injection."""
        if not is_int(self.target_layer) or self.target_layer < 0:
            raise InvalidConfigError(f"target_layer must be a layer index >= 0, got {self.target_layer!r}.")
        if not is_int(self.top_k) or self.top_k <= 0:
            raise InvalidConfigError(f"top_k must be a positive int (a few % to 30 % of the MLP width), got {self.top_k!r}.")
        if not is_number(self.tau) or not 0.0 < float(self.tau) <= 1.0:
            raise InvalidConfigError(f"tau must lie in (0, 1] (paper: 0.4 ZsRE, 0.9 hallucination), got {self.tau!r}.")
        if not isinstance(self.pooling, str) or self.pooling not in POOLINGS:
            raise InvalidConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}.")
        if not is_number(self.idf_power) or not float(self.idf_power) > 0.0:
            raise InvalidConfigError(f"idf_power must be > 0 (2.0 is the SmolLM2 default), got {self.idf_power!r}.")
        if self.min_similarity is not None and (not is_number(self.min_similarity) or not -1.0 <= float(self.min_similarity) <= 1.0):
            raise InvalidConfigError(f"min_similarity must be a cosine in [-1, 1] or None, got {self.min_similarity!r}.")
        if self.min_margin is not None and (not is_number(self.min_margin) or not 0.0 <= float(self.min_margin) <= 1.0):
            raise InvalidConfigError(f"min_margin must be an overlap difference in [0, 1] or None, got {self.min_margin!r}.")
        if not is_int(self.margin_rank) or self.margin_rank < 2:
            raise InvalidConfigError(f"margin_rank must be an int >= 2 (the best is rank 1), got {self.margin_rank!r}.")
        if not is_int(self.permutation_seed) or self.permutation_seed < 0:
            raise InvalidConfigError(f"permutation_seed must be an int >= 0, got {self.permutation_seed!r}.")
        if not isinstance(self.center_residual, bool):
            raise InvalidConfigError(f"center_residual must be true or false, got {self.center_residual!r}.")
        if not is_int(self.banks) or self.banks < 1:
            raise InvalidConfigError(f"banks must be a whole number >= 1 (1: one R, as the paper), got {self.banks!r}.")
        if not isinstance(self.module_path, str) or not self.module_path:
            raise InvalidConfigError(f"module_path must name a module such as 'mlp.down_proj', got {self.module_path!r}.")
        if self.base_fingerprint is not None and not isinstance(self.base_fingerprint, dict):
            raise InvalidConfigError(f"base_fingerprint must be a mapping, got {type(self.base_fingerprint).__name__}.")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, subfolder: Optional[str] = None, **kwargs: Any) -> "MemoirConfig":
        """peft's loader, after checking a local folder's files; errors name the folder.

        Every loading route (MemoirModel, PeftModel, AutoPeftModelForCausalLM) reads the config
        through here before any weight, so a pickle-only or truncated adapter is refused first.
        """
        folder = Path(pretrained_model_name_or_path, subfolder or "")
        if folder.is_dir():
            check_adapter_folder(folder)
        try:
            return super().from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        except (InvalidConfigError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise AdapterFileError(
                f"{folder / 'adapter_config.json'} is not a valid MEMOIR config: {error} Restore the file or save the adapter again."
            ) from None


def is_int(value: Any) -> bool:
    """A whole number as a setting: an int that is not a bool (YAML's `true` is one in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A number as a setting: int or float, not a bool, not NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
