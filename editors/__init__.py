"""Writing edits into a model: the MEMOIR editor, its settings, its ledger, and the edit files it reads.

    import memoir
    from editors import MemoirEditor

    editor = MemoirEditor.from_pretrained("smollm2-135m")    # empty memory, settings from configs/smollm2-135m.yaml
    editor.edit("The capital of Yemen is", "Aden")
    editor.save("out/adapter")                              # adapter + ledger, atomically
"""

from editors.base import EditResult, Editor
from editors.edit_data import load_edit_data
from editors.errors import (
    BadRecordError,
    EditorError,
    InvalidSettingsError,
    LedgerError,
    NotAnAdapterError,
    RunStateError,
    TokenizationError,
    UnknownEditError,
)
from editors.ledger import Ledger, LedgerEntry, describe
from editors.memoir_editor import Forgotten, MemoirEditor
from editors.memoir_hparams import MemoirHparams
from editors.request import EditRequest

__all__ = [
    "BadRecordError",
    "EditRequest",
    "EditResult",
    "Editor",
    "EditorError",
    "Forgotten",
    "InvalidSettingsError",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "MemoirEditor",
    "MemoirHparams",
    "NotAnAdapterError",
    "RunStateError",
    "TokenizationError",
    "UnknownEditError",
    "describe",
    "load_edit_data",
]
