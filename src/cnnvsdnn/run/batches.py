"""The order in which a run draws its training batches; its state goes into checkpoints."""

from __future__ import annotations

import numpy as np


class BatchOrder:
    """Endless batches of indices: a fresh shuffle each epoch.

    ``wrap=True`` (the corrected protocol): the last partial batch of an epoch is filled from
    the next epoch's order, so every batch has ``batch_size`` images. ``wrap=False`` (Keras's
    ``fit``): an epoch ends with a smaller batch of what is left.
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator, wrap: bool = True):
        self.n, self.batch_size, self.rng, self.wrap = n, batch_size, rng, wrap
        self.order, self.pos = rng.permutation(n), 0

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        b = self.batch_size
        if self.pos + b <= self.n:
            self.pos += b
            return self.order[self.pos - b:self.pos]
        head = self.order[self.pos:]
        self.order = self.rng.permutation(self.n)
        if not self.wrap:
            self.pos = 0
            return head if head.size else next(self)
        self.pos = b - head.size
        return np.concatenate([head, self.order[:self.pos]])

    def state(self) -> dict:
        return {"order": self.order, "pos": self.pos, "rng_state": self.rng.bit_generator.state}

    def load(self, order, pos: int, rng_state: dict) -> None:
        self.order, self.pos = np.asarray(order), int(pos)
        self.rng.bit_generator.state = rng_state
