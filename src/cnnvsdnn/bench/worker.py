"""A bench worker: one engine in a process of its own, timing training steps and evaluation.

Started by ``cnnvsdnn bench`` as ``python -m cnnvsdnn.bench.worker ENGINE THREADS`` and driven by
JSON lines on stdin (``pretrain``, ``setup``, ``steps``, ``eval``), one JSON line answered on
stdout per request. Every engine is built from the same registry and the same parameters and
Adam state (``engines.create``, ``Engine.load_state``), reached by training ours on the input's
dataset (``pretrain``), and timed through the same interface (``Engine.train_step``) on batches
of that dataset's training images.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from .. import engines
from ..run.batches import BatchOrder
from .data import BenchData
from .names import ENGINES, INPUTS

N_EVAL = 5000  # images per evaluation pass (the development split's size)


def _images(inp: str, n_train: int | None, verify: bool):
    """The training images and labels of the input's dataset (the first ``n_train``)."""
    ds = BenchData(inp, verify).load()
    n = len(ds.train_y) if n_train is None else min(n_train, len(ds.train_y))
    return np.ascontiguousarray(ds.train_X[:n]), ds.train_y[:n].astype(np.int64)


class Timer:
    """One engine on one model, input shape and thread count, from a given state."""

    def __init__(self, engine, layers, inp, threads, batch_size, state=None, n_train=None,
                 verify=True):
        name, options = ENGINES[engine]
        net = engines.network(layers, INPUTS[inp], 10)
        params = engines.init_params(net, np.random.default_rng(0))
        self.engine = engines.create(name, net, params, engines.AdamSettings(), batch_size,
                                     threads, **options)
        if state is not None:
            with np.load(state) as f:
                self.engine.load_state({k: f[k] for k in f.files})
        self.X, self.y = _images(inp, n_train, verify)
        self.order = BatchOrder(len(self.y), batch_size, np.random.default_rng(1))
        self.step_ms(1)
        self.engine.predict_proba(self.X[:1000])  # compile the evaluation path too

    def step_ms(self, steps):
        batches = [next(self.order) for _ in range(steps)]
        t0 = time.perf_counter()
        for idx in batches:
            self.engine.train_step(self.X, idx, self.y[idx])
        return (time.perf_counter() - t0) * 1e3 / steps

    def eval_images_per_s(self):
        X = self.X[:N_EVAL]
        t0 = time.perf_counter()
        self.engine.predict_proba(X)
        return len(X) / (time.perf_counter() - t0)


def pretrain(layers, inp, threads, batch_size, steps, out, n_train=None, verify=True) -> dict:
    """Train our engine ``steps`` steps from the seed-0 initialisation on the input's dataset
    and save its state (parameters, Adam's moments and step) to ``out`` (.npz)."""
    net = engines.network(layers, INPUTS[inp], 10)
    params = engines.init_params(net, np.random.default_rng(0))
    engine = engines.create("numba", net, params, engines.AdamSettings(), batch_size, threads)
    X, y = _images(inp, n_train, verify)
    order = BatchOrder(len(y), batch_size, np.random.default_rng(0))
    t0 = time.perf_counter()
    cost = float("nan")
    for _ in range(steps):
        idx = next(order)
        cost, _ = engine.train_step(X, idx, y[idx])
    state = engine.state()
    with open(out, "wb") as f:
        np.savez(f, **state)
    m = state["adam_m"]
    tiny = np.finfo(np.float32).tiny
    return {"s": time.perf_counter() - t0, "cost": cost,
            "denormal_free": bool(not np.any((m != 0) & (np.abs(m) < tiny)))}


def serve(engine: str, threads: int) -> None:
    """The worker's loop: answer each request line with one JSON line."""
    timer = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        if op == "pretrain":
            reply = pretrain(**req, threads=threads)
        elif op == "setup":
            t0 = time.perf_counter()
            timer = Timer(engine, threads=threads, **req)
            line, note = timer.engine.about()
            reply = {"first_s": time.perf_counter() - t0, "info": timer.engine.info(),
                     "about": line, "note": note}
        elif op == "steps":
            reply = {"ms": timer.step_ms(req["steps"])}
        else:
            reply = {"ips": timer.eval_images_per_s()}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    try:
        serve(sys.argv[1], int(sys.argv[2]))
    except Exception as ex:  # one line for the parent to point at, not a traceback
        print(f"cnnvsdnn bench: the {sys.argv[1]} engine failed: {type(ex).__name__}: {ex}",
              file=sys.stderr)
        sys.exit(1)
