"""Metrics of SPEC section 6: the study's own predictions reproduce its published tables V and
VII; hand-computed cases; AR against its pairwise and its gains-curve definitions."""

import json
from pathlib import Path

import numpy as np
import pytest

from cnnvsdnn.errors import ConfigError
from cnnvsdnn.evaluation.metrics import (
    area_ratio,
    format_split_table,
    load_predictions,
    split_metrics,
)
from tests.data import published

DATA = Path(__file__).parent / "data"
RUNS = sorted(published.ACCURACY)


@pytest.mark.parametrize("run", RUNS)
def test_reproduces_published_tables(run):
    m = split_metrics(*load_predictions(DATA / f"{run}.npz"))
    assert m["n"] == 10000
    assert m["count"] == published.COUNT[run.split("_")[0]]
    assert round(m["accuracy"], 4) == published.ACCURACY[run]
    assert [round(x, 4) for x in m["f1"]] == published.F1[run]
    assert [round(x, 4) for x in m["ar"]] == published.AR[run]
    assert round(m["f1_weighted"], 4) == published.F1_WEIGHTED[run]
    assert round(m["ar_weighted"], 4) == published.AR_WEIGHTED[run]


def test_result_is_plain_json():
    m = split_metrics(*load_predictions(DATA / "mnist_dnn.npz"))
    assert set(m) == {"n", "accuracy", "count", "f1", "ar", "f1_weighted", "ar_weighted"}
    assert json.loads(json.dumps(m)) == m
    assert type(m["n"]) is int and all(type(c) is int for c in m["count"])
    assert all(type(x) is float for x in m["f1"] + m["ar"])


def test_hand_computed_f1_and_never_predicted_class():
    labels = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])  # class 2 is never predicted
    probs = np.eye(3)[pred] * 0.8 + 0.1
    m = split_metrics(probs, labels)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["count"] == [2, 2, 1]
    # class 0: P = 1/2, R = 1/2; class 1: P = 2/3, R = 1 -> F1 = 0.8; class 2: TP = 0 -> 0
    assert m["f1"] == pytest.approx([0.5, 0.8, 0.0])
    assert m["f1_weighted"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 0) / 5)


def test_argmax_ties_go_to_lowest_index():
    probs = np.array([[0.4, 0.4, 0.2], [0.1, 0.45, 0.45], [1 / 3, 1 / 3, 1 / 3]])
    m = split_metrics(probs, np.array([1, 2, 2]))
    # predicted 0, 1, 0: nothing is right
    assert m["accuracy"] == 0.0 and m["f1"] == [0.0, 0.0, 0.0]
    m = split_metrics(probs, np.array([0, 1, 0]))
    assert m["accuracy"] == 1.0


def test_area_ratio_perfect_inverse_and_ties():
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.1])
    pos = np.array([True, True, False, False, False])
    assert area_ratio(scores, pos) == 1.0
    assert area_ratio(-scores, pos) == -1.0
    assert area_ratio(np.full(5, 0.5), pos) == 0.0  # all tied: the baseline
    # pairs (pos, neg): 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1 -> AUC 3.5/4, AR 0.75
    assert area_ratio(np.array([0.9, 0.5, 0.5, 0.1]),
                      np.array([True, True, False, False])) == pytest.approx(0.75)


def test_class_absent_from_labels_has_ar_zero():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=20)
    labels = rng.integers(0, 2, size=20)  # class 2 never occurs
    m = split_metrics(probs, labels)
    assert m["count"][2] == 0 and m["ar"][2] == 0.0 and m["f1"][2] == 0.0
    assert np.isfinite(m["ar_weighted"])


def _ar_pairwise(scores, pos):
    """Definition: P(score of a positive > score of a negative), ties half, as 2*AUC - 1."""
    s_pos, s_neg = scores[pos][:, None], scores[~pos][None, :]
    auc = ((s_pos > s_neg) + 0.5 * (s_pos == s_neg)).mean()
    return 2 * auc - 1


def _ar_gains_curve(scores, pos):
    """The study's definition: areas under the cumulative gains curve (no ties)."""
    hits = np.concatenate([[0], np.cumsum(pos[np.argsort(-scores, kind="stable")])])
    n, n_j = pos.size, int(pos.sum())
    model = np.sum((hits[1:] + hits[:-1]) / 2)
    baseline = n * n_j / 2
    best = n_j * n_j / 2 + (n - n_j) * n_j
    return (model - baseline) / (best - baseline)


