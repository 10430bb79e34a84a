"""What a local adapter folder must hold before anything of it is read: whole safetensors weights.

peft falls back to `adapter_model.bin`, a pickle that can run code when loaded; memoir refuses
it. A truncated safetensors file is caught here from its header, before any tensor is read.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError, safe_open

from memoir.errors import AdapterFileError

WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_FILE = "adapter_model.bin"


def check_adapter_folder(folder: Path) -> None:
    """Raise `AdapterFileError` naming the file unless `folder` holds a complete safetensors weights file."""
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        if (folder / PICKLE_FILE).is_file():
            raise AdapterFileError(
                f"{folder} holds only {PICKLE_FILE}, a pickle that can run code when read: memoir reads only "
                f"{WEIGHTS_FILE}; convert it from a copy you trust, or save the adapter again with memoir.save_adapter."
            )
        raise AdapterFileError(f"{folder} has no {WEIGHTS_FILE}: it is not a saved adapter (save one with memoir.save_adapter).")
    try:
        with safe_open(str(weights), framework="pt"):
            pass
    except (SafetensorError, OSError) as error:
        raise AdapterFileError(f"{weights} is damaged ({error}): restore it from a copy or run the edits again.") from None
