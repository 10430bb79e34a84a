"""Assemble RESULTS.md from the run folders of `make results`, with the paper's numbers beside them.

    python -m eval_suites.results runs/results RESULTS.md
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from functools import partial
from pathlib import Path
from typing import Iterable, Optional

import torch

from eval_suites.edit_age import age_table
from eval_suites.repeats import REPEAT_COLUMNS, run_repeat_rows
from eval_suites.report import markdown_table, plot_runs
from eval_suites.run_dir import load_metrics
from eval_suites.table import format_table
from memoir.saving import write_atomic

SUITE_ORDER = ("zsre", "hallucination", "temporal")
MIXED = "mixed"  # the folder of the mixed stream's run, one sub-folder per suite
ROUTING = "routing"  # benchmarks/routing_diagnostic.py --out ROUTING/<setting>.json
# Each routing setting's ZsRE edit run, whose scores sit beside its routing figures.
ROUTING_RUNS = {"shipped": "zsre", "paper": "zsre-paper"}
ROUTING_COLUMNS = {
    "setting": "setting", "stored": "stored edits",
    "paraphrase_selects_own_and_fires": "paraphrase -> own edit",
    "paraphrase_selects_own_and_fires_subject_edited_once": "-> own edit, subject edited once",
    "own_edit_by_chance_within_subject": "own edit by chance among its subject's",
    "paraphrase_selects_an_edit_of_its_subject_and_fires": "-> an edit of its subject",
    "fires_on_neighbours": "fires on neighbours", "fires_on_nq": "on NQ", "fires_on_passages": "on passages",
}
AGE_BLOCKS = 10

# MEMOIR paper (NeurIPS 2025), LLaMA-3-8B-Instruct, for reference only: other model, other scale.
PAPER_REFERENCE = {
    "zsre": (
        "| T | Rel | Gen | Loc |\n|---|---|---|---|\n"
        "| 1 | 1.00 | 1.00 | 1.00 |\n| 10 | 0.97 | 0.89 | 1.00 |\n| 100 | 0.96 | 0.89 | 1.00 |\n| 1000 | 0.94 | 0.85 | 1.00 |\n"
    ),
}


NO_PAPER_REFERENCE = (
    "\nThe paper's LLaMA-3-8B numbers for this suite are not reproduced here: only its ZsRE table was\n"
    "available when this was written, and no copy of the paper could be checked offline (arXiv 2506.07899).\n"
)


def machine() -> str:
    return f"{os.cpu_count()} {platform.machine()} CPU cores, no GPU, torch {torch.__version__}, Python {sys.version.split()[0]}"


def suite_section(suite: str, folder: Path) -> str:
    runs = sorted((p for p in folder.iterdir() if (p / "metrics.json").is_file()), key=lambda p: int(p.name[1:]))
    if not runs:
        return f"## {suite}\n\nNo completed runs in `{folder}`.\n"
    figure = plot_runs(runs, folder / f"{suite}.png")
    parts = [f"## {suite}\n", measured_at(load_metrics(run) for run in runs) + markdown_table(runs),
             f"\nFigure: `{figure}` (regenerated with the runs, not committed).\n"]
    longest = runs[-1]
    parts.append(f"\nScores by edit age after all T = {load_metrics(longest)['num_edits']} edits (oldest edits first; "
                 f"`memoir report {longest} --by-age {AGE_BLOCKS}`):\n\n" + age_table(longest, AGE_BLOCKS))
    repeats = run_repeat_rows(longest)
    if len(repeats) > 1:  # some subject is edited more than once
        parts.append(f"\nThe same scores by whether an edit's subject is edited again in the stream (`memoir report {longest} --by-repeat`; "
                     "a paraphrase of a question edited twice with two answers is a paraphrase of both, so at most one answer "
                     "can come out):\n\n" + format_table(repeats, leading=REPEAT_COLUMNS))
    if suite in PAPER_REFERENCE:
        parts.append("\nMEMOIR paper, LLaMA-3-8B-Instruct (reference, not comparable in scale):\n\n" + PAPER_REFERENCE[suite])
    else:
        parts.append(NO_PAPER_REFERENCE)
    return "\n".join(parts)


def single_suite_metrics(folder: Path, num_edits: int) -> Optional[dict]:
    """The metrics of the single-suite run of `folder` scored at T = `num_edits`, if there is one."""
    for run in (folder / f"t{num_edits}", folder):
        metrics = load_metrics(run) if (run / "metrics.json").is_file() else None
        if metrics is not None and metrics["num_edits"] == num_edits:
            return metrics
    return None


def mixed_section(root: Path) -> str:
    """Each suite of the mixed stream beside its own single-suite run of the same records."""
    rows, mixed_runs, missing = [], [], []
    for run in sorted(p for p in (root / MIXED).iterdir() if (p / "metrics.json").is_file()):
        mixed = load_metrics(run)
        alone = single_suite_metrics(root / run.name, mixed["num_edits"])
        mixed_runs.append(mixed)
        missing += [] if alone else [f"{run.name} T = {mixed['num_edits']}"]
        rows += [{**metrics, "suite": run.name, "stream": label}
                 for label, metrics in (("own suite only", alone), ("mixed stream", mixed)) if metrics is not None]
    # A single-suite run not rerun with this one is not under `root`: its row is its own section's, at that section's commit.
    elsewhere = (f"\nNot under `{root}` with this run, so compare with their own sections above: {', '.join(missing)}.\n"
                 if missing else "")
    return (
        "## mixed stream\n\nAll suites' edits in one seeded order (`memoir eval --data zsre,hallucination,temporal`), "
        "each suite scored after the last edit, beside its own single-suite run (its section above):\n\n"
        + measured_at(mixed_runs) + format_table(rows, leading={"suite": "suite", "stream": "stream", "num_edits": "T"}) + elsewhere
    )


def routing_section(root: Path) -> str:
    """Where each routing setting sends paraphrases and neighbours, beside its ZsRE scores at the same T."""
    rows, documents = [], []
    for path in sorted((root / ROUTING).glob("*.json")):
        documents.append(json.loads(path.read_text()))
        for figures in documents[-1]["rows"]:
            run = root / ROUTING_RUNS.get(path.stem, path.stem)
            scores = single_suite_metrics(run, figures["stored"]) or {}
            rows.append({"setting": path.stem, **figures, **{k: scores[k] for k in ("gen", "loc", "loc_neighbour") if k in scores},
                         "s_per_edit": scores["edit_seconds"] / scores["num_edits"] if scores else None})
    return (
        "## routing\n\nWhich stored edit fires for which ZsRE prompt (`python benchmarks/routing_diagnostic.py "
        "--out runs/results/routing/SETTING.json`; 'shipped' is configs/smollm2-135m.yaml, 'no-margin' the same "
        "with `--set min_margin=none`, 'paper' configs/smollm2-135m-paper.yaml), beside the scores of that "
        "setting's ZsRE run after the same number of edits:\n\n"
        + measured_at(documents) + format_table(rows, leading=ROUTING_COLUMNS, trailing={
            "mean_overlap_between_edits": "mean mask overlap", "bytes_per_edit": "bytes per edit", "s_per_edit": "s/edit"})
    )


def measured_at(runs: Iterable[dict]) -> str:
    """The line naming the commit(s) a section's runs were measured at, so that a section kept from
    an earlier `make results` says so; empty for runs that did not record one."""
    commits = sorted({metrics["commit"] for metrics in runs if metrics.get("commit")})
    return f"Measured at commit {', '.join(commits)}.\n\n" if commits else ""


def kept_sections(out: Path) -> dict[str, str]:
    """The sections of an existing RESULTS.md, by heading: those whose runs are not at hand stay as they are."""
    if not out.is_file():
        return {}
    sections = re.split(r"^(?=## )", out.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    return {section.splitlines()[0][3:]: section.rstrip("\n") + "\n" for section in sections}


def write_results(root: Path, out: Path) -> Path:
    """RESULTS.md from the run folders under `root`; a section whose folder is missing (a part of
    `make results` not rerun) is kept from `out` as it was."""
    parts = [(suite, root / suite, partial(suite_section, suite, root / suite)) for suite in SUITE_ORDER]
    parts += [("mixed stream", root / MIXED, partial(mixed_section, root)), ("routing", root / ROUTING, partial(routing_section, root))]
    kept = kept_sections(out)
    sections = [build() if folder.is_dir() else kept[name] for name, folder, build in parts if folder.is_dir() or name in kept]
    header = (
        "# Results\n\n"
        "Regenerate with `make results`: it edits and scores every suite on SmolLM2-135M-Instruct, in about\n"
        "5 hours on 2 CPU cores (ZsRE 30 minutes, temporal 20, hallucination over an hour, then the routing\n"
        "runs and the mixed stream; the Makefile sets the counts of edits T per suite). Each part has its own\n"
        "target (`make results-zsre`, `results-temporal`, `results-hallucination`, `results-routing`,\n"
        "`results-mixed`) that rewrites its own sections and keeps the others; each section names its commit.\n"
        "Protocol: EasyEdit's sequential one, as in WISE and MEMOIR: all T edits\n"
        "first, then every one of the T records is scored on the final model; one stream per suite is\n"
        "scored at each T. 'fires on unrelated' is the fraction of locality prompts on which the memory\n"
        "switched on.\n\n"
        f"Measured on: {machine()}.\n"
    )
    write_atomic(out, "\n".join([header, *sections]))
    return out


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m eval_suites.results RUNS_ROOT RESULTS.md")
    print(write_results(Path(sys.argv[1]), Path(sys.argv[2])))


if __name__ == "__main__":
    main()
