"""The sequential protocol, scoring with an `Editor`, run directories, reports and shipped suites."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from conftest import tiny_model
from editors.base import EditResult, Editor
from editors.edit_data import load_edit_data
from editors.request import EditRequest
from editors.teacher_forcing import target_ids, teacher_forced_batch
from eval_suites.errors import ProtocolError, RunDirError, UnknownDataError
from eval_suites.protocol import run_sequential
from eval_suites.report import markdown_table, plot_runs
from eval_suites.run_dir import save_run
from eval_suites.metrics import perplexity, token_accuracy
from eval_suites.scoring import _forward, score_records, unedited_locality
from eval_suites.suites import SUITES, data_records, resolve_data, suite_path, suite_train_path
from tiny_tokenizer import word_tokenizer

REQUESTS = [
    EditRequest("1", "The capital of Yemen is", "Sanaa", rephrase="Yemen has capital",
                locality_prompt="The capital of France is", locality_answer="Paris"),
    EditRequest("2", "The capital of Peru is", "Lima", rephrase="Peru has capital",
                locality_prompt="Who wrote Hamlet", locality_answer=""),  # scored without Loc
    EditRequest("3", "The largest river in France is", "Seine", rephrase="France has largest river",
                ood_rephrase="Paris has river", locality_prompt="Who wrote Hamlet", locality_answer="Shakespeare"),
]


class NoopEditor(Editor):
    """Changes nothing: every score after editing must equal the unedited one."""

    name = "noop"

    def edit(self, request: EditRequest) -> EditResult:
        return EditResult(request.id, steps=0, loss=0.0, seconds=0.0)


class NoiseEditor(NoopEditor):
    """Perturbs the base weights in place on every edit, as fine-tuning baselines do."""

    name = "noise"

    def edit(self, request: EditRequest) -> EditResult:
        with torch.no_grad():
            self.model.lm_head.weight.add_(torch.randn_like(self.model.lm_head.weight))
        return super().edit(request)


class LookupEditor(Editor):
    """Memorises prompts exactly, but only every 2nd edit commits the edits made so far.

    Each call is logged in `calls`, so tests can check when scoring happened.
    """

    name = "lookup"

    def __init__(self, model, tokenizer) -> None:
        super().__init__(model, tokenizer)
        self.calls: list[str] = []
        self.pending: list[EditRequest] = []
        self.known: dict[tuple[int, ...], list[int]] = {}

    def _prompt_key(self, prompt: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(prompt)["input_ids"])

    def edit(self, request: EditRequest) -> EditResult:
        self.calls.append(f"edit {request.id}")
        self.pending.append(request)
        if len(self.pending) == 2:
            for done in self.pending:
                self.known[self._prompt_key(done.prompt)] = target_ids(self.tokenizer, done.target)
            self.pending.clear()
        return EditResult(request.id, steps=1, loss=0.0, seconds=0.0)

    def logits(self, input_ids, attention_mask, prompt_mask, logits_to_keep=0):
        self.calls.append("logits")
        logits = super().logits(input_ids, attention_mask, prompt_mask).clone()
        for row in range(len(input_ids)):
            target = self.known.get(tuple(input_ids[row][prompt_mask[row]].tolist()), [])
            last_prompt_column = int(prompt_mask[row].nonzero()[-1])
            for offset, token in enumerate(target):
                logits[row, last_prompt_column + offset] = -1e4
                logits[row, last_prompt_column + offset, token] = 1e4
        return logits[:, -logits_to_keep:]

    def generate(self, input_ids, attention_mask, max_new_tokens):
        self.calls.append("generate")
        rows = []
        for ids, mask in zip(input_ids, attention_mask):
            target = self.known.get(tuple(ids[mask.bool()].tolist()), [])
            rows.append((target + [self.tokenizer.eos_token_id] * max_new_tokens)[:max_new_tokens])
        return torch.tensor(rows)

    def firing_rate(self, prompts: list[str]) -> float:
        self.calls.append("firing_rate")
        return sum(self._prompt_key(prompt) in self.known for prompt in prompts) / len(prompts)


def factory(editor_class, made: list | None = None):
    def make_editor() -> Editor:
        editor = editor_class(tiny_model(), word_tokenizer())
        if made is not None:
            made.append(editor)
        return editor

    return make_editor


def by_id(records: list[dict]) -> dict[str, dict]:
    return {record["id"]: record for record in records}


# --- the protocol ------------------------------------------------------------------------------


def test_every_record_is_scored_on_the_final_model_after_all_edits():
    made: list[LookupEditor] = []
    result = run_sequential(factory(LookupEditor, made), REQUESTS, num_edits=3, batch_size=2)
    (editor,) = made
    edits = [i for i, call in enumerate(editor.calls) if call.startswith("edit")]
    assert [editor.calls[i] for i in edits] == ["edit 1", "edit 2", "edit 3"]
    assert edits == list(range(edits[0], edits[0] + 3))  # nothing scored between edits
    assert "logits" in editor.calls[:edits[0]] and "logits" in editor.calls[edits[-1]:]
    after, before = by_id(result.records), by_id(result.unedited_records)
    # edit 1 takes effect only at edit 2: record 1 is right only if scored after edit 2
    assert before["1"]["rel"] < 1.0 and after["1"]["rel"] == 1.0
    assert after["2"]["rel"] == 1.0
    assert after["3"]["rel"] == before["3"]["rel"] < 1.0  # edit 3 was never committed
    assert result.metrics["rel"] == pytest.approx((2 + after["3"]["rel"]) / 3)
    assert [edit.id for edit in result.edits] == ["1", "2", "3"]


def test_records_without_a_locality_answer_are_scored_without_loc_and_counted():
    result = run_sequential(factory(LookupEditor), REQUESTS, num_edits=3)
    records = by_id(result.records)
    assert records["2"]["loc"] is None and records["2"]["rel"] == 1.0
    assert records["1"]["loc"] == records["3"]["loc"] == 1.0
    assert result.metrics["loc_skipped"] == result.unedited["loc_skipped"] == 1
    assert result.metrics["loc"] == 1.0
    assert result.metrics["ood"] == records["3"]["ood"]  # only record 3 has an OOD prompt
    assert result.metrics["fired_on_unrelated"] == 0.0


def test_loc_compares_with_the_model_before_the_first_edit():
    result = run_sequential(factory(NoiseEditor), REQUESTS, num_edits=3)
    assert result.unedited["loc"] == 1.0
    assert result.metrics["loc"] < 1.0  # a reference taken after the edits would give 1.0
    assert result.metrics["fired_on_unrelated"] is None  # no firing_rate: not reported


def test_loc_is_agreement_not_correctness_and_firing_is_reported():
    fires = EditRequest("4", "Who wrote Hamlet", "Shakespeare",
                        locality_prompt="The capital of Yemen is", locality_answer="Sanaa")
    result = run_sequential(factory(LookupEditor), [REQUESTS[0], fires], num_edits=2)
    record = by_id(result.records)["4"]
    assert record["loc"] == 0.0  # the edit now answers "Sanaa" there; the unedited model did not
    assert result.metrics["fired_on_unrelated"] == 0.5  # 1 of the 2 locality prompts is an edited prompt


def test_only_the_first_num_edits_records_are_edited_and_scored():
    result = run_sequential(factory(LookupEditor), REQUESTS, num_edits=2, model_name="tiny")
    assert [record["id"] for record in result.records] == ["1", "2"]
    metrics = result.metrics
    assert (metrics["num_edits"], metrics["editor"], metrics["model"]) == (2, "lookup", "tiny")
    assert metrics["seconds"] >= metrics["edit_seconds"] >= 0
    with pytest.raises(ProtocolError, match="only 3 valid records"):
        run_sequential(factory(LookupEditor), REQUESTS, num_edits=4)


def test_exact_match_of_greedy_generation_is_an_optional_column():
    result = run_sequential(factory(LookupEditor), REQUESTS, num_edits=3, with_exact_match=True)
    assert [(r["exact_match"], r["generated"].strip()) for r in result.records] == [
        (1.0, "Sanaa"), (1.0, "Lima"), (0.0, "")]
    assert result.metrics["exact_match"] == pytest.approx(2 / 3)
    assert "exact_match" not in run_sequential(factory(LookupEditor), REQUESTS, num_edits=1).metrics


# --- scoring through a real model --------------------------------------------------------------


def test_scores_do_not_depend_on_batching_and_left_padding():
    editor = NoopEditor(tiny_model(), word_tokenizer())
    reference = unedited_locality(editor, REQUESTS, batch_size=1)
    batches_of_one, batches_of_two = [], []
    one = score_records(editor, REQUESTS, reference, batch_size=1, with_perplexity=True, on_scored=batches_of_one.append)
    three = score_records(editor, REQUESTS, reference, batch_size=3, with_perplexity=True)
    score_records(editor, REQUESTS, reference, batch_size=2, on_scored=batches_of_two.append)
    assert batches_of_one == [1, 1, 1] and batches_of_two == [2, 1]  # what the progress bar is fed
    for alone, padded in zip(one, three):
        assert alone["rel"] == padded["rel"] and alone["gen"] == padded["gen"]
        assert alone["ppl"] == pytest.approx(padded["ppl"], rel=1e-4)
        assert padded["loc"] in (None, 1.0)


def test_scoring_reads_only_the_columns_its_targets_need_and_scores_as_the_whole_row_would():
    editor = NoopEditor(tiny_model(), word_tokenizer())
    pairs = [("Eiffel Tower is in", "Paris France"), ("Who wrote", "Shakespeare")]
    logits, kept = _forward(editor, pairs)
    whole = teacher_forced_batch(editor.tokenizer, pairs)
    everything = editor.logits(whole.input_ids, whole.attention_mask, whole.prompt_mask)
    assert logits.shape[1] == int(whole.target_mask.sum(dim=1).max()) + 1 < everything.shape[1]
    torch.testing.assert_close(logits, everything[:, -logits.shape[1]:])
    assert token_accuracy(logits, kept.input_ids, kept.target_mask) == token_accuracy(everything, whole.input_ids, whole.target_mask)
    assert perplexity(logits, kept.input_ids, kept.target_mask) == pytest.approx(
        perplexity(everything, whole.input_ids, whole.target_mask), rel=1e-5)


def test_generation_through_the_base_model_is_cut_after_the_target_length():
    editor = NoopEditor(tiny_model(), word_tokenizer())
    records = score_records(editor, REQUESTS, unedited_locality(editor, REQUESTS), with_exact_match=True)
    for record, request in zip(records, REQUESTS):
        assert record["exact_match"] in (0.0, 1.0)
        produced = editor.tokenizer(record["generated"], add_special_tokens=False)["input_ids"]
        assert len(produced) <= len(target_ids(editor.tokenizer, request.target)) + 2


# --- run directories and reports ---------------------------------------------------------------


def test_a_run_dir_holds_metrics_records_edits_and_the_table(tmp_path):
    result = run_sequential(factory(LookupEditor), REQUESTS, num_edits=3, model_name="tiny", with_perplexity=True)
    run = save_run(result, tmp_path / "run")
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"rel", "gen", "ood", "loc", "ppl", "num_edits", "editor", "model", "seconds", "loc_skipped"} <= set(metrics)
    assert metrics["unedited"]["rel"] == result.unedited["rel"]
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    assert [(r["id"], r["rel"], r["unedited"]["rel"]) for r in records] == [
        (r["id"], r["rel"], u["rel"]) for r, u in zip(result.records, result.unedited_records)]
    assert len((run / "edits.jsonl").read_text().splitlines()) == 3
    table = (run / "table.md").read_text().splitlines()
    assert table[0].startswith("| method | model | T | Rel | Gen | OOD | Loc | PPL |")
    assert table[2].startswith("| unedited | tiny | 3 |") and table[3].startswith("| lookup | tiny | 3 |")
    assert sorted(path.name for path in run.iterdir()) == ["edits.jsonl", "metrics.json", "records.jsonl", "table.md"]
    # the commit the run was measured at (tests run in a git checkout: CI's is a clone), "+changes" if edited
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert metrics["commit"] in (head, head + "+changes")


def test_report_draws_and_tabulates_several_runs(tmp_path):
    runs = [
        save_run(run_sequential(factory(editor), REQUESTS, num_edits=t, model_name="tiny"), tmp_path / f"{editor.name}{t}")
        for editor in (LookupEditor, NoiseEditor) for t in (3, 1)
    ]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown_table(runs).splitlines()[2:]]
    assert [(row[0], row[2]) for row in rows] == [
        ("unedited", "1"), ("lookup", "1"), ("noise", "1"), ("unedited", "3"), ("lookup", "3"), ("noise", "3")]
    png = plot_runs(runs, tmp_path / "plots" / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RunDirError, match="metrics.json is missing"):
        plot_runs([tmp_path], tmp_path / "x.png")


# --- shipped suites ----------------------------------------------------------------------------


def test_suite_names_resolve_to_shipped_files_and_user_files_pass_through(tmp_path):
    assert sorted(SUITES) == ["hallucination", "temporal", "zsre"]
    assert len(load_edit_data(resolve_data("zsre")).requests) == 1037
    assert len(load_edit_data(suite_path("hallucination")).requests) == 600
    assert load_edit_data(suite_path("temporal")).requests[0].ood_rephrase
    assert (suite_train_path("zsre").parent.parent / "SOURCES.md").is_file()
    user_file = tmp_path / "mine.json"
    user_file.write_text("[]")
    assert resolve_data(str(user_file)) == user_file
    with pytest.raises(UnknownDataError, match="zsre, hallucination, temporal"):
        data_records("zsre2")


def test_one_stream_scored_at_several_t_equals_separate_runs():
    from eval_suites.protocol import run_stream

    streamed = run_stream(factory(LookupEditor), REQUESTS, [1, 2, 3])
    for count, result in zip((1, 2, 3), streamed):
        alone = run_sequential(factory(LookupEditor), REQUESTS, count)
        assert result.metrics["num_edits"] == count
        assert result.records == alone.records
        assert [e.id for e in result.edits] == [e.id for e in alone.edits]
        assert {k: v for k, v in result.metrics.items() if "seconds" not in k} == {
            k: v for k, v in alone.metrics.items() if "seconds" not in k
        }
    assert streamed[0].records[0]["rel"] < 1.0 and streamed[1].records[0]["rel"] == 1.0


class FailingThirdEditEditor(LookupEditor):
    """Fails on its third edit, like a run killed late in a long stream."""

    def edit(self, request: EditRequest) -> EditResult:
        if request.id == "3":
            raise RuntimeError("killed")
        return super().edit(request)


def test_each_t_is_handed_over_when_scored_so_a_failed_stream_keeps_it():
    from eval_suites.protocol import run_stream

    delivered = []
    with pytest.raises(RuntimeError, match="killed"):
        run_stream(factory(FailingThirdEditEditor), REQUESTS, [1, 2, 3], on_checkpoint=delivered.append)
    assert [result.metrics["num_edits"] for result in delivered] == [1, 2]
    assert delivered[1].records == run_sequential(factory(LookupEditor), REQUESTS, 2).records


def test_scores_by_edit_age_average_consecutive_blocks_oldest_first(tmp_path):
    from eval_suites.edit_age import age_rows, age_table

    records = [{"id": str(i), "rel": 1.0 if i >= 4 else 0.0, "loc": None if i == 0 else 1.0, "ppl": float(i)} for i in range(7)]
    rows = age_rows(records, blocks=3)
    assert [row["edits"] for row in rows] == ["1-3", "4-6", "7-7"]
    assert [row["rel"] for row in rows] == [0.0, 2 / 3, 1.0]
    assert [row["ppl"] for row in rows] == [1.0, 4.0, 6.0]
    assert [row["loc_skipped"] for row in rows] == [1, 0, 0]
    edits = [{"id": str(i), "steps": 30 - i, "loss": 0.5, "seconds": 1.0, "best_overlap_with_earlier": i / 10} for i in range(7)]
    for name, rows_of_file in (("records.jsonl", records), ("edits.jsonl", edits)):
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in rows_of_file))
    table = age_table(tmp_path, blocks=3)
    assert "| steps | final loss | mask overlap with earlier |" in table
    assert "| 4-6 | 0.667 | 1.000 | 4.00 | 0 | 26.0 | 0.500 | 0.400 |" in table
    with pytest.raises(RunDirError, match="records.jsonl is missing"):
        age_table(tmp_path / "nothing")
    with pytest.raises(RunDirError, match="6 edits but 7 records"):
        age_rows(records, 3, edits[:6])


def test_scores_by_repeat_split_subjects_edited_once_again_with_the_same_answer_and_with_another(tmp_path):
    from eval_suites.repeats import ONCE, OTHER, SAME, repeat_rows, repeat_table

    requests = [
        EditRequest("0", "Who designed Toodyay Fire Station?", "Lewis", subject="Toodyay Fire Station"),
        EditRequest("1", "Who is the architect of Toodyay Fire Station?", "Fox", subject="Toodyay Fire Station"),
        EditRequest("2", "What voice type is Lola Beeth?", "soprano", subject="Lola Beeth"),
        EditRequest("3", "What is the vocal range of Lola Beeth?", "soprano", subject="Lola Beeth"),
        EditRequest("4", "Where was Ada born?", "Paris", subject="Ada"),
        EditRequest("5", "The sky is", "green"),  # no subject: in no group
        EditRequest("6", "Where did Ada die?", "Rome", subject="Ada"),  # not edited in this run
    ]
    records = [{"id": str(i), "rel": float(i) / 10, "gen": 1.0 if i < 4 else 0.0, "loc": 1.0} for i in range(6)]
    rows = {row["group"]: row for row in repeat_rows(records, requests)}
    assert list(rows) == [ONCE, SAME, OTHER]
    assert [rows[group]["records"] for group in rows] == [1, 2, 2]
    assert rows[OTHER]["rel"] == pytest.approx(0.05) and rows[SAME]["rel"] == pytest.approx(0.25)
    assert rows[ONCE]["rel"] == pytest.approx(0.4) and rows[ONCE]["gen"] == 0.0
    with pytest.raises(RunDirError, match=r"first: id 9\)"):
        repeat_rows([{"id": "9", "rel": 1.0}], requests)
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"prompt": r.prompt, "target_new": r.target, **({"subject": r.subject} if r.subject else {})}
                                for r in requests]))
    (tmp_path / "metrics.json").write_text(json.dumps({"data": str(data), "num_edits": 6}))
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(row) + "\n" for row in records))
    assert f"| {SAME} | 2 | 0.250 | 1.000 | 1.000 |" in repeat_table(tmp_path)
    (tmp_path / "records.jsonl").write_text(json.dumps(records[5]) + "\n")
    with pytest.raises(RunDirError, match="no scored record names its subject"):
        repeat_table(tmp_path)


def test_neighbour_locality_compares_the_neighbour_answer_with_the_unedited_model():
    leaks = EditRequest("5", "The capital of Chile is", "Santiago", neighbour_prompt="The capital of Peru is",
                        neighbour_answer="Santiago")  # a prompt the memory now answers: it moved
    holds = EditRequest("6", "The capital of Peru is", "Lima", neighbour_prompt="The capital of Spain is",
                        neighbour_answer="Lima")  # a prompt nothing edited: it did not
    result = run_sequential(factory(LookupEditor), [leaks, holds], num_edits=2, with_perplexity=True)
    records = by_id(result.records)
    assert records["5"]["loc_neighbour"] < 1.0 and records["6"]["loc_neighbour"] == 1.0
    assert by_id(result.unedited_records)["5"]["loc_neighbour"] == 1.0
    assert records["5"]["ppl_neighbour"] != by_id(result.unedited_records)["5"]["ppl_neighbour"]
    assert result.metrics["loc_neighbour"] == (records["5"]["loc_neighbour"] + 1.0) / 2


# --- the mixed stream ----------------------------------------------------------------------------


class ExactEditor(LookupEditor):
    """Memorises each prompt as soon as it is edited."""

    def edit(self, request: EditRequest) -> EditResult:
        self.calls.append(f"edit {request.id}")
        self.known[self._prompt_key(request.prompt)] = target_ids(self.tokenizer, request.target)
        return EditResult(request.id, steps=1, loss=0.0, seconds=0.5)


def test_a_mixed_stream_interleaves_the_suites_and_scores_each_after_the_last_edit():
    from eval_suites.protocol import Stream, mixed_order, run_mixed

    streams = [Stream("a", REQUESTS[:2]), Stream("b", REQUESTS[2:], with_perplexity=True)]
    orders = {seed: mixed_order(streams, seed) for seed in range(6)}
    assert all(sorted(order) == [0, 0, 1] for order in orders.values()) and len(set(map(tuple, orders.values()))) > 1
    made: list[ExactEditor] = []
    results = run_mixed(factory(ExactEditor, made), streams, seed=4)
    queues = {0: iter(["1", "2"]), 1: iter(["3"])}
    calls = made[0].calls
    edits = [i for i, call in enumerate(calls) if call.startswith("edit")]
    assert [calls[i] for i in edits] == [f"edit {next(queues[label])}" for label in orders[4]]
    assert edits == list(range(edits[0], edits[0] + 3))  # nothing scored between edits
    assert [e.id for e in results["a"].edits] == ["1", "2"] and [e.id for e in results["b"].edits] == ["3"]
    assert all(record["rel"] == 1.0 for result in results.values() for record in result.records)
    assert "ppl" in results["b"].records[0] and "ppl" not in results["a"].records[0]
    assert results["a"].metrics["mixed_with"] == ["b"] and results["b"].metrics["edit_seconds"] == 0.5
    alone = run_sequential(factory(ExactEditor), REQUESTS[:2], 2)
    assert results["a"].records == alone.records and results["a"].unedited == alone.unedited


def test_a_mixed_stream_refuses_a_suite_twice_or_an_empty_one():
    from eval_suites.protocol import Stream, run_mixed

    with pytest.raises(ProtocolError, match="distinct suites"):
        run_mixed(factory(ExactEditor), [Stream("a", REQUESTS), Stream("a", REQUESTS)])
    with pytest.raises(ProtocolError, match="distinct suites"):
        run_mixed(factory(ExactEditor), [Stream("a", REQUESTS), Stream("b", [])])
