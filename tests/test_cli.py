"""The real command in a subprocess: a tiny training run writes every file of SPEC section 9;
bad input ends in one line and exit code 2 without touching anything."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import N_TEST, N_TRAIN, TINY, run_cli

SPLIT_KEYS = {"n", "accuracy", "count", "f1", "ar", "f1_weighted", "ar_weighted"}


def _train(tmp_path, env, *extra, name="run"):
    run_dir = tmp_path / name
    res = run_cli(["train", *TINY, *extra, f"hydra.run.dir={run_dir}"], env)
    return res, run_dir


@pytest.mark.parametrize("model,figures", [("cnn", True), ("dnn", False)])
def test_train_writes_every_file_of_the_run_directory(tmp_path, data_env, model, figures):
    # with figures on 2 threads: on Linux half the figures come from a forked drawing process
    res, run = _train(tmp_path, data_env, f"model={model}", f"train.figures={str(figures).lower()}",
                      f"engine.threads={2 if figures else 1}")
    assert res.returncode == 0, res.stderr
    assert "wall time" in res.stdout
    steal = json.loads((run / "metrics.json").read_text())["host_steal"]  # a VM host's share
    assert (steal is None) if not Path("/proc/stat").exists() else 0 <= steal <= 1
    for f in (".hydra/config.yaml", "config.yaml", "log.h5", "metrics.json",
              "predictions_test.npz", "params.npz", "tables.md"):
        assert (run / f).is_file(), f
    for f in ("training.png", "gains.png", "confusion.png", "mistakes.png"):
        assert (run / f).is_file() == figures, f

    with h5py.File(run / "log.h5", "r") as h5:
        assert list(h5["train/step"][:]) == list(range(1, 31))
        assert h5["train/cost"].shape == h5["train/accuracy"].shape == (30,)
        assert list(h5["dev/step"][:]) == [10, 20, 30]
        assert np.all(np.isfinite(h5["train/cost"][:])) and np.all(h5["dev/cost"][:] > 0)
        assert np.all((h5["dev/accuracy"][:] >= 0) & (h5["dev/accuracy"][:] <= 1))
        assert "steps: 30" in h5.attrs["config"]

    m = json.loads((run / "metrics.json").read_text())
    assert (m["dataset"], m["model"], m["engine"], m["seed"], m["steps"]) == (
        "mnist", model, "numba", 0, 30)
    assert {s: m["splits"][s]["n"] for s in ("train", "dev", "test")} == {
        "train": N_TRAIN - 200, "dev": 200, "test": N_TEST}
    for split in m["splits"].values():
        assert SPLIT_KEYS <= set(split) and len(split["f1"]) == len(split["ar"]) == 10
        assert sum(split["count"]) == split["n"]
    # The synthetic digits are learnable: 30 steps are far better than chance (0.1).
    assert m["splits"]["test"]["accuracy"] > 0.5

    with np.load(run / "predictions_test.npz") as p:
        assert p["probs"].shape == (N_TEST, 10) and p["labels"].shape == (N_TEST,)
        np.testing.assert_allclose(p["probs"].sum(1), 1, atol=1e-4)
        acc = np.mean(p["probs"].argmax(1) == p["labels"])
    assert acc == pytest.approx(m["splits"]["test"]["accuracy"])
    if figures:
        for f in ("training.png", "gains.png", "confusion.png", "mistakes.png"):
            assert (run / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    assert "accuracy" in (run / "tables.md").read_text()


def test_same_config_and_seed_give_the_same_numbers(tmp_path, data_env):
    a, run_a = _train(tmp_path, data_env, "seed=3", name="a")
    b, run_b = _train(tmp_path, data_env, "seed=3", name="b")
    c, run_c = _train(tmp_path, data_env, "seed=4", name="c")
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + b.stderr + c.stderr
    splits = [json.loads((r / "metrics.json").read_text())["splits"] for r in (run_a, run_b, run_c)]
    assert splits[0] == splits[1]
    assert splits[0] != splits[2]
    with h5py.File(run_a / "log.h5") as ha, h5py.File(run_b / "log.h5") as hb:
        np.testing.assert_array_equal(ha["train/cost"][:], hb["train/cost"][:])


def test_finished_run_directory_is_never_overwritten(tmp_path, data_env):
    first, run = _train(tmp_path, data_env)
    assert first.returncode == 0, first.stderr
    before = (run / "metrics.json").read_bytes(), (run / "log.h5").read_bytes()
    again, _ = _train(tmp_path, data_env, "seed=1")
    assert again.returncode == 2
    assert "already holds a finished run" in again.stderr
    assert ((run / "metrics.json").read_bytes(), (run / "log.h5").read_bytes()) == before
    assert "seed: 0" in (run / ".hydra" / "config.yaml").read_text()


@pytest.mark.parametrize("override", [
    "train.steps=-1", "train.batch_size=abc", "model=foo", "optimizer.lr=0",
    "train.dev_split=middle", "dataset=imagenet", "train.nosuchkey=1",
])
def test_bad_config_is_one_line_and_exit_2_before_any_work(tmp_path, data_env, override):
    res, run = _train(tmp_path, data_env, override)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnvsdnn: error: "), res.stderr
    assert "Traceback" not in res.stderr
    assert not run.exists()  # nothing was created


def test_unwritable_output_directory_is_one_line_and_exit_2(tmp_path, data_env):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    res = run_cli(["train", *TINY, f"hydra.run.dir={blocker / 'run'}"], data_env)
    assert res.returncode == 2 and "cannot write the output directory" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "not a directory"


def test_bad_value_in_a_sweep_fails_before_the_first_job(tmp_path, data_env):
    sweep = tmp_path / "sweep"
    res = run_cli(["train", "-m", *TINY, "model=dnn,foo", f"hydra.sweep.dir={sweep}"], data_env)
    assert res.returncode == 2 and "unknown model 'foo'" in res.stderr
    assert not sweep.exists()


def test_multirun_sweeps_models(tmp_path, data_env):
    sweep = tmp_path / "sweep"
    res = run_cli(["train", "-m", *TINY, "model=dnn,cnn", f"hydra.sweep.dir={sweep}"], data_env)
    assert res.returncode == 0, res.stderr
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert [json.loads((r / "metrics.json").read_text())["model"] for r in runs] == ["dnn", "cnn"]


def test_missing_data_is_one_line_and_exit_2(tmp_path, data_env):
    env = dict(data_env, CNNVSDNN_DATA_DIR=str(tmp_path / "empty"))
    res, _ = _train(tmp_path, env, "dataset=cifar10", "train.steps=10", "train.eval_every=10")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("cnnvsdnn: error: ") and "cifar10" in lines[-1]
    assert "Traceback" not in res.stderr


def test_help_lists_commands_and_keys(data_env):
    top = run_cli(["--help"], data_env)
    assert top.returncode == 0 and "train" in top.stdout and "score" in top.stdout
    train_help = run_cli(["train", "--help"], data_env)
    assert train_help.returncode == 0
    for key in ("dataset", "model", "batch_size", "eval_every", "dev_split", "lr", "threads"):
        assert key in train_help.stdout
    bad = run_cli(["nosuchcommand"], data_env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_every_commands_help_is_plain_text():
    """--help of every command reads as text: no reST markup left from the docstrings it
    quotes."""
    from cnnvsdnn.cli.commands import _parser

    parser = _parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"bench", "predict", "summarize", "ablation", "report", "data"} <= set(subs.choices)
    for name, sub in subs.choices.items():
        text = sub.format_help()
        assert "``" not in text and ":func:" not in text, name


def test_python_dash_m_works(data_env):
    res = subprocess.run([sys.executable, "-m", "cnnvsdnn", "--version"], capture_output=True,
                         text=True, env=data_env)
    assert res.returncode == 0 and res.stdout.startswith("cnnvsdnn ")


def test_the_command_skips_its_last_garbage_collection_a_caller_does_not():
    """The console script freezes the heap as it ends (the interpreter's last collection
    walked numba's and matplotlib's objects for up to 0.8 s); main(argv) called from Python
    (a test, a notebook) leaves the caller's garbage collector alone."""
    code = ("import gc, sys; from cnnvsdnn.cli import main\n"
            "main(['--version']); print(gc.get_freeze_count())\n"
            "sys.argv = ['cnnvsdnn', '--version']; main(); print(gc.get_freeze_count())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()  # version, freeze count, version, freeze count
    assert lines[0].startswith("cnnvsdnn ") and lines[1] == "0" and int(lines[3]) > 10000


def test_configs_are_found_from_an_installed_wheel(tmp_path, data_env):
    """Build the wheel, install it into a bare folder and compose a config from there."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(root)], check=True)
    wheel = next((tmp_path / "dist").glob("cnnvsdnn-*.whl"))
    assert "cnnvsdnn/conf/model/cnn.yaml" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = dict(data_env, PYTHONPATH=str(site))
    res = subprocess.run([sys.executable, "-c", "from cnnvsdnn.config import conf_dir; "
                          "print(conf_dir())"], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip()) == site / "cnnvsdnn" / "conf"
    cfg = subprocess.run([sys.executable, "-m", "cnnvsdnn", "train", "model=dnn", "--cfg", "job"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert cfg.returncode == 0, cfg.stderr
    assert "name: dnn" in cfg.stdout
