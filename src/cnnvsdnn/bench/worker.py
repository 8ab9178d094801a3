"""A bench worker: one engine in a process of its own, timing training steps and evaluation.

Started by ``cnnvsdnn bench`` as ``python -m cnnvsdnn.bench.worker ENGINE`` and driven by JSON
lines on stdin (``setup``, ``steps``, ``eval``), one JSON line answered on stdout per request.
Every engine is built from the same registry and initial parameters
(``engines.create``) and timed through the same interface (``Engine.train_step``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import numpy as np

from .. import engines

INPUTS = {"28x28x1": (28, 28, 1), "32x32x3": (32, 32, 3)}
N_IMAGES = 2048  # random images the batches are drawn from
N_EVAL = 5000  # images per evaluation pass (the development split's size)
# bench engine -> (engines.create name, options)
ENGINES = {"numba": ("numba", {}), "torch": ("torch", {"variant": "eager"}),
           "numpy": ("numpy", {})}


def have_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def _data(shape, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (N_IMAGES, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, N_IMAGES).astype(np.int64)
    batches = [rng.choice(N_IMAGES, batch_size, replace=False) for _ in range(16)]
    return X, y, batches


class Timer:
    """One engine on one model, input shape and thread count."""

    def __init__(self, engine, layers, shape, threads, batch_size):
        name, options = ENGINES[engine]
        net = engines.network(layers, shape, 10)
        params = engines.init_params(net, np.random.default_rng(0))
        self.engine = engines.create(name, net, params, engines.AdamSettings(), batch_size,
                                     threads, **options)
        self.X, self.y, self.batches = _data(shape, batch_size)
        self.step_ms(1)
        self.engine.predict_proba(self.X[:1000])  # compile the evaluation path too

    def step_ms(self, steps):
        t0 = time.perf_counter()
        for i in range(steps):
            idx = self.batches[i % len(self.batches)]
            self.engine.train_step(self.X, idx, self.y[idx])
        return (time.perf_counter() - t0) * 1e3 / steps

    def eval_images_per_s(self):
        X = np.resize(self.X, (N_EVAL, *self.X.shape[1:]))
        t0 = time.perf_counter()
        self.engine.predict_proba(X)
        return N_EVAL / (time.perf_counter() - t0)


def serve(engine: str) -> None:
    """The worker's loop: answer each request line with one JSON line."""
    timer = None
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "setup":
            t0 = time.perf_counter()
            timer = Timer(engine, req["layers"], INPUTS[req["input"]], req["threads"],
                          req["batch_size"])
            reply = {"first_s": time.perf_counter() - t0}  # build + first step (+ JIT)
        elif req["op"] == "steps":
            reply = {"ms": timer.step_ms(req["steps"])}
        else:
            reply = {"ips": timer.eval_images_per_s()}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    try:
        serve(sys.argv[1])
    except Exception as ex:  # one line for the parent to point at, not a traceback
        print(f"cnnvsdnn bench: the {sys.argv[1]} engine failed: {type(ex).__name__}: {ex}",
              file=sys.stderr)
        sys.exit(1)
