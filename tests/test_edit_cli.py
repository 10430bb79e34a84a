"""`memoir edit`, `show`, `forget`: outputs, SIGKILL + --resume, continuation, two accelerate processes; tiny model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import WORDS, save_tiny_model
from editors.ledger import LEDGER_FILE

NUM_EDITS = 24
SPLIT = 13  # first.json: records 0-12 (12 valid, record 5 is broken); second.json: the other 12
CONFIG = """
memoir: {target_layer: 1, top_k: 24, tau: 0.7}
editor: {lr: 50.0, max_steps: 25, loss_threshold: 0.0, prefix_seeds: [the, who], prefix_lengths: [3], num_background_texts: 8}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    save_tiny_model(root / "model", num_hidden_layers=4)
    (root / "config.yaml").write_text(CONFIG)
    records = [
        {"src": f"{WORDS[i % 20]} {WORDS[(3 * i) % 20]} w{i}", "alt": f"w{40 + i}", "rephrase": f"w{i} {WORDS[i % 20]}", "loc": "the river", "loc_ans": "w9"}
        for i in range(NUM_EDITS)
    ]
    records.insert(5, {"src": "a broken record"})
    (root / "edits.json").write_text(json.dumps(records))
    (root / "first.json").write_text(json.dumps(records[:SPLIT]))
    (root / "second.json").write_text(json.dumps(records[SPLIT:]))
    return root


def memoir_command(workspace: Path, out: Path, *extra: str, data: str = "edits.json") -> list[str]:
    return [
        "-m", "eval_suites.cli", "edit", "--model", str(workspace / "model"), "--data", str(workspace / data),
        "--config", str(workspace / "config.yaml"), "--out", str(out), "--checkpoint-every", "3", *extra,
    ]


def run_memoir(workspace: Path, out: Path, *extra: str, data: str = "edits.json") -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, *memoir_command(workspace, out, *extra, data=data)]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=True)


def adapter_tensors(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "adapter" / "adapter_model.safetensors")


def assert_same_adapter(a: Path, b: Path) -> None:
    left, right = adapter_tensors(a), adapter_tensors(b)
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key
    assert (a / "adapter" / "adapter_config.json").read_text() == (b / "adapter" / "adapter_config.json").read_text()
    assert ledger_rows(a) == ledger_rows(b)


def ledger_rows(out: Path, keep: tuple[str, ...] = ("prompt", "target", "steps", "loss")) -> list[dict]:
    """What the adapter's ledger says of each stored edit, less when it was written and how long it took."""
    edits = json.loads((out / "adapter" / LEDGER_FILE).read_text())["edits"]
    return [{key: edit[key] for key in keep} for edit in edits]


@pytest.fixture(scope="module")
def uninterrupted(workspace) -> Path:
    out = workspace / "uninterrupted"
    finished = run_memoir(workspace, out)
    assert "skipped record 5: missing or empty 'alt'" in finished.stderr
    return out


