"""Pieces of the training loop that are plain functions."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvsdnn.evaluation.metrics import cross_entropy
from cnnvsdnn.run.batches import BatchOrder


def test_batches_cover_each_epoch_once_and_wrap():
    n, b = 10, 4
    gen = BatchOrder(n, b, np.random.default_rng(0))
    batches = [next(gen) for _ in range(5)]  # 20 indices = two epochs exactly
    assert all(x.size == b for x in batches)
    flat = np.concatenate(batches)
    assert sorted(flat[:10]) == list(range(10))  # epoch 1, incl. the wrapped batch's head
    assert sorted(flat[10:]) == list(range(10))  # epoch 2
    assert not np.array_equal(flat[:10], flat[10:])  # reshuffled each epoch


def test_batch_order_is_seeded():
    a = BatchOrder(100, 7, np.random.default_rng(5))
    b = BatchOrder(100, 7, np.random.default_rng(5))
    c = BatchOrder(100, 7, np.random.default_rng(6))
    xa = [next(a) for _ in range(30)]
    assert all(np.array_equal(x, y) for x, y in zip(xa, [next(b) for _ in range(30)]))
    assert not all(np.array_equal(x, y) for x, y in zip(xa, [next(c) for _ in range(30)]))


def test_cross_entropy_matches_definition_and_survives_zero_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 2])
    assert cross_entropy(probs, labels) == pytest.approx(-(np.log(0.7) + np.log(0.8)) / 2, 1e-6)
    zero = np.array([[1.0, 0.0]], np.float32)
    ce = cross_entropy(zero, np.array([1]))
    assert np.isfinite(ce) and ce > 700


def test_batch_order_state_round_trip_continues_identically():
    a = BatchOrder(50, 16, np.random.default_rng(1))
    for _ in range(7):  # past an epoch boundary
        next(a)
    saved = a.state()
    saved = {"order": saved["order"].copy(), "pos": saved["pos"], "rng_state": saved["rng_state"]}
    expected = [next(a).copy() for _ in range(9)]
    b = BatchOrder(50, 16, np.random.default_rng(999))
    b.load(**saved)
    assert all(np.array_equal(x, next(b)) for x in expected)
