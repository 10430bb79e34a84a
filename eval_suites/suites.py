"""The shipped evaluation suites and how `--data` resolves to records.

The data ship inside the package, so that an installed wheel has them too, and paths are
found through `importlib.resources`; provenance is in `eval_suites/data/SOURCES.md`. Besides a
suite or a JSON / JSONL file, `--data` takes a `datasets` dataset with the same field names: a
folder written by `save_to_disk`, or a Hub dataset id (downloaded, or read from the cache alone
when `HF_HUB_OFFLINE=1`), `NAME:SPLIT` where it has several splits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Sequence

import datasets

from editors.edit_data import load_edit_data, read_records
from editors.edit_run import file_sha256
from editors.request import EditRequest
from eval_suites.errors import MissingSuiteDataError, UnknownDataError
from eval_suites.neighbours import OTHER_RECORD, SWAP_SUBJECT, with_neighbours


@dataclass(frozen=True)
class Suite:
    """One suite: its scored edit file, its train file, whether PPL is among its scores, and how
    its neighbour probes are made (eval_suites.neighbours)."""

    name: str
    edit_file: str  # relative to eval_suites/data
    train_file: str
    perplexity: bool  # hallucination is scored by PPL of the corrected text, as in WISE
    neighbours: str = SWAP_SUBJECT


SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite("zsre", "zsre/zsre_mend_edit.json", "zsre/zsre_mend_train-500.json", perplexity=False),
        Suite(
            "hallucination", "hallucination/hallucination-edit.json", "hallucination/hallucination-train.json",
            perplexity=True, neighbours=OTHER_RECORD,  # a passage cannot take another subject's name
        ),
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


def resolve_data(name_or_path: str | Path) -> Path | str:
    """`--data` as a file (a suite's shipped edit file, or the user's), else the name of a `datasets` dataset."""
    if str(name_or_path) in SUITES:
        return suite_path(str(name_or_path))
    path = Path(name_or_path)
    return path if path.is_file() else str(name_or_path)


def _split_of(loaded: datasets.Dataset | datasets.DatasetDict, name: str, split: str) -> datasets.Dataset:
    if isinstance(loaded, datasets.Dataset):
        return loaded
    if split or len(loaded) == 1:
        try:
            return loaded[split or next(iter(loaded))]
        except KeyError:
            pass
    raise UnknownDataError(f"--data {name!r}: choose a split with NAME:SPLIT, one of {', '.join(loaded)}")


def dataset_records(name: str) -> list[dict[str, Any]]:
    """Rows of a `datasets` folder (`save_to_disk`) or Hub dataset (`load_dataset`), `NAME[:SPLIT]`."""
    base, _, split = name.rpartition(":") if ":" in name and not Path(name).exists() else (name, "", "")
    try:
        loaded = datasets.load_from_disk(base) if Path(base).is_dir() else datasets.load_dataset(base)
    except OSError as error:
        raise UnknownDataError(
            f"--data {name!r} is neither a suite ({', '.join(SUITES)}), an existing file, a `datasets` folder, nor a "
            f"dataset on the Hub (with HF_HUB_OFFLINE=1: in the local cache): {error}"
        ) from error
    return _split_of(loaded, name, split).to_list()


def data_records(name_or_path: str | Path) -> list[Any]:
    """The raw records `--data` names, before validation."""
    resolved = resolve_data(name_or_path)
    return read_records(resolved) if isinstance(resolved, Path) else dataset_records(resolved)


def data_sha256(name_or_path: str | Path) -> str:
    """What a resumed run checks its data against: the file's bytes, or a dataset's rows."""
    resolved = resolve_data(name_or_path)
    if isinstance(resolved, Path):
        return file_sha256(resolved)
    rows = json.dumps(dataset_records(resolved), sort_keys=True, default=str)
    return hashlib.sha256(rows.encode()).hexdigest()


def with_neighbour_probes(data: str, requests: Sequence[EditRequest]) -> list[EditRequest]:
    """`requests` with neighbour probes: other subjects from a suite's train file (never edited in
    its runs), or, for a user's file, from the file's own records half the file away."""
    if data in SUITES:
        suite = get_suite(data)
        return with_neighbours(requests, load_edit_data(suite_train_path(data)).requests, suite.neighbours)
    half = len(requests) // 2
    return with_neighbours(requests, [*requests[half:], *requests[:half]], SWAP_SUBJECT)
