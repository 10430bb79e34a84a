"""`MemoirHparams`: how the MEMOIR editor writes one edit (DESIGN §3.4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from memoir.defaults import find_defaults

DEFAULT_PREFIX_SEEDS = ("I", "You", "Because", "Yes", "Q: ")


@dataclass
class MemoirHparams:
    """Optimisation of one edit. Defaults are the paper's LLaMA-3-8B values; per-model files in
    `configs/` override them where a measurement justified it (e.g. lr on SmolLM2)."""

    lr: float = 1.0
    max_steps: int = 30
    grad_clip: float = 1.0
    loss_threshold: float = 0.02
    # The authors' code decays all of R by 1e-5 per step, slowly erasing older edits; we keep 0 so
    # that an edit, once written, stays exactly as written (the paper's text updates masked columns only).
    weight_decay: float = 0.0
    prefix_seeds: tuple[str, ...] = DEFAULT_PREFIX_SEEDS
    prefix_lengths: tuple[int, ...] = (5, 10)
    prefix_mode: str = "greedy"  # "greedy" (the authors'), "sampled" (seeded sampling), or "none"
    num_background_texts: int = 100
    fast_path: bool = True

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "MemoirHparams":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown editor hyperparameters {sorted(unknown)}; known: {sorted(known)}.")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    @classmethod
    def for_model(cls, model_config: Any, name: str | None = None) -> "MemoirHparams":
        """The `editor:` section of the model's file in `configs/`, else the paper's values."""
        defaults = find_defaults(model_config, name) or {}
        return cls.from_dict(defaults.get("editor", {}))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
