# cnnvsdnn -- `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
# test processes (pytest-xdist; each test file stays in one process, so its module fixtures are
# built once): 2 halves the suite's time on 2 cores; TEST_JOBS=0 runs it in this process
TEST_JOBS ?= 2
PYTEST := $(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)
# `make report-mnist BIN=/path/to/venv/bin` uses an existing environment as it is (no install).
INSTALLED := $(if $(filter command line,$(origin BIN)),,$(BIN)/.installed)
# The tests also need the optional extras: Keras/TensorFlow and PyTorch for the cross-checks,
# the Hydra launchers for the sweep tests (about 2 GB in .venv).
INSTALLED_ALL := $(if $(filter command line,$(origin BIN)),,$(BIN)/.installed-all)
REPORTS := report-mnist report-fashion_mnist report-cifar10 report-svhn

.DEFAULT_GOAL := help
.PHONY: help setup install-all data data-fashion_mnist train test test-slow test-cluster lint clean report $(REPORTS) ablation $(ABLATIONS) seeds-mnist

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-21s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

$(BIN)/.installed-all: $(BIN)/.installed
	$(BIN)/python -m pip install -e '.[dev,reference,bench,sweep]'
	touch $@

setup: $(BIN)/.installed data  ## create .venv, install cnnvsdnn with its dev tools, fetch MNIST

data: $(INSTALLED)  ## fetch MNIST into the cache (CNNVSDNN_DATA_DIR, default ~/.cache/cnnvsdnn)
	$(BIN)/cnnvsdnn data fetch mnist

data-fashion_mnist: $(INSTALLED)  ## Fashion-MNIST from Debian's package dataset-fashion-mnist (needs root/apt)
	apt-get install -y dataset-fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist)
	$(BIN)/cnnvsdnn data fetch fashion_mnist

train: $(INSTALLED)  ## the main job: the study's CNN on MNIST, 2000 steps (ARGS='model=dnn ...')
	$(BIN)/cnnvsdnn train $(ARGS)

install-all: $(INSTALLED_ALL)  ## also the extras: Keras (reference column), PyTorch (bench), launchers

test: $(INSTALLED_ALL)  ## run the test suite with every extra installed (the tests need no network)
	$(PYTEST) $(ARGS)

test-slow: $(INSTALLED_ALL)  ## also the slow tests
	$(PYTEST) -m "slow or not slow" $(ARGS)

test-cluster: $(INSTALLED_ALL)  ## sweeps on a throw-away SLURM cluster (root, Debian; apt-installs slurm-wlm etc. if missing)
	tests/cluster/cluster.sh run -- $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/cluster $(ARGS)

report: $(REPORTS)  ## all the study's tables and figures (a dataset that cannot be had is skipped)

report-mnist: $(INSTALLED)  ## tables VI-VII and figures into outputs/report/mnist (trains what is missing)
	$(BIN)/cnnvsdnn report --experiment mnist $(ARGS)

report-fashion_mnist: $(INSTALLED)  ## the same for Fashion-MNIST (no published values)
	$(BIN)/cnnvsdnn report --experiment fashion_mnist $(ARGS)

report-cifar10: $(INSTALLED)  ## tables IV-V and figures of CIFAR-10 (10000 steps per model)
	$(BIN)/cnnvsdnn report --experiment cifar10 $(ARGS)

report-svhn: $(INSTALLED)  ## tables VIII-IX and figures of SVHN (20000 steps per model)
	$(BIN)/cnnvsdnn report --experiment svhn $(ARGS)

ABLATIONS := ablation-mnist ablation-fashion_mnist ablation-cifar10 ablation-svhn

ablation: $(ABLATIONS)  ## the section 5.10 ablation on every dataset whose data is present

ablation-mnist: $(INSTALLED)  ## filters 3/8/16/32, pooling, 2nd conv, ELU; 5 seeds: outputs/ablation/mnist
	$(BIN)/cnnvsdnn ablation mnist $(ARGS)

ablation-fashion_mnist: $(INSTALLED)  ## the same on Fashion-MNIST
	$(BIN)/cnnvsdnn ablation fashion_mnist $(ARGS)

ablation-cifar10: $(INSTALLED)  ## the same on CIFAR-10 (skipped without its data)
	$(BIN)/cnnvsdnn ablation cifar10 $(ARGS)

ablation-svhn: $(INSTALLED)  ## the same on SVHN (skipped without its data)
	$(BIN)/cnnvsdnn ablation svhn $(ARGS)

seeds-mnist: $(INSTALLED)  ## DNN against CNN over 5 seeds, paired: outputs/seeds/mnist
	$(BIN)/cnnvsdnn ablation mnist --models dnn,cnn --baseline dnn --out outputs/seeds $(ARGS)

lint: $(INSTALLED)  ## ruff
	$(BIN)/ruff check src tests

clean:  ## remove .venv and build leftovers (keeps outputs/ and the data cache)
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
