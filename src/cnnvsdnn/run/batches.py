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
                 last: str = "next_epoch"):
        if last not in LAST_BATCH:
            raise ValueError(f"last={last!r} is not one of {', '.join(LAST_BATCH)}")
        self.n, self.batch_size, self.rng, self.last = n, batch_size, rng, last
        self.order, self.pos = rng.permutation(n), 0

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        b = self.batch_size
        if self.pos + b <= self.n:
            self.pos += b
            return self.order[self.pos - b:self.pos]
        head = self.order[self.pos:]
        if self.last == "same_epoch" and head.size:
            batch = np.concatenate([head, self.order[:b - head.size]])
            self.order, self.pos = self.rng.permutation(self.n), 0
            return batch
        self.order = self.rng.permutation(self.n)
        if self.last != "next_epoch":
            self.pos = 0
            return head if head.size else next(self)
        self.pos = b - head.size
        return np.concatenate([head, self.order[:self.pos]])

    def state(self) -> dict:
        return {"order": self.order, "pos": self.pos, "rng_state": self.rng.bit_generator.state}

    def load(self, order, pos: int, rng_state: dict) -> None:
        self.order, self.pos = np.asarray(order), int(pos)
        self.rng.bit_generator.state = rng_state
