"""Bad input through the real command: one line on stderr, the exit code of SPEC section 9, no
traceback, nothing overwritten. (Config errors are in test_cli.py and test_config.py.)"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from tests.conftest import TINY, run_cli
from tests.synthetic import write_cifar10, write_mnist, write_svhn


def _one_line(res, code: int, *words: str) -> None:
    assert res.returncode == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) >= 1 and lines[-1].startswith("cnnvsdnn: error: "), res.stderr
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in lines[-1], lines[-1]


@pytest.mark.parametrize("override,words", [
    ("engine=foo", "unknown engine 'foo'"),
    ("model.layers.0.stride=2", "layer 0"),  # 28 + 2 - 3 is odd: the stride does not divide
    ("train.batch_size=59900", "larger than the training split"),
    ("train.eval_every=50", "larger than train.steps"),
])
def test_more_bad_configs(tmp_path, data_env, override, words):
    res = run_cli(["train", *TINY, override, f"hydra.run.dir={tmp_path / 'run'}"], data_env)
    _one_line(res, 2, words)
    assert not (tmp_path / "run").exists()



def test_hydra_modes_that_exclude_each_other(tmp_path, data_env):
    res = run_cli(["train", "-m", "model=dnn,cnn", "--cfg", "hydra",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}"], data_env)
    _one_line(res, 2, "--cfg and --multirun cannot be combined")
    assert not (tmp_path / "sweep").exists()


def test_corrupt_data_is_never_trained_on(tmp_path, data_env):
    root = tmp_path / "data"
    write_mnist(root / "mnist", n_train=600, n_test=100)
    f = root / "mnist" / "train-images-idx3-ubyte.gz"
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:-1000]))  # truncated content
    env = dict(data_env, CNNVSDNN_DATA_DIR=str(root))
    res = run_cli(["train", *TINY, f"hydra.run.dir={tmp_path / 'run'}"], env)
    _one_line(res, 2, "train-images-idx3-ubyte")
    assert not (tmp_path / "run" / "log.h5").exists()


def test_divergence_stops_at_once_and_keeps_the_log(tmp_path, data_env):
    run = tmp_path / "run"
    res = run_cli(["train", *TINY, "optimizer.lr=1e30", f"hydra.run.dir={run}"], data_env)
    _one_line(res, 1, "training diverged at step", "optimizer.lr")
    assert (run / "log.h5").exists() and not (run / "metrics.json").exists()


@pytest.mark.parametrize("arrays,words", [
    ({"probs": np.full((4, 3), 1 / 3)}, "labels"),
    ({"labels": np.zeros(4, int)}, "probs"),
    ({"probs": np.full((4, 3), 1 / 3), "labels": np.zeros(5, int)}, "4"),
])
def test_score_rejects_bad_prediction_files(tmp_path, data_env, arrays, words):
    f = tmp_path / "p.npz"
    np.savez(f, **arrays)
    _one_line(run_cli(["score", str(f)], data_env), 2, words)
    _one_line(run_cli(["score", str(tmp_path / "missing.npz")], data_env), 2, "missing.npz")


def test_score_json_is_the_metrics_object(tmp_path, data_env):
    f = tmp_path / "p.npz"
    probs = np.eye(3)[[0, 1, 2, 2]] * 0.9 + 0.05
    np.savez(f, probs=probs, labels=np.array([0, 1, 2, 1]))
    res = run_cli(["score", str(f), "--json"], data_env)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)
    assert set(m) == {"n", "accuracy", "count", "f1", "ar", "f1_weighted", "ar_weighted"}
    assert m["n"] == 4 and m["accuracy"] == 0.75 and m["count"] == [1, 2, 1]


def test_report_and_summarize_on_a_directory_without_runs(tmp_path, data_env):
    _one_line(run_cli(["report", str(tmp_path)], data_env), 2)
    _one_line(run_cli(["summarize", str(tmp_path)], data_env), 2)


def test_data_export_gives_exactly_the_written_pixels(tmp_path, data_env):
    root = tmp_path / "data"
    cifar = write_cifar10(root / "cifar10", n_train=60, n_test=20)
    svhn = write_svhn(root / "svhn", n_train=60, n_test=20)
    env = dict(data_env, CNNVSDNN_DATA_DIR=str(root))
    for name, want in (("cifar10", cifar), ("svhn", svhn)):
        out = tmp_path / f"{name}.npz"
        res = run_cli(["data", "export", name, "test", str(out), "--no-verify"], env)
        assert res.returncode == 0, res.stderr
        with np.load(out) as z:
            np.testing.assert_array_equal(z["X"], want["test_X"])
            np.testing.assert_array_equal(z["y"], want["test_y"])
            assert z["X"].dtype == np.uint8 and z["X"].shape[1:] == (32, 32, 3)
    bad = run_cli(["data", "export", "imagenet", "test", str(tmp_path / "x.npz")], env)
    _one_line(bad, 2, "imagenet")
