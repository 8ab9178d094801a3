# cnnvsdnn -- `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help setup data train test test-slow lint clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

setup: $(BIN)/.installed data  ## create .venv, install cnnvsdnn with its dev tools, fetch MNIST

data: $(BIN)/.installed  ## fetch MNIST into the cache (CNNVSDNN_DATA_DIR, default ~/.cache/cnnvsdnn)
	$(BIN)/cnnvsdnn data fetch mnist

train: $(BIN)/.installed  ## the main job: the study's CNN on MNIST, 2000 steps (ARGS='model=dnn ...')
	$(BIN)/cnnvsdnn train $(ARGS)

test: $(BIN)/.installed  ## run the test suite (no network needed)
	$(BIN)/python -m pytest -q $(ARGS)

test-slow: $(BIN)/.installed  ## also the slow tests
	$(BIN)/python -m pytest -q -m "slow or not slow" $(ARGS)

lint: $(BIN)/.installed  ## ruff
	$(BIN)/ruff check src tests

clean:  ## remove .venv and build leftovers (keeps outputs/ and the data cache)
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
