# compact-bert-bench: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned to a release whose CPU build lies on the project machines' local wheel store; elsewhere
# pip takes it from PyPI. For a CPU-only box without that store: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=
# every other package at the version in this lock (pip-tools; `make lock` refreshes it). LOCK= installs unpinned.
LOCK        ?= requirements/lock.txt
DATA        ?= ../shared/data
RESULTS     ?= results
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
STAMP       := $(shell date +%Y%m%d-%H%M%S)
# extra arguments for bench compare (its defaults were measured on shared VMs; see docs/gate.md)
GATE_ARGS   ?=
GATE_OUT    ?= $(RESULTS)/gate/$(STAMP)

.PHONY: help install lock lint test test-full test-gpu bench compare-latency bench-finetune bench-timing bench-squad bench-distill report baseline gate machine-class clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

install: ## create $(VENV) and install the project with its test, offline and onnx extras, at the locked versions
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(PY) -m pip install -q $(if $(LOCK),-c $(LOCK),) -e ".[dev,offline,onnx]"
	$(if $(LOCK),$(PY) tools/check_lock.py $(LOCK),)
	@$(PY) -c "import torch, transformers; print('installed: torch', torch.__version__, '| transformers', transformers.__version__)"

lock: ## refresh $(LOCK) from pyproject.toml with pip-tools, keeping its pins (UPGRADE=1 takes new releases)
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install -q pip-tools
	$(VENV)-lock/bin/pip-compile -q --extra dev --extra offline --extra onnx --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade,) -o $(LOCK) pyproject.toml
	@# torch's build tag (+cpu, +cu128) is the machine's choice ($(TORCH)); the lock pins its version only
	sed -i -E 's/^(torch==[0-9.]+)\+[a-z0-9]+/\1/' $(LOCK)
	@echo "lock: $(LOCK) written; the baselines record the versions they were made with (make gate compares them)"

lint: ## ruff: lint and format check (pyproject.toml [tool.ruff]); `ruff format . && ruff check --fix .` repairs most
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: ## fast tests (not slow, not gpu): seconds to a few minutes
	$(PY) -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-full: ## every test CI runs: the fast ones plus slow real-model, real-data tests (no gpu)
	$(PY) -m pytest -m "not gpu" $(PYTEST_ARGS)

test-gpu: ## the CUDA tests (needs a GPU)
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

bench-finetune: ## run_glue.py recipe vs harness defaults: minilm_l6 on MRPC, wall-time ratio and both dev scores
	$(PY) benchmarks/finetune_speed.py --data $(DATA)/glue

compare-latency: ## MobileBERT vs TinyBERT-4L vs BERT-base latency and memory on this machine (offline, random weights)
	$(VENV)/bin/bench +sweep=compact_vs_base

bench: bench-finetune bench-timing bench-squad bench-distill ## every benchmark under benchmarks/

bench-distill: ## MiniLM-L6 teacher vs its 3-layer student, 3 seeds per variant, each arm's lr and epochs chosen on held-out training rows (dev scored once): SST-2 (a) (b) (b+T) (c) (c+T), MRPC (a) (b) (c) (b+augmenter); stop and re-run to resume
	$(PY) benchmarks/distill.py --data $(DATA)/glue

bench-squad: ## SQuAD fine-tune: every window padded to 384 vs the harness's padding, wall-time ratio
	$(PY) benchmarks/squad_padding.py --data $(DATA)/squad

bench-timing: ## timing fidelity (harness vs bare torch loop) and the CPU backend speed-up table
	$(PY) benchmarks/timing_fidelity.py
	$(PY) benchmarks/backends.py

report: ## tables, plots and report.html from every result under $(RESULTS)
	$(VENV)/bin/bench report $(RESULTS) --out $(RESULTS)/report --format md,latex,html,csv

baseline: ## write results/baselines/<this machine class>/ with the gate suite, from a clean tree (commit it)
	$(PY) benchmarks/gate.py baseline --baselines $(RESULTS)/baselines --data $(DATA)/glue

gate: ## run the gate suite and compare it with this machine class's baseline (exit 1 on a regression)
	$(PY) benchmarks/gate.py check --baselines $(RESULTS)/baselines --data $(DATA)/glue \
		--out $(GATE_OUT) $(GATE_ARGS)

machine-class: ## print this machine's class id (the baseline folder `make gate` compares against)
	@$(PY) -m bench.env

clean: ## remove run outputs and caches; committed baselines (results/baselines/) are kept
	find $(RESULTS) -mindepth 1 -maxdepth 1 ! -name baselines ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache outputs multirun
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
