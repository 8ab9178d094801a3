"""The numba engine behind the common interface (``engines/base.py``): a :class:`Model` and
its :class:`Adam`."""

from __future__ import annotations

import numpy as np

from ..base import Engine
from . import blas
from ._jit import fallback_note, threading_layer
from .adam import Adam
from .model import Model
from .threads import set_threads

# Bump when a change alters the numbers a run produces (summation order included): finished
# runs record it in metrics.json, and `report` and the experiments refuse to reuse a run of
# another revision. 1: runs made before revisions were recorded; 2: dense layers via sgemm,
# split along their inputs, activation fused; 3: denormal floats flushed to zero in every kernel
# (numbers change only where a denormal would have appeared); 4: evaluation splits dense layers
# along the batch (probabilities change in the last bits; training's numbers do not); 5: the
# dense layers' sgemm is MKL's on Intel CPUs (``blas.py``; other CPUs' numbers do not change).
REVISION = 5


class NumbaEngine(Engine):
    name = "numba"
    revision = REVISION

    def __init__(self, net, params, adam, batch_size, threads):
        super().__init__(net, params, adam, batch_size, threads)
        if adam.form != "textbook":
            raise NotImplementedError(f"the numba engine computes textbook Adam, not {adam.form}")
        plan = set_threads(threads)
        self.threads = plan.threads
        self.model = Model(net, batch_size=batch_size, params=params, threads=plan)
        self.opt = Adam(self.model.n_params, lr=adam.lr, beta1=adam.beta1, beta2=adam.beta2,
                        eps=adam.eps, eps_sign=adam.eps_sign)

    def train_step(self, X, idx, y):
        cost, acc = self.model.loss_and_grad_rows(X, idx, y)
        self.opt.step(self.model.params, self.model.grads)
        return cost, acc

    def predict_proba(self, X, chunk=1000):
        return self.model.predict_proba(X, chunk=chunk)

    def eval_input(self, X):
        """Padded into the first conv layer's planes, or scaled to float32, once
        (``Model.eval_input``): evaluated with the same bits as ``X``, faster."""
        return self.model.eval_input(X) if X.dtype == np.uint8 else X

    def warm_up(self, X):
        self.model.warm_up(X)
        self.opt.warm_up()

    def layer_params(self):
        return self.model.layer_params()

    def info(self):
        return {**super().info(), "threading_layer": threading_layer(), "blas": blas.library()}

    def about(self):
        return (f"numba engine: {self.threads} thread{'s' * (self.threads > 1)} on the "
                f"{threading_layer()} threading layer, BLAS {blas.library()}",
                "; ".join(filter(None, (fallback_note(), blas.fallback_note()))) or None)

    def flat_params(self):
        return self.model.params

    def state(self):
        return {"params": self.model.params, "adam_m": self.opt.m, "adam_v": self.opt.v,
                "adam_t": self.opt.t}

    def load_state(self, state):
        self.model.load_params(state["params"])
        self.opt.load_state(state["adam_m"], state["adam_v"], state["adam_t"])
