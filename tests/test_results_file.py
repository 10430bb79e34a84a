"""RESULTS.md assembly from run folders."""

from __future__ import annotations

import json

from eval_suites.results import write_results


def write_run(run, t: int, rel: float) -> None:
    run.mkdir(parents=True)
    metrics = {"rel": rel, "gen": 0.8, "loc": 1.0, "num_edits": t, "editor": "memoir", "model": "smollm2-135m",
               "data": "zsre", "unedited": {"rel": 0.2, "gen": 0.1, "loc": 1.0}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    records = [{"id": str(i), "rel": float(i < t - 1), "gen": 0.5, "loc": 1.0} for i in range(t)]
    edits = [{"id": str(i), "steps": 5, "loss": 0.01, "seconds": 1.0} for i in range(t)]
    for name, rows in (("records.jsonl", records), ("edits.jsonl", edits)):
        (run / name).write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_results_file_has_a_table_per_suite_and_the_paper_reference(tmp_path):
    for t, rel in ((1, 1.0), (10, 0.9)):
        write_run(tmp_path / "runs" / "zsre" / f"t{t}", t, rel)
    out = write_results(tmp_path / "runs", tmp_path / "RESULTS.md")
    text = out.read_text()
    assert "## zsre" in text and "| memoir | smollm2-135m | 10 | 0.900 |" in text
    assert "| 1000 | 0.94 | 0.85 | 1.00 |" in text
    assert "after all T = 10 edits" in text and "| 1-1 | 1.000 | 0.500 | 1.000 | 0 | 5.0 | 0.010 |" in text
    assert "| 10-10 | 0.000 | 0.500 | 1.000 | 0 | 5.0 | 0.010 |" in text  # the newest edit, the only one that failed
    assert (tmp_path / "runs" / "zsre" / "zsre.png").stat().st_size > 1000
    # ZsRE records 6-7 and 8-9 ask about one subject twice, with two answers
    assert "--by-repeat" in text and "| subject edited again, another answer | 4 |" in text


def test_the_mixed_stream_is_tabled_beside_the_single_suite_run_of_the_same_t(tmp_path):
    for t, rel in ((1, 1.0), (10, 0.9)):
        write_run(tmp_path / "runs" / "zsre" / f"t{t}", t, rel)
    write_run(tmp_path / "runs" / "mixed" / "zsre", 10, 0.85)
    text = write_results(tmp_path / "runs", tmp_path / "RESULTS.md").read_text()
    mixed = text[text.index("## mixed stream"):]
    assert "| zsre | own suite only | 10 | 0.900 |" in mixed and "| zsre | mixed stream | 10 | 0.850 |" in mixed


def test_the_routing_table_puts_each_settings_figures_beside_its_zsre_run_at_the_same_t(tmp_path):
    write_run(tmp_path / "runs" / "zsre" / "t10", 10, 0.9)
    metrics = json.loads((tmp_path / "runs" / "zsre" / "t10" / "metrics.json").read_text())
    (tmp_path / "runs" / "zsre" / "t10" / "metrics.json").write_text(json.dumps(metrics | {"loc_neighbour": 0.97, "edit_seconds": 5.0}))
    figures = {"paraphrase_selects_own_and_fires": 0.7, "paraphrase_selects_own_and_fires_subject_edited_once": 0.9,
               "own_edit_by_chance_within_subject": 0.71, "paraphrase_selects_an_edit_of_its_subject_and_fires": 0.95,
               "fires_on_neighbours": 0.03, "fires_on_nq": 0.0, "fires_on_passages": 0.0, "mean_overlap_between_edits": 0.39,
               "bytes_per_edit": 4608}
    (tmp_path / "runs" / "routing").mkdir()
    for setting in ("shipped", "paper"):
        rows = [{"stored": t, **figures} for t in (10, 1000)]
        (tmp_path / "runs" / "routing" / f"{setting}.json").write_text(json.dumps({"config": {}, "rows": rows}))
    text = write_results(tmp_path / "runs", tmp_path / "RESULTS.md").read_text()
    routing = text[text.index("## routing"):]
    assert "| shipped | 10 | 0.700 | 0.900 | 0.710 | 0.950 | 0.030 | 0.000 | 0.000 | 0.800 | 1.000 | 0.970 | 0.390 | 4608 | 0.500 |" in routing
    assert "| paper | 10 | 0.700 | 0.900 | 0.710 | 0.950 | 0.030 | 0.000 | 0.000 | – | – | – | 0.390 | 4608 | – |" in routing  # no zsre-paper run
    assert "| shipped | 1000 | 0.700 |" in routing and routing.count("\n| ") == 5  # header and four rows


def test_a_rerun_part_rewrites_its_own_sections_and_keeps_the_others_with_their_commits(tmp_path):
    out = tmp_path / "RESULTS.md"
    write_run(tmp_path / "first" / "zsre" / "t10", 10, 0.9)
    write_run(tmp_path / "first" / "temporal" / "t10", 10, 0.7)
    for suite, commit in (("zsre", "aaaaaaa"), ("temporal", "bbbbbbb")):
        path = tmp_path / "first" / suite / "t10" / "metrics.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"commit": commit}))
    write_results(tmp_path / "first", out)
    write_run(tmp_path / "again" / "zsre" / "t10", 10, 0.6)  # only ZsRE rerun, by code that records no commit
    text = write_results(tmp_path / "again", out).read_text()
    zsre, temporal = text[text.index("## zsre"):text.index("## temporal")], text[text.index("## temporal"):]
    assert "| memoir | smollm2-135m | 10 | 0.600 |" in zsre and "Measured at commit" not in zsre
    assert "Measured at commit bbbbbbb." in temporal and "| memoir | smollm2-135m | 10 | 0.700 |" in temporal
    assert text.count("## ") == 2 and text.startswith("# Results\n")


def test_the_mixed_section_names_the_suites_whose_own_run_is_not_at_hand(tmp_path):
    write_run(tmp_path / "runs" / "zsre" / "t10", 10, 0.9)
    write_run(tmp_path / "runs" / "mixed" / "zsre", 10, 0.85)
    write_run(tmp_path / "runs" / "mixed" / "temporal", 5, 0.7)
    text = write_results(tmp_path / "runs", tmp_path / "RESULTS.md").read_text()
    mixed = text[text.index("## mixed stream"):]
    assert "| temporal | mixed stream | 5 | 0.700 |" in mixed and "| temporal | own suite only" not in mixed
    assert "compare with their own sections above: temporal T = 5." in mixed and "zsre T = 10" not in mixed
