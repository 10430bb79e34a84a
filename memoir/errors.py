"""Exceptions of the adapter; each message says what the user should change."""


class MemoirError(Exception):
    """Base class of every error memoir raises on purpose."""


class InvalidConfigError(MemoirError, ValueError):
    """A config value is out of range (k, tau, layer index, pooling)."""


class UnsupportedArchitectureError(MemoirError, TypeError):
    """The model lacks the gated MLP (gate_proj, up_proj, down_proj) that MEMOIR wraps."""


class AdapterShapeError(MemoirError, ValueError):
    """A saved adapter does not fit the base model it is loaded onto."""


class ModelNotAvailableError(MemoirError, FileNotFoundError):
    """A model name or path cannot be resolved to local files (nothing is downloaded)."""


class RoutingError(MemoirError, RuntimeError):
    """A forward pass cannot be routed (e.g. a decode step without a prefill)."""


class AdapterFileError(MemoirError, ValueError):
    """An adapter folder cannot be read safely: no safetensors weights, a truncated file, a bad config."""


class BaseModelMismatchError(MemoirError, ValueError):
    """A saved adapter's base-model fingerprint differs from the model it is loaded onto."""
