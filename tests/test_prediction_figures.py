"""The figures of a run's test predictions: the cumulative gains curves (their area ratio is
the metrics' AR, ties included), the confusion matrix and the most confident mistakes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from cnnvsdnn.evaluation.figures import (
    confusion_layout,
    gains_area_ratio,
    gains_curve,
    gains_layout,
    plot_confusion,
    plot_gains,
    plot_mistakes,
    plot_training,
    training_layout,
)
from cnnvsdnn.evaluation.metrics import area_ratio, split_metrics
from tests.test_plots import _has_colour, _png_size


def _scores(kind, n=500, seed=0):
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.3
    s = rng.random(n) + positive * 0.4
    if kind == "ties":
        s = np.round(s, 1)  # a dozen distinct values: long runs of tied scores
    elif kind == "perfect":
        s = positive.astype(float) + rng.random(n) * 0.1
    elif kind == "reversed":
        s = -positive.astype(float)
    elif kind == "constant":
        s = np.full(n, 0.5)
    return s, positive


@pytest.mark.parametrize("kind", ["continuous", "ties", "perfect", "reversed", "constant"])
def test_area_of_the_gains_curve_is_the_metrics_area_ratio(kind):
    s, pos = _scores(kind)
    x, y = gains_curve(s, pos)
    assert x[0] == y[0] == 0 and x[-1] == len(s) and y[-1] == pos.sum()
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)
    ar = gains_area_ratio(x, y)
    assert ar == pytest.approx(area_ratio(s, pos), abs=1e-12)
    assert ar == pytest.approx({"perfect": 1.0, "reversed": -1.0, "constant": 0.0}.get(kind, ar))


def test_gains_curve_by_hand():
    # sorted by score: + - + (tie: + -) -  -> hits 1, 1, 2, then the tied pair adds 1 at once
    s = np.array([0.9, 0.8, 0.7, 0.5, 0.5, 0.1])
    pos = np.array([1, 0, 1, 1, 0, 0], bool)
    x, y = gains_curve(s, pos)
    assert x.tolist() == [0, 1, 2, 3, 5, 6] and y.tolist() == [0, 1, 1, 2, 3, 3]
    # area 0.5+1+1.5+5+3 = 11; baseline 6*3/2 = 9; best 4.5 + 9 = 13.5: AR = 2/4.5
    assert gains_area_ratio(x, y) == pytest.approx(2 / 4.5)
    assert gains_area_ratio(*gains_curve(s, np.zeros(6, bool))) == 0.0


def test_plot_gains_prints_the_tables_ar(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 800)
    logits = rng.normal(0, 1, (800, 4)) + 2.0 * np.eye(4)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs[:50] = np.round(probs[:50], 2)  # some ties
    out, ars = plot_gains(probs, labels, ["a", "b", "c", "d"], tmp_path / "g.png", "test")
    assert ars == pytest.approx(split_metrics(probs, labels)["ar"], abs=1e-12)
    w, h = _png_size(out)
    assert w > 900 and h > 300
    assert _has_colour(out, "#1f77b4", min_pixels=200)  # the model curves
    img = imread(out)[..., :3]
    blue_fill = np.abs(img - np.array([0.714, 0.816, 0.902])).max(-1) < 0.06
    assert blue_fill.sum() > 20000  # the shaded model − baseline areas


def test_plot_gains_with_many_classes_and_an_absent_one(tmp_path):
    rng = np.random.default_rng(1)
    k = 25
    labels = rng.integers(0, k - 1, 600)  # the last class has no test image
    probs = rng.dirichlet(np.ones(k), 600)
    _, ars = plot_gains(probs, labels, [f"c{i}" for i in range(k)], tmp_path / "g.png", "t")
    assert len(ars) == k and ars[-1] == 0.0
    assert _png_size(tmp_path / "g.png")[1] > 800  # 20 panels in 4 rows


def test_confusion_and_mistakes(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 90)
    probs = np.full((90, 3), 0.1)
    pred = labels.copy()
    pred[:7] = (labels[:7] + 1) % 3  # seven mistakes
    probs[np.arange(90), pred] = 0.8
    X = rng.integers(0, 256, (90, 8, 8, 3), dtype=np.uint8)
    w, h = _png_size(plot_confusion(probs, labels, ["x", "y", "z"], tmp_path / "c.png", "t"))
    assert w > 400 and h > 400
    img = imread(tmp_path / "c.png")[..., :3]
    dark_blue = (img[..., 0] < 0.15) & (img[..., 2] > 0.35) & (img[..., 2] < 0.6)
    assert dark_blue.sum() > 3000  # the three diagonal cells (and the colour bar's top)
    _png_size(plot_mistakes(X, probs, labels, ["x", "y", "z"], tmp_path / "m.png", "t"))
    assert _has_colour(tmp_path / "m.png", "#b00000", min_pixels=20)  # the captions
    perfect = np.eye(3)[labels]
    out = plot_mistakes(X[..., :1], perfect, labels, ["x", "y", "z"], tmp_path / "n.png", "t")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_training_and_confusion_on_prepared_layouts_draw_the_same_pixels(tmp_path):
    """The training and confusion figures laid out beforehand (training_layout,
    confusion_layout) come out pixel for pixel as drawn from nothing; a layout made for
    another title or other classes is not used."""
    rng = np.random.default_rng(4)
    steps = np.arange(1, 301)
    log = {"train": {"step": steps, "cost": 2.0 / np.sqrt(steps) + rng.random(300) * 0.1,
                     "accuracy": np.minimum(0.5 + steps / 400 + rng.random(300) * 0.1, 1.0)},
           "dev": {"step": np.arange(100, 301, 100), "cost": np.array([0.4, 0.3, 0.25]),
                   "accuracy": np.array([0.8, 0.85, 0.9])}}
    plain = plot_training(log, tmp_path / "t.png", "run")
    ready = plot_training(log, tmp_path / "t_ready.png", "run", training_layout("run"))
    other = plot_training(log, tmp_path / "t_other.png", "run", training_layout("another"))
    for path in (ready, other):
        np.testing.assert_array_equal(imread(plain), imread(path))
    labels = rng.integers(0, 4, 500)
    probs = rng.random((500, 4)) + 2.0 * np.eye(4)[labels]
    names = ["cat", "dog", "horse", "ship"]  # "horse": the names below are turned 45 degrees
    plain = plot_confusion(probs, labels, names, tmp_path / "c.png", "run")
    ready = plot_confusion(probs, labels, names, tmp_path / "c_ready.png", "run",
                           confusion_layout(names, "run"))
    other = plot_confusion(probs, labels, names, tmp_path / "c_other.png", "run",
                           confusion_layout(names[:3], "run"))
    for path in (ready, other):
        np.testing.assert_array_equal(imread(plain), imread(path))


def test_plot_gains_on_a_prepared_layout_draws_the_same_pixels(tmp_path):
    """The run's drawing process lays the gains figure out while the run trains
    (gains_layout); the figure drawn on it is pixel for pixel the one drawn from nothing, and a
    layout made for other classes or another title is not used."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 6, 900)
    logits = rng.normal(0, 1, (900, 6)) + 3.0 * np.eye(6)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    classes = [f"class {i}" for i in range(6)]
    plain, ars = plot_gains(probs, labels, classes, tmp_path / "plain.png", "run")
    assert max(ars) > 0.9  # some panels have their zoomed inset, some may not
    ready, ars2 = plot_gains(probs, labels, classes, tmp_path / "ready.png", "run",
                             gains_layout(6, "run"))
    assert ars2 == ars
    np.testing.assert_array_equal(imread(plain), imread(ready))
    other, _ = plot_gains(probs, labels, classes, tmp_path / "other.png", "run",
                          gains_layout(7, "another run"))
    np.testing.assert_array_equal(imread(plain), imread(other))
