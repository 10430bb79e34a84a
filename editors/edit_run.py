"""`EditRun`: a stream of edits written into `DIR/adapter/` and `DIR/edits.jsonl`, resumable.

The adapter is the source of truth for how many edits were applied: its ledger counts every
edit ever written into it (`written`), and the run's manifest records that count at the start
(non-zero when the run continues an earlier adapter). A checkpoint writes the log first, then
swaps in the adapter with its ledger, each atomically; on resume the log is cut back to what the
adapter holds. Killed at any point, a resumed run therefore ends with the same adapter as an
uninterrupted one, no edit lost or applied twice. Checkpoints fall due after a number of edits or
a number of seconds, whichever comes first, so a stream of slow edits (a large model) loses at
most about that many seconds of work.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tqdm.auto import tqdm

from editors.base import EditResult
from editors.errors import InvalidSettingsError, RunStateError
from editors.memoir_editor import MemoirEditor
from editors.request import EditRequest
from memoir.saving import write_atomic


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class RunManifest:
    """What defines a run; a resume must match it exactly."""

    model: str
    data: str
    data_sha256: str
    num_edits: int
    hparams: dict[str, Any]
    prefixes: list[str] = field(default_factory=list)
    adapter: Optional[str] = None  # the saved adapter this run continues, if any
    start: int = 0  # edits written into that adapter before this run

    @classmethod
    def read(cls, path: Path) -> "RunManifest":
        return cls(**json.loads(path.read_text()))

    def write(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.__dict__, indent=2) + "\n")

    def check_resumable_by(self, other: "RunManifest") -> None:
        for name in ("model", "data_sha256", "num_edits", "hparams", "adapter"):
            if getattr(self, name) != getattr(other, name):
                raise RunStateError(
                    f"--resume: this run's {name} differs from the one recorded in run.json "
                    f"({getattr(other, name)!r} vs {getattr(self, name)!r}); use the original arguments or a new --out."
                )


class EditRun:
    """Applies `requests[applied:num_edits]` with periodic atomic checkpoints.

    `is_writer` is False on every process but the main one under accelerate: all processes
    apply the same edits (a sequential stream cannot be split), only one writes files.
    """

    def __init__(
        self,
        out_dir: Path,
        editor: MemoirEditor,
        checkpoint_every: int = 10,
        is_writer: bool = True,
        start: int = 0,
        checkpoint_seconds: float = 60.0,
    ) -> None:
        if checkpoint_every < 1 or not checkpoint_seconds > 0:
            raise InvalidSettingsError(
                f"checkpoints need checkpoint_every >= 1 and checkpoint_seconds > 0, got {checkpoint_every} and {checkpoint_seconds}."
            )
        self.out_dir, self.editor = Path(out_dir), editor
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.is_writer, self.start = is_writer, start
        self.adapter_dir, self.log_path = self.out_dir / "adapter", self.out_dir / "edits.jsonl"

    def applied_log(self) -> list[str]:
        """Log lines of the edits the adapter holds (a log written ahead of a crashed checkpoint is cut)."""
        applied = self.editor.ledger.written - self.start
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        if len(lines) < applied:
            raise RunStateError(f"{self.log_path} lists {len(lines)} edits but the adapter holds {applied}.")
        return lines[:applied]

    def run(self, requests: Sequence[EditRequest], on_edit: Optional[Callable[[EditResult], None]] = None) -> list[str]:
        log = self.applied_log()
        pending = requests[len(log) :]
        progress = tqdm(total=len(requests), initial=len(log), unit="edit", disable=not self.is_writer, desc="editing")
        running_loss, last_checkpoint = None, time.monotonic()
        for count, request in enumerate(pending, start=1):
            result = self.editor.edit(request)
            log.append(json.dumps(result.to_dict()))
            running_loss = result.loss if running_loss is None else 0.9 * running_loss + 0.1 * result.loss
            progress.set_postfix(loss=f"{running_loss:.4f}", steps=result.steps)
            progress.update()
            if on_edit is not None:
                on_edit(result)
            due = time.monotonic() - last_checkpoint >= self.checkpoint_seconds
            if due or count % self.checkpoint_every == 0 or count == len(pending):
                self.checkpoint(log)
                last_checkpoint = time.monotonic()
        progress.close()
        return log

    def checkpoint(self, log: list[str]) -> None:
        if not self.is_writer:
            return
        write_atomic(self.log_path, "".join(line + "\n" for line in log))
        self.editor.save(self.adapter_dir)
