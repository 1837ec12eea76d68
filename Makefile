# compact-bert-bench: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned to a release whose CPU build lies on the project machines' local wheel store; elsewhere
# pip takes it from PyPI. For a CPU-only box without that store: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=
DATA        ?= ../shared/data
RESULTS     ?= results
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-full test-gpu bench bench-finetune report clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

install: ## create $(VENV) and install the project with its test and offline extras
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(PY) -m pip install -q -e ".[dev,offline]"
	@$(PY) -c "import torch, transformers; print('installed: torch', torch.__version__, '| transformers', transformers.__version__)"

test: ## fast tests (not slow, not gpu): seconds to a few minutes
	$(PY) -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-full: ## every test CI runs: the fast ones plus slow real-model, real-data tests (no gpu)
	$(PY) -m pytest -m "not gpu" $(PYTEST_ARGS)

test-gpu: ## the CUDA tests (needs a GPU)
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

bench-finetune: ## run_glue.py recipe vs harness defaults: minilm_l6 on MRPC, wall-time ratio and both dev scores
	$(PY) benchmarks/finetune_speed.py --data $(DATA)/glue

clean: ## remove run outputs and caches; committed baselines (results/baselines/) are kept
	find $(RESULTS) -mindepth 1 -maxdepth 1 ! -name baselines ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache outputs multirun
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
