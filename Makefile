# runner: `make help` lists the targets. Everything runs inside .venv, made by `make install`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=
REPEATS ?= 20
EPOCHS  ?= 500
export RUNNER_DATA_DIR ?= $(CURDIR)/data/corpora

.DEFAULT_GOAL := help
.PHONY: help install install-extras run test test-fast lint docs bench report plan reproduce reproduce-quick gpu-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  variables: ARGS='model=gru train.num_epochs=20' (run), RUNNER_DATA_DIR=<folder with corpora>"

install: $(VENV)/.installed ## make .venv with CPU torch 2.13.0 and the project (editable, with dev tools)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $@

install-extras: install ## add the optional extras: trackers (logger=tensorboard|mlflow|wandb) and Optuna (hparams_search=optuna)
	$(PY) -m pip install -q -e '.[dev,extras]' --config-settings editable_mode=compat

run: install ## one run: python -m runner $(ARGS) (defaults: the study's RNN baseline)
	$(PY) -m runner $(ARGS)

test: install ## the whole test suite (CPU, no network; pytest-xdist, a worker per core: ~6.5 min on 2 cores; the optional extras' tests skip without them)
	$(PY) -m pytest -n auto --dist worksteal

test-fast: install ## the suite without the tests marked slow (CLI subprocesses, multi-epoch training): ~2 min on 2 cores
	$(PY) -m pytest -n auto --dist worksteal -m "not slow"

lint: install ## ruff over the code
	$(VENV)/bin/ruff check runner models data tests bench hydra_plugins

docs: $(VENV)/.docs ## the docs site in site/: the configuration reference regenerated, then mkdocs build --strict (a broken link fails)
	$(PY) docs/gen_config_reference.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

$(VENV)/.docs: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,docs]' --config-settings editable_mode=compat
	touch $@

bench: install ## tokens/sec, GFLOP/s and % of the measured GEMM peak of rnn, lstm, gru (each model.impl), sru, onlstm at 32/256/1024 (ARGS="--d2l PY": d2l interleaved); one layer nn vs fused; our training step vs d2l's around one torch.nn layer; packs of 4 and 20 seeds vs 2 jobs x 1 thread (gru, lstm, rnn at 32/64/256); report speed; the note's regression run
	$(PY) -m bench.throughput $(ARGS)
	$(PY) -m bench.kernels
	$(PY) -m bench.loop --cells rnn,lstm
	$(PY) -m bench.packed
	$(PY) -m bench.report_speed
	$(PY) -m bench.regression

report: install ## the report of every sweep folder under results/ (runs.csv, summary.csv/.md)
	@for d in results/*/; do [ -f "$$d/manifest.json" ] && $(PY) -m runner.report "$$d"; done; true

reproduce: install ## the study in full (GPUs advised): REPEATS=20 EPOCHS=500 -> results/reproduce/
	$(PY) -m runner.reproduce --repeats $(REPEATS) --epochs $(EPOCHS) --out results/reproduce $(ARGS)

plan: install ## what make reproduce costs, before it runs: runs, trained runs, tokens, hours (ARGS="--quick", "--jobs N", "--timings gpu-check/shape_timings.json": a GPU's; "--pack 20": also in packs of 20 seeds)
	$(PY) -m runner.reproduce --plan --repeats $(REPEATS) --epochs $(EPOCHS) $(ARGS)

reproduce-quick: install ## the study reduced (conf/reproduce.yaml: 2 seeds, 20 epochs; the note's tables 50 steps) -> results/reproduce-quick/
	$(PY) -m runner.reproduce --quick --out results/reproduce-quick $(ARGS)

# On the lent GPU machine there is no .venv (bash .device/gpu puts the packages on PYTHONPATH):
# gpu-check then runs python3, and needs no `make install` (it could reach no registry there).
gpu-check: PY = $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,python3)
gpu-check: ## the GPU check, within 8 min (docs/gpu-check.md): CUDA tests, throughput table, shape timings (alone and as packs of 20) for make plan -> $OUT or gpu-check/ (ARGS="--cpu": tiny on CPU)
	$(PY) -m bench.gpu_check $(ARGS)

clean: ## remove caches and the built docs site (keeps .venv and results/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info site
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
