"""Every user error: exit 2, one line naming the culprit, --out absent or unchanged, and the corrected command runs.

The commands run in-process (`eval_suites.cli.main`) on a 2-layer model with 2-step edits, so the
whole table costs seconds; the subprocess tests in test_edit_cli.py cover the real entry point.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

from conftest import save_tiny_model
from editors.base import EditResult
from eval_suites.cli import EditingProgress, main

CONFIG = """
memoir: {target_layer: 1, top_k: 24, tau: 0.7}
editor: {lr: 50.0, max_steps: 2, loss_threshold: 0.0, prefix_mode: none, num_background_texts: 4}
"""
GOOD = [{"src": "the capital of france", "alt": "paris", "rephrase": "capital of france", "loc": "the river", "loc_ans": "w9"},
        {"src": "who was born in a city", "alt": "w40", "loc": "the year", "loc_ans": "w8"}]
LONG = {"src": "the capital of france", "alt": " ".join(["paris"] * 200)}  # 200 tokens, the model has 128 positions


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("errors")
    save_tiny_model(root / "model")
    files = {
        "config.yaml": CONFIG,
        "good.json": json.dumps(GOOD),
        "not-json.txt": "src: the capital of france\nalt: paris\n",
        "empty.json": "\n  \n",
        "all-bad.jsonl": json.dumps({"src": "no answer"}) + "\n" + json.dumps([1, 2]) + "\n",
        "long.json": json.dumps(GOOD + [LONG]),
        "broken-line.jsonl": json.dumps(GOOD[0]) + "\n{\"src\": \n",
        "bad-top-k.yaml": CONFIG.replace("top_k: 24", "top_k: -5"),
        "bad-layer.yaml": CONFIG.replace("target_layer: 1", "target_layer: 5"),
        "bad-setting.yaml": CONFIG.replace("lr: 50.0", "learning_rate: 50.0"),
        "bad-yaml.yaml": "memoir: {target_layer: 1\n",
        "a-file": "not a folder",
        "second.json": json.dumps([{"src": "what river is in the city", "alt": "w60", "loc": "the year", "loc_ans": "w8"}]),
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "latin1.json").write_bytes(json.dumps(GOOD).replace("paris", "pär\u00efs").encode("latin-1"))
    assert main(edit_args(root, root / "done")) == 0  # a finished run, copied by the --resume cases
    assert main(eval_args(root, root / "done-eval")) == 0  # an eval --out folder over two T
    return root


def edit_args(ws: Path, out: Path, *extra: str, data: str = "good.json", config: str = "config.yaml") -> list[str]:
    return ["edit", "--model", str(ws / "model"), "--data", str(ws / data), "--config", str(ws / config), "--out", str(out), *extra]


def eval_args(ws: Path, out: Path, *extra: str, data: str = "good.json") -> list[str]:
    return ["eval", "--model", str(ws / "model"), "--data", str(ws / data), "--config", str(ws / "config.yaml"),
            "--num-edits", "1,2", "--no-exact-match", "--out", str(out), *extra]


def mixed_args(ws: Path, out: Path, counts: str) -> list[str]:
    return ["eval", "--model", str(ws / "model"), "--data", f"{ws / 'good.json'},{ws / 'second.json'}", "--config",
            str(ws / "config.yaml"), "--num-edits", counts, "--no-exact-match", "--out", str(out)]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _set_top_k(path: Path) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | {"top_k": -5}))


def _pickle_only(folder: Path) -> None:
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")


@dataclass
class Case:
    """`args(ws, out)` is refused naming `culprit(ws, out)`; `corrected(ws, out)` then runs (after `fix`, if any)."""

    name: str
    args: Callable[[Path, Path], list[str]]
    culprit: Callable[[Path, Path], str]
    corrected: Callable[[Path, Path], list[str]]
    damage: Optional[Callable[[Path], None]] = None  # applied to a copy of a finished run in `out`
    damaged: str = ""  # the file of `out` that `damage` changes, restored before the corrected command
    expected_files: list[str] = field(default_factory=lambda: ["adapter"])


RESUME = lambda ws, out: edit_args(ws, out, "--resume")  # noqa: E731
CASES = [
    Case("data that is not JSON", lambda ws, out: edit_args(ws, out, data="not-json.txt"),
         lambda ws, out: f"{ws / 'not-json.txt'} is neither JSON nor JSON Lines (line 1 column 1", lambda ws, out: edit_args(ws, out)),
    Case("data not in UTF-8", lambda ws, out: edit_args(ws, out, data="latin1.json"),
         lambda ws, out: f"{ws / 'latin1.json'} is not UTF-8 text", lambda ws, out: edit_args(ws, out)),
    Case("an empty data file", lambda ws, out: edit_args(ws, out, data="empty.json"),
         lambda ws, out: f"{ws / 'empty.json'} is empty", lambda ws, out: edit_args(ws, out)),
    Case("every record bad", lambda ws, out: edit_args(ws, out, data="all-bad.jsonl"),
         lambda ws, out: f"{ws / 'all-bad.jsonl'}: none of its 2 records can become an edit (record 0: missing or empty 'alt'",
         lambda ws, out: edit_args(ws, out)),
    Case("a broken JSON Lines line", lambda ws, out: edit_args(ws, out, data="broken-line.jsonl"),
         lambda ws, out: f"{ws / 'broken-line.jsonl'} is neither JSON nor JSON Lines (line 2:", lambda ws, out: edit_args(ws, out)),
    Case("a target longer than the model takes, --strict", lambda ws, out: edit_args(ws, out, "--strict", data="long.json"),
         lambda ws, out: f"{ws / 'long.json'}: record 2: prompt and its answer take 204 tokens, more than the 128",
         lambda ws, out: edit_args(ws, out, data="long.json")),
    Case("a missing data file", lambda ws, out: edit_args(ws, out, data="nowhere.json"),
         lambda ws, out: f"--data {str(ws / 'nowhere.json')!r} is neither a suite", lambda ws, out: edit_args(ws, out)),
    Case("--num-edits 0", lambda ws, out: edit_args(ws, out, "--num-edits", "0"),
         lambda ws, out: "--num-edits needs numbers >= 1, got 0", lambda ws, out: edit_args(ws, out, "--num-edits", "1")),
    Case("--num-edits -3", lambda ws, out: edit_args(ws, out, "--num-edits", "-3"),
         lambda ws, out: "--num-edits needs numbers >= 1, got -3", lambda ws, out: edit_args(ws, out, "--num-edits", "2")),
    Case("--checkpoint-every 0", lambda ws, out: edit_args(ws, out, "--checkpoint-every", "0"),
         lambda ws, out: "--checkpoint-every needs numbers >= 1, got 0", lambda ws, out: edit_args(ws, out, "--checkpoint-every", "1")),
    Case("--checkpoint-seconds 0", lambda ws, out: edit_args(ws, out, "--checkpoint-seconds", "0"),
         lambda ws, out: "--checkpoint-seconds needs a number > 0, got 0", lambda ws, out: edit_args(ws, out, "--checkpoint-seconds", "5")),
    Case("a config with top_k -5", lambda ws, out: edit_args(ws, out, config="bad-top-k.yaml"),
         lambda ws, out: f"--config {ws / 'bad-top-k.yaml'}: top_k must be a positive int", lambda ws, out: edit_args(ws, out)),
    Case("a config layer the model lacks", lambda ws, out: edit_args(ws, out, config="bad-layer.yaml"),
         lambda ws, out: f"--config {ws / 'bad-layer.yaml'}: target_layer=5 is out of range", lambda ws, out: edit_args(ws, out)),
    Case("a misspelt editor setting", lambda ws, out: edit_args(ws, out, config="bad-setting.yaml"),
         lambda ws, out: f"--config {ws / 'bad-setting.yaml'}: Unknown editor hyperparameters ['learning_rate']",
         lambda ws, out: edit_args(ws, out)),
    Case("a config that is not YAML", lambda ws, out: edit_args(ws, out, config="bad-yaml.yaml"),
         lambda ws, out: f"{ws / 'bad-yaml.yaml'} is not readable YAML", lambda ws, out: edit_args(ws, out)),
    Case("--set of an unknown setting", lambda ws, out: edit_args(ws, out, "--set", "learning_rate=5"),
         lambda ws, out: "Unknown setting 'learning_rate': adapter settings are", lambda ws, out: edit_args(ws, out, "--set", "lr=5")),
    Case("--set without =", lambda ws, out: edit_args(ws, out, "--set", "lr"),
         lambda ws, out: "--set takes key=value pairs (e.g. lr=5.0), got 'lr'", lambda ws, out: edit_args(ws, out, "--set", "lr=5")),
    Case("--set of a value out of range", lambda ws, out: eval_args(ws, out, "--set", "max_steps=0"),
         lambda ws, out: "--set: editor setting max_steps must be a whole number >= 1, got 0",
         lambda ws, out: eval_args(ws, out, "--set", "max_steps=1"), expected_files=["t1", "t2"]),
    Case("--set of a layer the model lacks", lambda ws, out: eval_args(ws, out, "--set", "target_layer=5"),
         lambda ws, out: "--set: target_layer=5 is out of range", lambda ws, out: eval_args(ws, out, "--set", "target_layer=0"),
         expected_files=["t1", "t2"]),
    Case("--set changing a continued adapter's tau", lambda ws, out: edit_args(ws, out, "--adapter", str(ws / "done"), "--set", "tau=0.5"),
         lambda ws, out: f"--set tau: the adapter in {ws / 'done' / 'adapter'} was made with tau=0.7",
         lambda ws, out: edit_args(ws, out, "--adapter", str(ws / "done"), "--set", "tau=0.7", "lr=5")),
    Case("a model folder that does not exist", lambda ws, out: ["edit", "--model", str(ws / "no-model"), *edit_args(ws, out)[3:]],
         lambda ws, out: f"{str(ws / 'no-model')!r} did not load as a local folder", lambda ws, out: edit_args(ws, out)),
    Case("--out is a file", lambda ws, out: edit_args(ws, ws / "a-file"),
         lambda ws, out: f"--out {ws / 'a-file'} is a file", lambda ws, out: edit_args(ws, out)),
    Case("a finished run without --resume", lambda ws, out: edit_args(ws, out), lambda ws, out: f"{out} already holds a run",
         RESUME, damage=lambda out: None),
    Case("--resume with top_k -5 in the adapter", RESUME, lambda ws, out: f"{out / 'adapter' / 'adapter_config.json'} is not a valid",
         RESUME, damage=lambda out: _set_top_k(out / "adapter" / "adapter_config.json"), damaged="adapter/adapter_config.json"),
    Case("--resume with truncated weights", RESUME, lambda ws, out: f"{out / 'adapter' / 'adapter_model.safetensors'} is damaged",
         RESUME, damage=lambda out: _truncate(out / "adapter" / "adapter_model.safetensors"),
         damaged="adapter/adapter_model.safetensors"),
    Case("--resume onto a pickle-only adapter", RESUME, lambda ws, out: f"{out / 'adapter'} holds only adapter_model.bin",
         RESUME, damage=lambda out: _pickle_only(out / "adapter"), damaged="adapter/adapter_model.safetensors"),
    Case("--resume with a damaged run.json", RESUME, lambda ws, out: f"{out / 'run.json'} is damaged",
         RESUME, damage=lambda out: (out / "run.json").write_text("{"), damaged="run.json"),
    Case("eval --num-edits 0", lambda ws, out: eval_args(ws, out, "--num-edits", "0"),
         lambda ws, out: "--num-edits needs numbers >= 1, got 0", eval_args, expected_files=["t1", "t2"]),
    Case("eval --batch-size 0", lambda ws, out: eval_args(ws, out, "--batch-size", "0"),
         lambda ws, out: "--batch-size needs numbers >= 1, got 0", eval_args, expected_files=["t1", "t2"]),
    Case("eval on every record bad", lambda ws, out: eval_args(ws, out, data="all-bad.jsonl"),
         lambda ws, out: f"{ws / 'all-bad.jsonl'}: none of its 2 records", eval_args, expected_files=["t1", "t2"]),
    Case("a mixed eval with one count for two sources", lambda ws, out: mixed_args(ws, out, "2"),
         lambda ws, out: "--num-edits needs one count each, in the same order (e.g. 100,100); got 1",
         lambda ws, out: mixed_args(ws, out, "2,1"), expected_files=["good", "second", "adapter"]),
    Case("report on a folder without runs", lambda ws, out: ["report", str(ws / "model")],
         lambda ws, out: f"{ws / 'model'} is not a run directory", lambda ws, out: ["report", str(ws / "done-eval"), "--out", str(out / "r.png")],
         expected_files=["r.png"]),
]


def _snapshot(folder: Path) -> Optional[dict[str, bytes]]:
    if not folder.exists():
        return None
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _run(args: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_user_error_exits_2_naming_the_culprit_and_leaves_no_trace(case, ws, tmp_path, capsys):
    out = tmp_path / "out"
    if case.damage is not None:
        shutil.copytree(ws / "done", out)
        case.damage(out)
    before = _snapshot(out)
    code, err = _run(case.args(ws, out), capsys)
    assert code == 2, err
    assert case.culprit(ws, out) in err, err
    assert "Traceback" not in err
    assert _snapshot(out) == before
    if case.damaged:
        (out / case.damaged).unlink(missing_ok=True)
        (out / "adapter" / "adapter_model.bin").unlink(missing_ok=True)
        shutil.copy(ws / "done" / case.damaged, out / case.damaged)
    code, err = _run(case.corrected(ws, out), capsys)
    assert code == 0, err
    assert set(case.expected_files) <= {path.name for path in out.iterdir()}


def test_set_changes_the_adapter_and_editor_settings_of_the_config_and_the_run_records_them(ws, tmp_path):
    assert main(eval_args(ws, tmp_path, "--set", "tau=0.5", "max_steps=1", "prefix_seeds=[the]", "--num-edits", "2")) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["hparams"]["max_steps"] == 1 and metrics["hparams"]["prefix_seeds"] == ["the"]
    assert metrics["hparams"]["lr"] == 50.0  # the rest from --config
    assert all(edit["steps"] == 1 for edit in map(json.loads, (tmp_path / "edits.jsonl").read_text().splitlines()))
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["tau"] == 0.5


def test_a_mixed_eval_scores_each_source_in_its_folder_after_the_whole_stream(ws, tmp_path):
    assert main(mixed_args(ws, tmp_path, "2,1")) == 0
    good, second = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("good", "second"))
    assert (good["num_edits"], second["num_edits"]) == (2, 1)
    assert good["mixed_with"] == ["second"] and second["mixed_with"] == ["good"]
    assert len(json.loads((tmp_path / "adapter" / "memoir_edits.json").read_text())["edits"]) == 3


def test_a_pretty_printed_object_is_one_record(ws, tmp_path, capsys):
    (tmp_path / "one.json").write_text(json.dumps(GOOD[0], indent=2))
    assert main(edit_args(ws, tmp_path / "out", data=str(tmp_path / "one.json"))) == 0
    assert capsys.readouterr().out.startswith("1 edits in")


def test_a_too_long_record_is_skipped_and_reported(ws, tmp_path, capsys):
    assert main(edit_args(ws, tmp_path / "out", data="long.json")) == 0
    assert "skipped record 2: prompt and its answer take 204 tokens" in capsys.readouterr().err
    assert len((tmp_path / "out" / "edits.jsonl").read_text().splitlines()) == 2


def test_verbose_is_accepted_after_the_subcommand(ws, tmp_path, capsys):
    assert main(edit_args(ws, tmp_path / "out", "-v")) == 0
    assert "INFO editors.memoir_editor: edit 0:" in capsys.readouterr().err


def test_report_on_an_eval_out_folder_uses_its_t_folders(ws, tmp_path, capsys):
    assert main(["report", str(ws / "done-eval"), "--out", str(tmp_path / "r.png"), "--by-age", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| memoir") == 2 and (tmp_path / "r.png").is_file()
    assert f"{ws / 'done-eval' / 't2'}, scores by edit age:" in printed
    log = (ws / "done-eval" / "run.log").read_text()
    assert "memoir eval: 2 records" in log and "INFO editors.memoir_editor: edit 0:" in log


def test_report_without_out_puts_its_figure_in_the_first_folder_named(ws, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(ws / "done-eval")]) == 0
    assert (ws / "done-eval" / "report.png").is_file() and not (tmp_path / "report.png").exists()
    assert capsys.readouterr().out.endswith(f"figure: {ws / 'done-eval' / 'report.png'}\n")


def test_the_eval_progress_bar_counts_editing_time_only(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("tqdm.std.time", lambda: clock[0])  # a fake clock: no real time is measured

    def score(*args):
        clock[0] += 100.0
        return []

    progress = EditingProgress(total=2, enabled=True)
    progress.start()  # after the model has loaded
    scored = progress.scored(score)
    scored()  # the unedited scores
    for _ in range(2):
        clock[0] += 1.0
        progress.edited(EditResult(id="0", steps=3, loss=0.1, seconds=1.0))
    scored()
    assert progress.bar.format_dict["elapsed"] == 2.0 and progress.bar.n == 2
    progress.close()
