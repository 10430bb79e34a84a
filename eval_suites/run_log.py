"""Logging of a command: the console (quiet, or one line per edit with -v) and `DIR/run.log`.

Log lines go through tqdm while a progress bar is shown, so they do not break it; the run log
keeps every INFO line of memoir's own packages, whatever the console's verbosity.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tqdm.contrib.logging import logging_redirect_tqdm

RUN_LOG = "run.log"
PACKAGES = ("memoir", "editors", "eval_suites")
CONSOLE = "memoir-console"


def configure_console(verbose: bool) -> None:
    """Console lines at WARNING (INFO with -v); the root logger passes INFO on to the run log."""
    console = logging.StreamHandler()
    console.set_name(CONSOLE)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for previous in [handler for handler in root.handlers if handler.get_name() == CONSOLE]:
        root.removeHandler(previous)  # main() run twice in one process: one console handler
    root.addHandler(console)
    root.setLevel(logging.INFO)


@contextmanager
def console_beside_progress() -> Iterator[None]:
    """Console log lines printed above the progress bar instead of through it."""
    with logging_redirect_tqdm():
        yield


@contextmanager
def run_log(folder: Path, enabled: bool = True) -> Iterator[None]:
    """Append memoir's INFO lines to `folder/run.log` for the duration (only on the writing process)."""
    if not enabled:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / RUN_LOG, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda record: record.name.split(".")[0] in PACKAGES)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
