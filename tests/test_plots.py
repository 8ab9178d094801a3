"""Figures: valid, non-trivial PNGs that show what they claim (curves, dev points, bars)."""


import numpy as np
import pytest
from matplotlib.image import imread

from cnnvsdnn.errors import CnnvsdnnError
from cnnvsdnn.evaluation.figures import moving_average, plot_f1_comparison, plot_training
from cnnvsdnn.run.log import RunLog, read_log

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000  # a real figure, not an empty canvas
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _has_colour(path, hex_colour, min_pixels=50):
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    img = imread(path)[..., :3]
    return np.count_nonzero(np.abs(img - rgb).max(axis=-1) < 0.02) >= min_pixels


def _log(tmp_path, n_steps=2000, eval_every=100):
    rng = np.random.default_rng(0)
    steps = np.arange(1, n_steps + 1)
    acc_true = 0.98 - 0.88 * np.exp(-steps / 100)
    path = tmp_path / "log.h5"
    with RunLog(path, "dataset: mnist\n") as log:
        for start in range(0, n_steps, 100):  # as the trainer does: ~100 steps per append
            s = steps[start:start + 100]
            log.append_train(s, -np.log(acc_true[s - 1]) * rng.lognormal(0, 0.3, s.size),
                             np.clip(acc_true[s - 1] + rng.normal(0, 0.02, s.size), 0, 1))
            if s[-1] % eval_every == 0:
                log.append_dev(int(s[-1]), -np.log(acc_true[s[-1] - 1]), acc_true[s[-1] - 1])
    return read_log(path)


def test_plot_training_from_a_real_log(tmp_path):
    out = plot_training(_log(tmp_path), tmp_path / "figs" / "training.png", "MNIST, CNN")
    assert out == tmp_path / "figs" / "training.png"
    width, height = _png_size(out)
    assert (width, height) == (1080, 780)
    assert _has_colour(out, "#d62728")  # the dev evaluations
    assert _has_colour(out, "#1f77b4")  # the smoothed training curve


def test_plot_training_without_dev_points_or_data(tmp_path):
    log = _log(tmp_path, n_steps=300, eval_every=10**9)
    assert len(log["dev"]["step"]) == 0
    out = plot_training(log, tmp_path / "nodev.png", "no dev")
    _png_size(out)
    assert not _has_colour(out, "#d62728")
    empty = {g: {k: np.empty(0) for k in ("step", "cost", "accuracy")} for g in ("train", "dev")}
    _png_size(plot_training(empty, tmp_path / "empty.png", "empty"))


def test_plot_training_handles_diverged_costs(tmp_path):
    log = _log(tmp_path, n_steps=300)
    log["train"]["cost"][150:] = np.nan
    log["train"]["accuracy"][150:] = 0.1
    _png_size(plot_training(log, tmp_path / "nan.png", "diverged"))


def test_moving_average_is_centred():
    x = np.arange(10, dtype=float)
    np.testing.assert_allclose(moving_average(x, 3)[1:-1], x[1:-1])  # linear: no lag
    np.testing.assert_allclose(moving_average(x, 3)[[0, -1]], [0.5, 8.5])
    np.testing.assert_allclose(moving_average(np.full(7, 2.0), 4), 2.0)
    assert moving_average(np.empty(0), 5).size == 0
    gap = moving_average(np.array([1.0, np.nan, 3.0, np.inf, np.nan, np.nan, np.nan, 5.0]), 3)
    np.testing.assert_allclose(gap, [1.0, 2.0, 3.0, 3.0, np.nan, np.nan, 5.0, 5.0])


def test_plot_f1_comparison(tmp_path):
    f1 = {"DNN": [0.53, 0.60, 0.31], "CNN": [0.60, 0.60, 0.40], "Keras": [0.63, 0.61, 0.43]}
    out = plot_f1_comparison(f1, ["airplane", "automobile", "bird"], tmp_path / "f1.png",
                             "CIFAR-10 F1")
    _png_size(out)
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):
        assert _has_colour(out, colour, min_pixels=500)  # one set of bars per model
    with pytest.raises(CnnvsdnnError, match="3 classes"):
        plot_f1_comparison({"DNN": [0.5, 0.5]}, ["a", "b", "c"], tmp_path / "x.png", "t")


def test_unwritable_destination(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CnnvsdnnError, match="cannot write figure"):
        plot_f1_comparison({"DNN": [0.5]}, ["a"], blocker / "f1.png", "t")
