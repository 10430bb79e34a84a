"""The ledger: which edits an adapter holds, saved as `memoir_edits.json` inside the adapter folder.

Row i of `entries` describes row i of the memory's stored masks (`memory.index`), and row i of
`forgotten` row i of the forgotten edits' masks (`memory.forgotten`), so each pair is changed
together (an edit appends to the stored ones, a forget moves a row from stored to forgotten, a
re-edit of the same prompt drops the old row) and saved together, atomically, by
`MemoirEditor.save`. `written` counts every edit ever written into the adapter, forgotten or
replaced ones included: a resumed run knows from it how far it got. `next_check` is the stored
row that consolidation in turn checks next, kept here so that a resumed run checks what an
uninterrupted one would. `protected_with` names the editor settings that chose which inputs of each
edit the covariance C holds (None while it holds none): forget and rewrite take an edit's inputs out
of C again, which is exact only under those same settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from safetensors import safe_open

from editors.errors import LedgerError, NotAnAdapterError, UnknownEditError

LEDGER_FILE = "memoir_edits.json"
FORMAT = 1
MASKS_SUFFIX = ".index.masks"
FORGOTTEN_SUFFIX = ".forgotten.masks"


@dataclass
class LedgerEntry:
    """One stored edit: what was asked and how writing it went."""

    id: str
    prompt: str
    target: str
    time: str  # when it was written, ISO 8601 UTC
    steps: int
    loss: float  # final training loss
    seconds: float
    forgotten_at: Optional[str] = None  # when it was taken back, ISO 8601 UTC

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Ledger:
    """The stored edits in mask-row order, the forgotten ones likewise, the count of edits ever written,
    the stored row consolidation in turn checks next and the settings C was built with."""

    entries: list[LedgerEntry] = field(default_factory=list)
    written: int = 0
    forgotten: list[LedgerEntry] = field(default_factory=list)
    next_check: int = 0
    protected_with: Optional[dict[str, int]] = None

    def __len__(self) -> int:
        return len(self.entries)

    def rows(self) -> list[dict[str, Any]]:
        """The stored edits as plain dicts (what `memoir show --json` prints under `edits`)."""
        return [asdict(entry) for entry in self.entries]

    def forgotten_rows(self) -> list[dict[str, Any]]:
        return [asdict(entry) for entry in self.forgotten]

    def row_of_id(self, edit_id: str) -> int:
        for row, entry in enumerate(self.entries):
            if entry.id == edit_id:
                return row
        known = ", ".join(entry.id for entry in self.entries[:10]) or "none"
        raise UnknownEditError(f"No stored edit has id {edit_id!r} (ids: {known}{' ...' if len(self) > 10 else ''}); see `memoir show`.")

    def row_of_prompt(self, prompt: str) -> Optional[int]:
        return next((row for row, entry in enumerate(self.entries) if entry.prompt == prompt), None)

    def free_id(self, wanted: Optional[str]) -> str:
        """`wanted` if no stored edit uses it, else `wanted.2`, `wanted.3`, ...; None gives the write count."""
        base = str(self.written) if wanted is None else wanted
        taken = {entry.id for entry in self.entries}
        candidate, suffix = base, 2
        while candidate in taken:
            candidate, suffix = f"{base}.{suffix}", suffix + 1
        return candidate

    def append(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)
        self.written += 1

    def remove(self, row: int) -> LedgerEntry:
        """Drop a stored edit that a new edit of the same prompt replaces."""
        return self._pop(row)

    def forget(self, row: int) -> LedgerEntry:
        """Move a stored edit to the forgotten ones, stamped with the time."""
        entry = self._pop(row)
        entry.forgotten_at = LedgerEntry.now()
        self.forgotten.append(entry)
        return entry

    def _pop(self, row: int) -> LedgerEntry:
        """Take a stored row out; the rows after it move up one, and the next check with them."""
        if row < self.next_check:
            self.next_check -= 1
        return self.entries.pop(row)

    def check_matches(self, num_masks: int, num_forgotten: int, where: str) -> None:
        if (len(self), len(self.forgotten)) != (num_masks, num_forgotten):
            raise LedgerError(
                f"{where}: the ledger lists {len(self)} edits ({len(self.forgotten)} forgotten) but the memory stores "
                f"{num_masks} masks ({num_forgotten} forgotten); the adapter was saved without its ledger "
                "(save with MemoirEditor.save)."
            )

    def to_json(self) -> str:
        document = {"format": FORMAT, "written": self.written, "next_check": self.next_check,
                    "protected_with": self.protected_with, "edits": self.rows(), "forgotten": self.forgotten_rows()}
        return json.dumps(document, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "ledger") -> "Ledger":
        try:
            document = json.loads(text)
            entries = [LedgerEntry(**row) for row in document["edits"]]
            forgotten = [LedgerEntry(**row) for row in document["forgotten"]]
            # Ledgers saved before `next_check` was kept start the round at the oldest edit; before
            # `protected_with` was, the editor cannot tell how C was built and builds it again.
            protected_with = document.get("protected_with")
            if protected_with is not None:
                protected_with = {str(name): int(value) for name, value in protected_with.items()}
            return cls(entries, int(document["written"]), forgotten, int(document.get("next_check", 0)), protected_with)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise LedgerError(f"{where} is not a MEMOIR ledger ({error}); restore it from the adapter's source.") from None

    @classmethod
    def read(cls, folder: str | os.PathLike) -> Optional["Ledger"]:
        """The ledger of an adapter folder, or None if it has none (saved before ledgers, or by peft alone)."""
        path = Path(folder) / LEDGER_FILE
        return cls.from_json(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else None


def adapter_folder(path: str | os.PathLike) -> Path:
    """The adapter folder at `path`, or in `path/adapter` (a `memoir edit` run folder)."""
    for folder in (Path(path), Path(path) / "adapter"):
        if (folder / "adapter_config.json").is_file():
            return folder
    raise NotAnAdapterError(f"{path} holds no saved adapter (adapter_config.json); pass an adapter folder or a `memoir edit --out` folder.")


def stored_mask_counts(folder: str | os.PathLike) -> tuple[int, int]:
    """(stored, forgotten) edit masks of a saved adapter, read from its weights file's header alone."""
    with safe_open(Path(folder) / "adapter_model.safetensors", framework="pt") as weights:
        keys = list(weights.keys())

        def rows(suffix: str) -> int:
            found = [key for key in keys if key.endswith(suffix)]
            return weights.get_slice(found[0]).get_shape()[0] if found else 0

        return rows(MASKS_SUFFIX), rows(FORGOTTEN_SUFFIX)


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What a saved adapter holds, without loading a model: its config, edit count and ledger rows."""
    folder = adapter_folder(path)
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    stored, forgotten = stored_mask_counts(folder)
    ledger = Ledger.read(folder)
    if ledger is not None:
        ledger.check_matches(stored, forgotten, str(folder))
    return {
        "adapter": str(folder),
        "num_edits": stored,
        "written": None if ledger is None else ledger.written,
        "config": config,
        "edits": None if ledger is None else ledger.rows(),
        "forgotten": None if ledger is None else ledger.forgotten_rows(),
    }
