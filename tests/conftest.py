"""Shared fixtures: a data cache holding synthetic MNIST in the official IDX format, and a
helper that runs the real ``cnnvsdnn`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic import write_mnist

N_TRAIN, N_TEST = 1200, 300
# A tiny but complete run: every file of the run directory, in seconds.
# the run directory's figures (seconds a run) only where a test looks at them
TINY = ["train.steps=30", "train.eval_every=10", "train.dev_size=200", "train.batch_size=32",
        "data.verify=false", "engine.threads=1", "train.figures=false"]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """$CNNVSDNN_DATA_DIR with synthetic MNIST (official file names and format) in mnist/."""
    root = tmp_path_factory.mktemp("data")
    write_mnist(root / "mnist", n_train=N_TRAIN, n_test=N_TEST, seed=0)
    return root


@pytest.fixture()
def data_env(data_dir, monkeypatch) -> dict:
    """Environment for CLI subprocesses (and this process) that uses the synthetic cache."""
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(data_dir))
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_cli(args: list[str], env: dict, cwd: Path | None = None, timeout: float = 300):
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("cnnvsdnn")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cnnvsdnn"]
    return subprocess.run(cmd + list(args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
