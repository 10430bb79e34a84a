"""The shipped evaluation suites and how `--data` resolves to a file.

The data ship inside the package (a fresh clone or wheel has no `../shared`), so paths are
found through `importlib.resources`; provenance is in `eval_suites/data/SOURCES.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from eval_suites.errors import MissingSuiteDataError, UnknownDataError


@dataclass(frozen=True)
class Suite:
    """One suite: its scored edit file, its train file, and whether PPL is among its scores."""

    name: str
    edit_file: str  # relative to eval_suites/data
    train_file: str
    perplexity: bool  # hallucination is scored by PPL of the corrected text (DESIGN §4)


SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite("zsre", "zsre/zsre_mend_edit.json", "zsre/zsre_mend_train-500.json", perplexity=False),
        Suite("hallucination", "hallucination/hallucination-edit.json", "hallucination/hallucination-train.json", perplexity=True),
        Suite("temporal", "temporal/temporal-edit.json", "temporal/temporal-train.json", perplexity=False),
    )
}


def get_suite(name: str) -> Suite:
    """The suite called `name`; unknown names raise with the list of known ones."""
    try:
        return SUITES[name]
    except KeyError:
        raise UnknownDataError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}") from None


def _shipped(relative: str) -> Path:
    # Installed packages (regular or editable) live on disk, so the resource is a real path.
    path = Path(str(files("eval_suites").joinpath("data", relative)))
    if not path.is_file():
        raise MissingSuiteDataError(
            f"{path} is missing: eval_suites was installed without its data files; reinstall with `pip install .`"
        )
    return path


def suite_path(name: str) -> Path:
    """The scored edit file of suite `name`."""
    return _shipped(get_suite(name).edit_file)


def suite_train_path(name: str) -> Path:
    """The suite's train file: background statistics and tuning only, never the scored set."""
    return _shipped(get_suite(name).train_file)


def resolve_data(name_or_path: str | Path) -> Path:
    """`--data` as a file: a suite name gives its shipped edit file, a path must be an existing file."""
    if str(name_or_path) in SUITES:
        return suite_path(str(name_or_path))
    path = Path(name_or_path)
    if path.is_file():
        return path
    raise UnknownDataError(
        f"--data {str(name_or_path)!r} is neither a suite ({', '.join(SUITES)}) nor an existing file"
    )