def test_edit_writes_adapter_log_and_manifest(uninterrupted):
    lines = [json.loads(line) for line in (uninterrupted / "edits.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == [str(i) for i in range(NUM_EDITS + 1) if i != 5]
    assert all(line["steps"] == 25 for line in lines)
    assert adapter_tensors(uninterrupted)["base_model.model.model.layers.1.mlp.down_proj.memoir_memory.index.masks"].shape == (NUM_EDITS, 96)
    manifest = json.loads((uninterrupted / "run.json").read_text())
    assert manifest["num_edits"] == NUM_EDITS and len(manifest["prefixes"]) == 2
    ledger = json.loads((uninterrupted / "adapter" / LEDGER_FILE).read_text())
    assert ledger["written"] == NUM_EDITS and [e["id"] for e in ledger["edits"]] == [line["id"] for line in lines]
    assert ledger_rows(uninterrupted, ("prompt", "target")) == [
        {"prompt": r["src"], "target": r["alt"]} for r in json.loads((uninterrupted.parent / "edits.json").read_text()) if "alt" in r
    ]


def test_the_run_log_keeps_one_line_per_edit_without_verbose(uninterrupted):
    log = (uninterrupted / "run.log").read_text()
    assert [line.split(": edit ")[1].split(":")[0] for line in log.splitlines() if ": edit " in line] == [
        str(i) for i in range(NUM_EDITS + 1) if i != 5
    ]
    assert f"memoir edit: {NUM_EDITS} edits in {uninterrupted / 'adapter'}" in log


def test_rerun_without_resume_refuses_to_overwrite(workspace, uninterrupted):
    with pytest.raises(subprocess.CalledProcessError) as failure:
        run_memoir(workspace, uninterrupted)
    assert "--resume" in failure.value.stderr


def _kill_when(out: Path, process: subprocess.Popen, lines: int, wait_seconds: float = 600) -> None:
    log = out / "edits.jsonl"

    def written() -> bool:
        return log.exists() and len(log.read_text().splitlines()) >= lines

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and process.poll() is None and not written():
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be killed; give it more edits"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert written(), f"no {lines} edits within {wait_seconds} s: is the machine overloaded?"


def kill_run(workspace: Path, out: Path, kill_after: int, *extra: str, data: str = "edits.json") -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, *memoir_command(workspace, out, *extra, data=data)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(out, process, kill_after)
    assert len((out / "edits.jsonl").read_text().splitlines()) < NUM_EDITS


def test_sigkill_then_resume_gives_the_uninterrupted_adapter(workspace, uninterrupted):
    out = workspace / "killed"
    for kill_after in (4, 13):
        kill_run(workspace, out, kill_after, "--resume")
    run_memoir(workspace, out, "--resume")
    assert_same_adapter(out, uninterrupted)
    ids = [json.loads(line)["id"] for line in (out / "edits.jsonl").read_text().splitlines()]
    assert ids == [json.loads(line)["id"] for line in (uninterrupted / "edits.jsonl").read_text().splitlines()]


def test_continuing_an_adapter_with_a_second_file_equals_one_run_of_both(workspace, uninterrupted):
    first, second = workspace / "first", workspace / "second"
    run_memoir(workspace, first, data="first.json")
    kill_run(workspace, second, 4, "--adapter", str(first), data="second.json")
    run_memoir(workspace, second, "--adapter", str(first), "--resume", data="second.json")
    assert_same_adapter(second, uninterrupted)
    ids = [edit["id"] for edit in json.loads((second / "adapter" / LEDGER_FILE).read_text())["edits"]]
    assert len(set(ids)) == NUM_EDITS and ids[SPLIT - 1] == "0.2"  # second.json's ids restart at 0
    assert len(ledger_rows(first)) == SPLIT - 1  # the continued adapter is only read
    with pytest.raises(subprocess.CalledProcessError) as failure:
        run_memoir(workspace, second, "--adapter", str(workspace / "uninterrupted"), "--resume", data="second.json")
    assert "--resume: this run's adapter differs" in failure.value.stderr and "Traceback" not in failure.value.stderr
def _stored_edits(out: Path) -> int:
    return adapter_tensors(out)["base_model.model.model.layers.1.mlp.down_proj.memoir_memory.index.masks"].shape[0]


def test_time_based_checkpoints_bound_what_a_sigkill_loses(workspace, uninterrupted):
    """--checkpoint-every beyond the stream: only the clock makes checkpoints before the end.

    With a due time shorter than any edit, each edit is checkpointed as it finishes, so a kill
    loses at most the edit whose checkpoint it interrupted.
    """
    out = workspace / "killed-by-time"
    timing = ("--checkpoint-every", "1000", "--checkpoint-seconds", "1e-6")
    kill_run(workspace, out, 5, *timing)
    assert _stored_edits(out) >= len((out / "edits.jsonl").read_text().splitlines()) - 1
    run_memoir(workspace, out, *timing, "--resume")
    assert_same_adapter(out, uninterrupted)


def test_two_accelerate_processes_give_the_one_process_adapter(workspace, uninterrupted):
    out = workspace / "two-processes"
    env = os.environ | {"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    finished = subprocess.run([*launch, *memoir_command(workspace, out)], capture_output=True, text=True, env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("edits in") == 1 and "(2 processes)" in finished.stdout
    assert_same_adapter(out, uninterrupted)
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "edits.jsonl", "run.json", "run.log"]


def eval_command(workspace: Path, out: Path) -> list[str]:
    return [
        "-m", "eval_suites.cli", "eval", "--model", str(workspace / "model"), "--data", str(workspace / "edits.json"),
        "--config", str(workspace / "config.yaml"), "--num-edits", "2,5", "--batch-size", "2", "--out", str(out),
    ]


def scores(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if "seconds" not in key}


def test_eval_writes_one_run_folder_per_t_and_two_processes_agree(workspace):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    one = workspace / "eval-one"
    subprocess.run([sys.executable, *eval_command(workspace, one)], check=True, capture_output=True, env=env)
    for t in (2, 5):
        metrics = scores(one / f"t{t}")
        assert metrics["num_edits"] == t and metrics["editor"] == "memoir"
        assert {"rel", "gen", "loc", "exact_match", "fired_on_unrelated", "unedited"} <= set(metrics)
        assert len((one / f"t{t}" / "records.jsonl").read_text().splitlines()) == t
        held = json.loads(memoir_cli("show", str(one / f"t{t}"), "--json").stdout)
        records = [json.loads(line) for line in (one / f"t{t}" / "records.jsonl").read_text().splitlines()]
        assert held["num_edits"] == t and [e["id"] for e in held["edits"]] == [r["id"] for r in records]
    two = workspace / "eval-two"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    finished = subprocess.run([*launch, *eval_command(workspace, two)], capture_output=True, text=True,
                              env=env | {"ACCELERATE_USE_CPU": "1"})
    assert finished.returncode == 0, finished.stderr[-3000:]
    for t in (2, 5):
        assert scores(two / f"t{t}") == scores(one / f"t{t}")
        assert (two / f"t{t}" / "records.jsonl").read_text() == (one / f"t{t}" / "records.jsonl").read_text()
    report = subprocess.run([sys.executable, "-m", "eval_suites.cli", "report", str(one / "t2"), str(one / "t5"),
                             "--out", str(workspace / "curve.png"), "--by-age", "2"],
                            check=True, capture_output=True, text=True, env=env)
    assert (workspace / "curve.png").stat().st_size > 1000 and "| memoir" in report.stdout
    assert "t5, scores by edit age:" in report.stdout and "| 1-3 |" in report.stdout and "| 4-5 |" in report.stdout


def test_bad_arguments_give_a_message_not_a_traceback(workspace, tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "eval_suites.cli", "edit", "--model", str(workspace / "model"),
               "--data", "no-such-suite", "--out", str(tmp_path / "x")]
    finished = subprocess.run(command, capture_output=True, text=True, env=env)
    assert finished.returncode == 2
    assert "memoir edit: --data 'no-such-suite' is neither a suite" in finished.stderr
    assert "Traceback" not in finished.stderr


def memoir_cli(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "eval_suites.cli", *args], capture_output=True, text=True, env=env)


def test_show_lists_the_stored_edits_and_forget_takes_some_back(tmp_path, uninterrupted):
    shown = json.loads(memoir_cli("show", str(uninterrupted), "--json").stdout)
    assert shown["num_edits"] == shown["written"] == NUM_EDITS and shown["config"]["top_k"] == 24
    assert [e["prompt"] for e in shown["edits"]] == [row["prompt"] for row in ledger_rows(uninterrupted)]
    text = memoir_cli("show", str(uninterrupted / "adapter")).stdout
    assert f"{NUM_EDITS} edits" in text and "the the w0 -> w40" in text and "  tau: 0.7" in text
    copy = tmp_path / "copy"
    shutil.copytree(uninterrupted, copy)
    forgot = memoir_cli("forget", str(copy), "--id", "3", "--id", "7")
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot 3:" in forgot.stdout and f"{NUM_EDITS - 2} edits left" in forgot.stdout
    shown = json.loads(memoir_cli("show", str(copy), "--json").stdout)
    assert shown["num_edits"] == NUM_EDITS - 2 and shown["written"] == NUM_EDITS
    assert [e["id"] for e in shown["forgotten"]] == ["3", "7"]
    assert "forgotten 3 at " in memoir_cli("show", str(copy)).stdout
    assert [e["id"] for e in shown["edits"]] == [e["id"] for e in ledger_dicts(uninterrupted) if e["id"] not in ("3", "7")]
    before, after = adapter_tensors(uninterrupted), adapter_tensors(copy)
    keep = [row for row, e in enumerate(ledger_dicts(uninterrupted)) if e["id"] not in ("3", "7")]
    taken = [row for row, e in enumerate(ledger_dicts(uninterrupted)) if e["id"] in ("3", "7")]
    per_edit = [key for key in before if ".index." in key]  # each edit's mask and feature
    assert per_edit and all(torch.equal(after[key], before[key][keep]) for key in per_edit)
    assert all(torch.equal(after[key.replace(".index.", ".forgotten.")], before[key][taken]) for key in per_edit)
    assert all(torch.equal(after[key], before[key]) for key in before if key not in per_edit and ".forgotten." not in key)
    unknown = memoir_cli("forget", str(copy), "--id", "3")
    assert unknown.returncode == 2 and "memoir forget: No stored edit has id '3'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    missing = memoir_cli("show", str(tmp_path))
    assert missing.returncode == 2 and "holds no saved adapter" in missing.stderr


def ledger_dicts(out: Path) -> list[dict]:
    return json.loads((out / "adapter" / LEDGER_FILE).read_text())["edits"]