def test_area_ratio_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(5, 400))
        scores = np.round(rng.random(n), 1)  # few distinct values: many ties
        pos = rng.random(n) < rng.uniform(0.1, 0.9)
        if pos.all() or not pos.any():
            continue
        assert area_ratio(scores, pos) == pytest.approx(_ar_pairwise(scores, pos), abs=1e-12)


def test_area_ratio_equals_gains_curve_area_ratio():
    rng = np.random.default_rng(2)
    for _ in range(20):
        n = int(rng.integers(5, 400))
        pos = rng.random(n) < 0.3
        pos[0], pos[1] = True, False
        scores = rng.random(n) + 0.5 * pos  # informative, no ties
        assert area_ratio(scores, pos) == pytest.approx(_ar_gains_curve(scores, pos), abs=1e-12)


def test_split_metrics_rejects_bad_shapes():
    with pytest.raises(ConfigError):
        split_metrics(np.zeros((3, 2)), np.zeros(4, int))
    with pytest.raises(ConfigError):
        split_metrics(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ConfigError):
        split_metrics(np.zeros((3, 2)), np.array([0, 1, 1]), n_classes=3)
    with pytest.raises(ConfigError, match="nan"):
        split_metrics(np.array([[0.5, np.nan], [0.5, 0.5]]), np.array([0, 1]))


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"probs": np.ones((4, 3)) / 3}, "lacks array"),
        ({"probs": np.ones((4, 3)) / 3, "labels": np.zeros(5, int)}, "shape"),
        ({"probs": np.ones(4), "labels": np.zeros(4, int)}, r"\(N,K\)"),
        ({"probs": np.ones((4, 3)) / 3, "labels": np.array([0, 1, 3, 0])}, "0..2"),
        ({"probs": np.ones((4, 3)) / 3, "labels": np.array([0.0, 1, 2, 0])}, "integers"),
        ({"probs": np.full((4, 3), np.nan), "labels": np.zeros(4, int)}, "nan"),
    ],
)
def test_load_predictions_rejects_bad_files(tmp_path, arrays, message):
    path = _save(tmp_path / "p.npz", **arrays)
    with pytest.raises(ConfigError, match=message) as err:
        load_predictions(path)
    assert "\n" not in str(err.value)


def test_load_predictions_rejects_missing_and_non_npz(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_predictions(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("hello")
    with pytest.raises(ConfigError, match="not a readable .npz"):
        load_predictions(junk)


def test_load_predictions_round_trip(tmp_path):
    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    path = _save(tmp_path / "p.npz", probs=probs, labels=np.array([0, 1], np.uint8))
    p, y = load_predictions(path)
    np.testing.assert_array_equal(p, probs)
    np.testing.assert_array_equal(y, [0, 1])


def test_format_split_table():
    m = split_metrics(*load_predictions(DATA / "cifar10_cnn.npz"))
    table = format_split_table(m, published.CIFAR10_CLASSES)
    lines = table.splitlines()
    assert lines[0] == "| Class | Count | F1 | AR |"
    assert "| Airplane | 1000 | 0.5963 | 0.8286 |" in lines
    assert "| Truck | 1000 | 0.5500 | 0.8021 |" in lines
    assert "| **Weighted average** | 10000 | 0.5162 | 0.7760 |" in lines
    assert "Accuracy: 0.5202 (N = 10000)" in lines
    with pytest.raises(ConfigError):
        format_split_table(m, published.CIFAR10_CLASSES[:9])


def test_average_ranks_match_scipy_rankdata():
    """Our tie-averaging ranks (they spare every run the import of scipy.stats) equal scipy's."""
    from scipy.stats import rankdata

    from cnnvsdnn.evaluation.metrics import average_ranks

    rng = np.random.default_rng(0)
    for x in (rng.random(1000), rng.integers(0, 7, 500).astype(float),
              np.round(rng.random(300), 2).astype(np.float32), np.array([3.0]), np.zeros(5)):
        np.testing.assert_array_equal(average_ranks(x), rankdata(x, method="average"))
