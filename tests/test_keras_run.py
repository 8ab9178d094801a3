"""``engine=keras`` end to end on synthetic MNIST: the run directory of a numba run, both
protocols, seeded, and the user-facing errors (issue 6)."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from cnnvsdnn.config import compose_config, validate
from cnnvsdnn.engines import keras as ke
from cnnvsdnn.errors import ConfigError
from cnnvsdnn.run import train
from cnnvsdnn.run.log import read_log
from cnnvsdnn.run.schedule import study_epochs
from tests.conftest import TINY, run_cli

HAVE_KERAS = (importlib.util.find_spec("keras") is not None
              and importlib.util.find_spec("tensorflow") is not None)
needs_keras = pytest.mark.skipif(
    not HAVE_KERAS, reason="the optional extra 'reference' (keras 3, tensorflow-cpu) is not "
                           "installed; pip install 'cnnvsdnn[reference]'")
QUIET = [*TINY, "progress=false"]
FILES = {"config.yaml", "log.h5", "metrics.json", "predictions_test.npz", "params.npz",
         "tables.md"}
FIGURES = {"training.png", "gains.png", "confusion.png", "mistakes.png"}


def _keras_cfg(*overrides):
    return compose_config([*QUIET, "engine=keras", *overrides])


@needs_keras
def test_ours_protocol_tracks_the_numba_run(data_env, tmp_path):
    """Same initial weights, batches and Adam: the per-step costs of the two engines agree."""
    train(compose_config(QUIET), tmp_path / "numba")
    train(_keras_cfg("engine.protocol=ours", "train.figures=true"), tmp_path / "keras")

    assert FILES | FIGURES <= {p.name for p in (tmp_path / "keras").iterdir()}
    a, b = read_log(tmp_path / "numba" / "log.h5"), read_log(tmp_path / "keras" / "log.h5")
    assert np.array_equal(a["train"]["step"], b["train"]["step"])
    assert np.array_equal(a["dev"]["step"], b["dev"]["step"])
    np.testing.assert_allclose(b["train"]["cost"][:10], a["train"]["cost"][:10], atol=1e-4)
    np.testing.assert_allclose(b["train"]["cost"], a["train"]["cost"], atol=2e-2)
    assert a["train"]["cost"][-1] < 0.5 * a["train"]["cost"][0]  # it learned, so this is a test

    m = json.loads((tmp_path / "keras" / "metrics.json").read_text())
    assert (m["engine"], m["protocol"], m["steps"]) == ("keras", "ours", 30)
    assert set(m["splits"]) == {"train", "dev", "test"}
    mn = json.loads((tmp_path / "numba" / "metrics.json").read_text())
    assert abs(m["splits"]["test"]["accuracy"] - mn["splits"]["test"]["accuracy"]) < 0.05

    pa, pb = np.load(tmp_path / "numba" / "params.npz"), np.load(tmp_path / "keras" / "params.npz")
    assert set(pa.files) == set(pb.files)  # the numba layout, so a numba model can load them
    for k in pa.files:
        if k.endswith((".w", ".b")):
            assert pa[k].shape == pb[k].shape, k
    assert pb["params"].shape == pa["params"].shape
    pred = np.load(tmp_path / "keras" / "predictions_test.npz")
    assert pred["probs"].shape == (300, 10) and pred["labels"].shape == (300,)
    np.testing.assert_allclose(pred["probs"].sum(1), 1, atol=1e-5)


@needs_keras
def test_study_protocol_fits_epochs_and_is_seeded(data_env, tmp_path):
    """Keras's fit: batch fit_batch_size, per-epoch dev evaluation; same seed, same numbers."""
    over = ("engine.protocol=study", "engine.epochs=2", "engine.fit_batch_size=64")
    train(_keras_cfg(*over), tmp_path / "a")
    train(_keras_cfg(*over), tmp_path / "b")

    steps = 2 * -(-1000 // 64)  # 1000 training images after the 200-image dev split
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert (m["protocol"], m["epochs"], m["batch_size"], m["steps"]) == ("study", 2, 64, steps)
    assert m["splits"]["test"]["accuracy"] > 0.5  # synthetic classes are easy to learn
    log = read_log(tmp_path / "a" / "log.h5")
    assert list(log["train"]["step"]) == list(range(1, steps + 1))
    assert list(log["dev"]["step"]) == [steps // 2, steps]
    assert np.all(np.isfinite(log["train"]["cost"]))
    assert log["train"]["cost"][-5:].mean() < log["train"]["cost"][:5].mean()
    written = {p.name for p in (tmp_path / "a").iterdir()}
    assert FILES <= written and not FIGURES & written  # train.figures=false (TINY)
    again = read_log(tmp_path / "b" / "log.h5")
    np.testing.assert_array_equal(log["train"]["cost"], again["train"]["cost"])


@needs_keras
def test_cli_trains_with_keras(data_env, tmp_path):
    """The user's command; the dispatch on engine.name lives in the CLI."""
    out = tmp_path / "run"
    r = run_cli(["train", *TINY, "engine=keras", "engine.epochs=1", f"hydra.run.dir={out}"],
                env=data_env)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert (m["engine"], m["protocol"], m["epochs"]) == ("keras", "study", 1)
    assert "absl" not in r.stderr and "oneDNN" not in r.stderr  # TensorFlow kept quiet


@pytest.mark.parametrize("override, words", [
    ("engine.protocol=bogus", "engine.protocol='bogus' is not one of study, ours"),
    ("engine.epochs=0", "engine.epochs=0 must be positive"),
    ("engine.fit_batch_size=-1", "engine.fit_batch_size=-1 must be positive"),
    ("train.resume=true", "cannot be resumed"),
])
def test_bad_keras_settings_are_one_line_config_errors(override, words):
    with pytest.raises(ConfigError) as ex:
        validate(_keras_cfg(override))
    assert words in str(ex.value) and "\n" not in str(ex.value)


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setattr(ke, "_K", None)
    monkeypatch.setitem(sys.modules, "keras", None)  # makes `import keras` fail
    with pytest.raises(ConfigError, match=r"pip install 'cnnvsdnn\[reference\]'"):
        ke.load_keras()


def test_study_epochs_default_to_the_studys():
    assert study_epochs(_keras_cfg()) == 10
    assert study_epochs(_keras_cfg("dataset=svhn")) == 20
    assert study_epochs(_keras_cfg("engine.epochs=3")) == 3
