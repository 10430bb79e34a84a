"""Exceptions of the editing layer; each message says what the user should change."""


class EditorError(Exception):
    """Base class of every error the editing layer raises on purpose."""


class InvalidSettingsError(EditorError, ValueError):
    """An editor setting is unknown or out of range (e.g. a misspelt hyperparameter)."""


class BadRecordError(EditorError, ValueError):
    """A record of an edit file cannot become an edit; raised only in strict mode."""


class EditDataError(EditorError, ValueError):
    """An edit file cannot be read (encoding, syntax) or holds no record that can become an edit."""


class TokenizationError(EditorError, ValueError):
    """A prompt or target cannot be turned into tokens that can be trained or scored."""


class RunStateError(EditorError, RuntimeError):
    """The output folder holds a run that this command cannot continue."""


class LedgerError(EditorError, ValueError):
    """An adapter's ledger is missing, unreadable or does not match its stored edits."""


class UnknownEditError(EditorError, LookupError):
    """No stored edit has the id the user asked for."""


class NotAnAdapterError(EditorError, FileNotFoundError):
    """A path given as an adapter holds no saved adapter (adapter_config.json)."""
