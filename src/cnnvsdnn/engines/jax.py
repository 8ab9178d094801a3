"""JAX as a peer engine (``cnnvsdnn bench``, the cross-check tests): the same network, each layer
as its registry entry's ``jax`` builder computes it, our parameters copied in, and the whole
training step -- gather, forward, loss, gradients, ``optax.adam`` -- one ``jax.jit`` function
(JAX's fastest way to train on a CPU). optax's Adam is the textbook form.

Needs the ``bench`` extra (``pip install 'cnnvsdnn[bench]'``); JAX is imported on first use.
XLA sizes its CPU thread pool from the cores the process may use when it starts, so
``threads`` below the core count restricts the process's CPU affinity before JAX loads (the
bench runs each engine in a process of its own).
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import numpy as np

from ..errors import ConfigError
from .base import Engine, split_flat
from .layer_types import Network, network

_KIT = None


def _limit_cores(threads: int) -> None:
    """Let this process run on ``threads`` cores only, before XLA starts its thread pool."""
    if "jax" in sys.modules or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if 0 < threads < len(cores):
        os.sched_setaffinity(0, cores[:threads])


def load_jax(threads: int = 0):
    """The kit the registry's ``jax`` builders take: ``jax``, ``jnp``, ``lax``, ``optax``."""
    global _KIT
    if _KIT is None:
        _limit_cores(threads)
        try:
            import jax
            import optax
        except ImportError as ex:
            raise ConfigError(f"the jax engine needs JAX and optax ({ex}): pip install "
                              f"'cnnvsdnn[bench]'") from None
        _KIT = SimpleNamespace(jax=jax, jnp=jax.numpy, lax=jax.lax, optax=optax)
    return _KIT


def _layer_params(params: dict, i: int, name: str) -> dict:
    return {k.rsplit(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{i}.{name}.")}


def build_forward(layers, input_shape=None, n_classes=10):
    """``(net, logits(params, x))``: the network's forward pass in JAX, NHWC float input,
    ``params`` named as ``Network.param_shapes()`` (our layouts: the builders take them as
    they are)."""
    kit = load_jax()
    net = layers if isinstance(layers, Network) else network(layers, input_shape, n_classes)
    types, specs = net.types(), net.specs

    def logits(params, x):
        for i, (t, spec) in enumerate(zip(types, specs)):
            x = t.jax(spec, _layer_params(params, i, t.name), x, kit)
        return x

    return net, logits


def loss_fn(logits_fn):
    """``loss(params, x, y) -> (mean cross-entropy, logits)`` for integer labels ``y``."""
    kit = load_jax()

    def loss(params, x, y):
        z = logits_fn(params, x)
        return kit.optax.softmax_cross_entropy_with_integer_labels(z, y).mean(), z

    return loss


class JaxEngine(Engine):
    name = "jax"
    resumable = False

    def __init__(self, net, params, adam, batch_size, threads):
        super().__init__(net, params, adam, batch_size, threads)
        if adam.form != "textbook":
            raise NotImplementedError(f"the jax engine computes textbook Adam, not {adam.form}")
        if adam.eps_sign != "plus":
            raise ConfigError("the jax engine computes optax.adam, whose eps is added; "
                              "optimizer.eps_sign=minus needs the numba or keras engine")
        kit = self.kit = load_jax(threads)
        jax, jnp, optax = kit.jax, kit.jnp, kit.optax
        _, logits = build_forward(net)
        self.params = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in params.items()}
        opt = optax.adam(adam.lr, b1=adam.beta1, b2=adam.beta2, eps=adam.eps)
        self.opt_state = opt.init(self.params)
        self._opt = opt
        grad = jax.value_and_grad(loss_fn(logits), has_aux=True)

        def step(params, opt_state, X, idx, y):
            x = X[idx].astype(jnp.float32) / 255.0
            (loss, z), g = grad(params, x, y)
            updates, opt_state = opt.update(g, opt_state, params)
            acc = jnp.mean(jnp.argmax(z, axis=1) == y)
            return optax.apply_updates(params, updates), opt_state, loss, acc

        def proba(params, X):
            return jax.nn.softmax(logits(params, X.astype(jnp.float32) / 255.0), axis=1)

        self._step = jax.jit(step, donate_argnums=(0, 1))
        self._proba = jax.jit(proba)
        self._X, self._Xd = None, None

    def _device(self, X):
        if self._X is not X:  # the dataset on the device once, not per batch
            self._X, self._Xd = X, self.kit.jnp.asarray(np.ascontiguousarray(X))
        return self._Xd

    def train_step(self, X, idx, y):
        jnp = self.kit.jnp
        self.params, self.opt_state, loss, acc = self._step(
            self.params, self.opt_state, self._device(X), jnp.asarray(idx, jnp.int32),
            jnp.asarray(y, jnp.int32))
        return float(loss), float(acc)

    def predict_proba(self, X, chunk=1000):
        jnp = self.kit.jnp
        out = [np.asarray(self._proba(self.params, jnp.asarray(X[s:s + chunk])))
               for s in range(0, len(X), chunk)]
        return np.concatenate(out).astype(np.float32) if out else \
            np.empty((0, self.net.n_classes), np.float32)

    def layer_params(self):
        return {k: np.asarray(v) for k, v in self.params.items()}

    def load_state(self, state):
        """Parameters and Adam's moments and step from another engine's ``state()`` (the
        bench starts every engine from the same trained state)."""
        jnp = self.kit.jnp
        named = {k: {n: jnp.asarray(a) for n, a in split_flat(self.net, state[k]).items()}
                 for k in ("params", "adam_m", "adam_v")}
        self.params = named["params"]
        adam, *rest = self._opt.init(self.params)  # optax.adam: (ScaleByAdamState, empty)
        self.opt_state = (adam._replace(count=jnp.asarray(int(state["adam_t"]), jnp.int32),
                                        mu=named["adam_m"], nu=named["adam_v"]), *rest)

    def info(self):
        return {**super().info(), "jax": self.kit.jax.__version__}

    def about(self):
        return (f"JAX {self.kit.jax.__version__}: jax.jit of the whole step, optax.adam, "
                f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}"
                f" cores", None)
