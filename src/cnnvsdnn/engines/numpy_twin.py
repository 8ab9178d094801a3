"""The plain-NumPy twin: every layer type's forward and backward pass as its registry entry
defines it (``layer_types.py``), the loss and Adam, written independently of the kernels.

Float64 by default. The tests check it against centred finite differences and the numba engine
against it; ``cnnvsdnn bench`` times it (``NumpyEngine``, float32) as the baseline a reader can
follow line by line.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from .base import AdamSettings, Engine, split_flat
from .layer_types import Network, network


def softmax_ce(logits, y):
    """Returns (cost, accuracy, dlogits, probs) for integer labels y: the mean cross-entropy
    via log-sum-exp per sample, and its gradient (P - Y)/m."""
    B = logits.shape[0]
    sh = logits - logits.max(axis=1, keepdims=True)
    logp = sh - np.log(np.exp(sh).sum(axis=1, keepdims=True))
    probs = np.exp(logp)
    onehot = np.eye(logits.shape[1])[y]
    cost = -(onehot * logp).sum() / B
    acc = float(np.mean(logits.argmax(axis=1) == y))
    return cost, acc, (probs - onehot) / B, probs


def _layer_params(params, i, t):
    return {k.rsplit(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{i}.{t.name}.")}


def forward(net: Network, params, x):
    """The logits, and each layer's cache for :func:`backward`."""
    caches, a = [], x
    for i, (t, spec) in enumerate(zip(net.types(), net.specs)):
        a, cache = t.forward(spec, _layer_params(params, i, t), a)
        caches.append(cache)
    return a, caches


def backward(net: Network, params, caches, d):
    """Gradients of every parameter, keyed like ``params``, from the logits' gradient ``d``."""
    grads = {}
    for i in range(len(net.specs) - 1, -1, -1):
        t, spec = net.types()[i], net.specs[i]
        d, g = t.backward(spec, _layer_params(params, i, t), caches[i], d)
        grads.update({f"{i}.{t.name}.{k}": v for k, v in g.items()})
    return grads


def loss_and_grad(layers, input_shape, n_classes, params, x, y, dtype=np.float64):
    """(cost, accuracy, grads, logits) with grads keyed like params ("0.conv.w", ...)."""
    net = layers if isinstance(layers, Network) else network(layers, input_shape, n_classes)
    p = {k: np.asarray(v, dtype) for k, v in params.items()}
    logits, caches = forward(net, p, np.asarray(x, dtype))
    cost, acc, d, _ = softmax_ce(logits, np.asarray(y))
    return cost, acc, backward(net, p, caches, d), logits


def adam_step(p, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, eps_sign="plus"):
    """Textbook Adam, step number t >= 1; returns new (p, m, v). ``eps_sign="minus"``: the
    study's code's update p - lr mhat / (sqrt(vhat) - eps)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    mhat = m / (1 - beta1**t)
    vhat = v / (1 - beta2**t)
    denom = np.sqrt(vhat) + eps if eps_sign == "plus" else np.sqrt(vhat) - eps
    return p - lr * mhat / denom, m, v


class NumpyEngine(Engine):
    """The twin as an engine, in float32 like the others (for ``cnnvsdnn bench``)."""

    name = "numpy"

    def __init__(self, net, params, adam: AdamSettings, batch_size, threads):
        super().__init__(net, params, adam, batch_size, threads)
        self._limit = threadpool_limits(limits=threads, user_api="blas")
        self.params = {k: np.asarray(v, np.float32).copy() for k, v in params.items()}
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.t = 0

    def train_step(self, X, idx, y):
        x = X[idx].astype(np.float32) / 255
        cost, acc, grads, _ = loss_and_grad(self.net, None, None, self.params, x, y,
                                            dtype=np.float32)
        self.t += 1
        a = self.adam
        for k in self.params:
            self.params[k], self.m[k], self.v[k] = adam_step(
                self.params[k], grads[k], self.m[k], self.v[k], self.t, a.lr, a.beta1,
                a.beta2, a.eps, a.eps_sign)
        return float(cost), acc

    def predict_proba(self, X, chunk=1000):
        out = []
        for s in range(0, len(X), chunk):
            logits, _ = forward(self.net, self.params, X[s:s + chunk].astype(np.float32) / 255)
            out.append(softmax_ce(logits, np.zeros(len(logits), np.int64))[3])
        return np.concatenate(out).astype(np.float32)

    def layer_params(self):
        return self.params

    def load_state(self, state):
        """Parameters and Adam's moments and step from the numba engine's ``state()``."""
        self.params, self.m, self.v = (split_flat(self.net, state[k])
                                       for k in ("params", "adam_m", "adam_v"))
        self.t = int(state["adam_t"])
