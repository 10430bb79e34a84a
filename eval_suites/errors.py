"""Exceptions of the evaluation harness; each message says what the user should change."""


class EvalError(Exception):
    """Base class of every error the evaluation harness raises on purpose."""


class UnknownDataError(EvalError, FileNotFoundError):
    """`--data` names neither a shipped suite nor an existing file."""


class MissingSuiteDataError(EvalError, FileNotFoundError):
    """A suite's shipped file is absent: the package was installed without its data."""


class ProtocolError(EvalError, ValueError):
    """The protocol was asked for something the data cannot give (e.g. more edits than records)."""


class RunDirError(EvalError, FileNotFoundError):
    """A run directory lacks the `metrics.json` that reports and tables are built from."""
