"""The order in which a run draws its training batches; its state goes into checkpoints."""

from __future__ import annotations

import numpy as np

LAST_BATCH = ("next_epoch", "same_epoch", "smaller")


class BatchOrder:
    """Endless batches of indices: a fresh shuffle each epoch. An epoch's last partial batch:

    - ``next_epoch`` (the corrected protocol): filled from the next epoch's order, so every
      batch has ``batch_size`` images;
    - ``same_epoch`` (the study's code, ``train.last_batch=same_epoch``): filled from the start
      of the same epoch's order (those images are seen twice in it); the next epoch starts a
      new order, so an epoch is ceil(n / batch_size) batches;
    - ``smaller`` (Keras's ``fit``): an epoch ends with a smaller batch of what is left.
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator,
                 last: str = "next_epoch", labels: np.ndarray | None = None):
        if last not in LAST_BATCH:
            raise ValueError(f"last={last!r} is not one of {', '.join(LAST_BATCH)}")
        self.n, self.batch_size, self.rng, self.last = n, batch_size, rng, last
        self.labels = None if labels is None else np.asarray(labels)
        self._reorder(rng.permutation(n))
        self.pos = 0

    def _reorder(self, order: np.ndarray) -> None:
        """An epoch's order, and the labels in that order: a batch's labels are then one
        contiguous slice. (Gathered by index from the whole training set, 128 labels lying
        anywhere in it missed the cache after every step's kernels: ~5 us a step, 0.4 % of an
        MNIST DNN step.)"""
        self.order = order
        self._y = order if self.labels is None else self.labels[order]

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        return self.next_with_labels()[0]

    def next_with_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch's indices and their labels (given ``labels``; else the indices)."""
        b = self.batch_size
        if self.pos + b <= self.n:
            self.pos += b
            return self.order[self.pos - b:self.pos], self._y[self.pos - b:self.pos]
        head, y_head = self.order[self.pos:], self._y[self.pos:]
        if self.last == "same_epoch" and head.size:
            k = b - head.size
            batch = (np.concatenate([head, self.order[:k]]), np.concatenate([y_head, self._y[:k]]))
            self._reorder(self.rng.permutation(self.n))
            self.pos = 0
            return batch
        self._reorder(self.rng.permutation(self.n))
        if self.last != "next_epoch":
            self.pos = 0
            return (head, y_head) if head.size else self.next_with_labels()
        self.pos = b - head.size
        return (np.concatenate([head, self.order[:self.pos]]),
                np.concatenate([y_head, self._y[:self.pos]]))

    def state(self) -> dict:
        return {"order": self.order, "pos": self.pos, "rng_state": self.rng.bit_generator.state}

    def load(self, order, pos: int, rng_state: dict) -> None:
        self._reorder(np.asarray(order))
        self.pos = int(pos)
        self.rng.bit_generator.state = rng_state
