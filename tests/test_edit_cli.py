"""`memoir edit`: outputs, SIGKILL + --resume, and two accelerate processes, on a tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import WORDS, tiny_model, tiny_tokenizer

NUM_EDITS = 24
CONFIG = """
memoir: {target_layer: 1, top_k: 24, tau: 0.7}
editor: {lr: 50.0, max_steps: 25, loss_threshold: 0.0, prefix_seeds: [the, who], prefix_lengths: [3], num_background_texts: 8}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    tiny_model("llama", num_hidden_layers=4).save_pretrained(root / "model")
    tiny_tokenizer().save_pretrained(root / "model")
    (root / "config.yaml").write_text(CONFIG)
    records = [
        {"src": f"{WORDS[i % 20]} {WORDS[(3 * i) % 20]} w{i}", "alt": f"w{40 + i}", "rephrase": f"w{i} {WORDS[i % 20]}", "loc": "the river", "loc_ans": "w9"}
        for i in range(NUM_EDITS)
    ]
    records.insert(5, {"src": "a broken record"})
    (root / "edits.json").write_text(json.dumps(records))
    return root


def memoir_command(workspace: Path, out: Path, *extra: str) -> list[str]:
    return [
        "-m", "eval_suites.cli", "edit", "--model", str(workspace / "model"), "--data", str(workspace / "edits.json"),
        "--config", str(workspace / "config.yaml"), "--out", str(out), "--checkpoint-every", "3", *extra,
    ]


def run_memoir(workspace: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, *memoir_command(workspace, out, *extra)]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=True)


def adapter_tensors(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "adapter" / "adapter_model.safetensors")


def assert_same_adapter(a: Path, b: Path) -> None:
    left, right = adapter_tensors(a), adapter_tensors(b)
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key
    assert (a / "adapter" / "adapter_config.json").read_text() == (b / "adapter" / "adapter_config.json").read_text()


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


def test_rerun_without_resume_refuses_to_overwrite(workspace, uninterrupted):
    with pytest.raises(subprocess.CalledProcessError) as failure:
        run_memoir(workspace, uninterrupted)
    assert "--resume" in failure.value.stderr


def _kill_when(out: Path, process: subprocess.Popen, lines: int) -> None:
    log = out / "edits.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= lines:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be killed; give it more edits"
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_sigkill_then_resume_gives_the_uninterrupted_adapter(workspace, uninterrupted):
    out = workspace / "killed"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    for kill_after in (4, 13):
        process = subprocess.Popen([sys.executable, *memoir_command(workspace, out, "--resume")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_when(out, process, kill_after)
        done = len((out / "edits.jsonl").read_text().splitlines())
        assert done < NUM_EDITS
    run_memoir(workspace, out, "--resume")
    assert_same_adapter(out, uninterrupted)
    ids = [json.loads(line)["id"] for line in (out / "edits.jsonl").read_text().splitlines()]
    assert ids == [json.loads(line)["id"] for line in (uninterrupted / "edits.jsonl").read_text().splitlines()]


def test_two_accelerate_processes_give_the_one_process_adapter(workspace, uninterrupted):
    out = workspace / "two-processes"
    env = os.environ | {"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    finished = subprocess.run([*launch, *memoir_command(workspace, out)], capture_output=True, text=True, env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("edits in") == 1 and "(2 processes)" in finished.stdout
    assert_same_adapter(out, uninterrupted)
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "edits.jsonl", "run.json"]


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
