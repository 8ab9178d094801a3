"""``cnnvsdnn bench``: our engine's speed against peers measured in the same run.

Engines: ``numba`` (ours), ``torch`` (PyTorch, when installed: the same architecture and thread
count), ``numpy`` (the plain-NumPy twin the tests check the kernels against). For each model,
input shape and thread count: the median milliseconds of one training step (batch 128:
gather + forward + backward + Adam) and evaluation images per second. JIT compile time is
reported separately, never inside a step time. Ratios are printed against ``numba``.
Each engine runs in a fresh process of its own, after a warm-up; numba's and torch's
repeats alternate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cnnvsdnn.errors import CnnvsdnnError, ConfigError

INPUTS = {"28x28x1": (28, 28, 1), "32x32x3": (32, 32, 3)}
N_IMAGES = 2048  # random images the batches are drawn from
N_EVAL = 5000  # images per evaluation pass (the development split's size)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="PATH", help="also write the rows as a JSON list")
    p.add_argument("--models", default="dnn,cnn", help="models of conf/model/ (dnn,cnn)")
    p.add_argument("--inputs", default="28x28x1,32x32x3", help="input shapes (28x28x1,32x32x3)")
    p.add_argument("--threads", default="1,2", help="thread counts (1,2)")
    p.add_argument("--engines", default="numba,torch,numpy",
                   help="engines to time (numba,torch,numpy); torch is skipped when absent")
    p.add_argument("--steps", type=int, default=30, help="timed steps per repeat (30)")
    p.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported (5)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup", type=float, default=0.5,
                   help="seconds of untimed steps before each measurement (0.5)")


def run(ns: argparse.Namespace) -> int:
    from cnnvsdnn.console import wide_console

    console = wide_console()
    models = _split(ns.models)
    inputs = _split(ns.inputs)
    try:
        threads = [int(t) for t in _split(ns.threads)]
    except ValueError:
        raise ConfigError(f"--threads {ns.threads!r} must be integers like 1,2") from None
    engines = _split(ns.engines)
    for name in inputs:
        if name not in INPUTS:
            raise ConfigError(f"unknown input {name!r}; choose from {', '.join(INPUTS)}")
    for e in engines:
        if e not in _TIMERS:
            raise ConfigError(f"unknown engine {e!r}; choose from numba, torch, numpy")
    if ns.steps < 1 or ns.repeats < 1 or ns.batch_size < 1 or any(t < 1 for t in threads):
        raise ConfigError("--steps, --repeats, --batch-size and --threads must be positive")
    if ns.warmup < 0:
        raise ConfigError("--warmup must be >= 0 seconds")
    if "torch" in engines and not _have_torch():
        console.print("torch is not installed: skipping it (pip install torch==2.13.0)")
        engines = [e for e in engines if e != "torch"]
    layer_lists = {m: _layers(m) for m in models}

    rows, compile_s = [], {}
    workers = {e: _Worker(e) for e in engines}
    try:
        for threads_n in threads:
            for model in models:
                for inp in inputs:
                    cell = {"layers": layer_lists[model], "input": inp, "threads": threads_n,
                            "batch_size": ns.batch_size}
                    got = _time_cell(workers, cell, ns)
                    for engine, (first, ms, ips) in got.items():
                        if engine == "numba":
                            compile_s[f"{model} {inp}"] = max(
                                compile_s.get(f"{model} {inp}", 0), first)
                        rows.append({"engine": engine, "model": model, "input": inp,
                                     "threads": threads_n, "ms_per_step": round(ms, 4),
                                     "eval_images_per_s": round(ips, 1)})
                        console.print(f"  {engine:5s} {model:8s} {inp} threads={threads_n}: "
                                      f"{ms:8.3f} ms/step, {ips:10.0f} eval images/s",
                                      highlight=False)
    finally:
        for w in workers.values():
            w.close()
    _print_table(console, rows, compile_s)
    if ns.json:
        Path(ns.json).write_text(json.dumps(rows, indent=1))
        console.print(f"rows written to {ns.json}")
    return 0


def _time_cell(workers: dict, cell: dict, ns: argparse.Namespace) -> dict:
    """One model x input x threads cell on every engine: (first step s, median ms, eval img/s).

    numba's and torch's repeats alternate: on a shared machine the speed drifts by up to 2x
    within seconds, and alternation gives both the same conditions; a pause before each repeat
    lets the other's threads go idle. The NumPy twin, 10-30x slower and heavy on the caches,
    is timed after them, alone.
    """
    first = {e: w.call(op="setup", **cell)["first_s"] for e, w in workers.items()}
    out = {}
    for group in ([e for e in workers if e != "numpy"], [e for e in workers if e == "numpy"]):
        steps = {e: ns.steps if e != "numpy" else max(1, ns.steps // 10) for e in group}
        for e in group:  # the first ~0.1 s of a run can be 2x slow: page faults, thread
            t0 = time.perf_counter()  # pools and clocks settling
            while time.perf_counter() - t0 < ns.warmup:
                workers[e].call(op="steps", steps=steps[e])
        ms = {e: [] for e in group}
        for _ in range(ns.repeats):
            for e in group:
                time.sleep(0.05 if len(group) > 1 else 0)
                ms[e].append(workers[e].call(op="steps", steps=steps[e])["ms"])
        for e in group:
            out[e] = (first[e], statistics.median(ms[e]), workers[e].call(op="eval")["ips"])
    return {e: out[e] for e in workers}


class _Worker:
    """One engine in a fresh process of its own (``python -m cnnvsdnn.bench ENGINE``), driven
    by JSON lines over a pipe, so that no engine's libraries or thread pools (torch's OpenMP
    and oneDNN, numba's TBB workers) are loaded in another's process."""

    def __init__(self, engine: str):
        self.engine = engine
        self.proc = subprocess.Popen([sys.executable, "-m", "cnnvsdnn.bench", engine],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def call(self, **request) -> dict:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            raise CnnvsdnnError(f"the {self.engine} benchmark process stopped (exit "
                                f"{self.proc.wait()}); its error is printed above")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def _serve(engine: str) -> None:
    """The worker's loop: answer each request line of ``_Worker.call`` with one JSON line."""
    timer = None
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "setup":
            t0 = time.perf_counter()
            timer = _TIMERS[engine](req["layers"], INPUTS[req["input"]], req["threads"],
                                    req["batch_size"])
            reply = {"first_s": time.perf_counter() - t0}  # build + first step (+ JIT)
        elif req["op"] == "steps":
            reply = {"ms": timer.step_ms(req["steps"])}
        else:
            reply = {"ips": timer.eval_images_per_s()}
        print(json.dumps(reply), flush=True)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _layers(model: str) -> list[dict]:
    """The model's layer list as `cnnvsdnn train model=...` composes and validates it."""
    from omegaconf import OmegaConf

    from cnnvsdnn.cli import compose_config

    return OmegaConf.to_container(compose_config([f"model={model}"]).model.layers)


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _data(shape, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (N_IMAGES, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, N_IMAGES).astype(np.int64)
    batches = [rng.choice(N_IMAGES, batch_size, replace=False) for _ in range(16)]
    return X, y, batches


class _NumbaTimer:
    def __init__(self, layers, shape, threads, batch_size):
        from cnnvsdnn.engine import Adam, build_model, set_threads

        set_threads(threads)
        self.model = build_model(layers, input_shape=shape, n_classes=10,
                                 rng=np.random.default_rng(0), batch_size=batch_size)
        self.opt = Adam(self.model.n_params)
        self.X, self.y, self.batches = _data(shape, batch_size)
        self.xb = np.empty((batch_size, *shape), np.float32)
        self.step_ms(1)
        self.model.predict_proba(self.X[:1000])  # compile the evaluation path too

    def step_ms(self, steps):
        t0 = time.perf_counter()
        for i in range(steps):
            idx = self.batches[i % len(self.batches)]
            self.model.gather(self.X, idx, out=self.xb)
            self.model.loss_and_grad(self.xb, self.y[idx])
            self.opt.step(self.model.params, self.model.grads)
        return (time.perf_counter() - t0) * 1e3 / steps

    def eval_images_per_s(self):
        X = np.resize(self.X, (N_EVAL, *self.X.shape[1:]))
        t0 = time.perf_counter()
        self.model.predict_proba(X)
        return N_EVAL / (time.perf_counter() - t0)


class _NumpyTimer:
    """The plain-NumPy twin, in float32 like the others."""

    def __init__(self, layers, shape, threads, batch_size):
        from threadpoolctl import threadpool_limits

        from cnnvsdnn.engine import build_model, numpy_ref

        self._limit = threadpool_limits(limits=threads, user_api="blas")
        self.ref, self.layers, self.shape = numpy_ref, layers, shape
        model = build_model(layers, input_shape=shape, n_classes=10,
                            rng=np.random.default_rng(0), batch_size=batch_size)
        self.params = {k: v.copy() for k, v in model.layer_params().items()}
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.t = 0
        self.X, self.y, self.batches = _data(shape, batch_size)
        self.step_ms(1)

    def _forward_backward(self, x, y):
        return self.ref.loss_and_grad(self.layers, self.shape, 10, self.params, x, y,
                                      dtype=np.float32)

    def step_ms(self, steps):
        t0 = time.perf_counter()
        for i in range(steps):
            idx = self.batches[i % len(self.batches)]
            x = self.X[idx].astype(np.float32) / 255
            _, _, grads, _ = self._forward_backward(x, self.y[idx])
            self.t += 1
            for k in self.params:
                self.params[k], self.m[k], self.v[k] = self.ref.adam_step(
                    self.params[k], grads[k], self.m[k], self.v[k], self.t)
        return (time.perf_counter() - t0) * 1e3 / steps

    def eval_images_per_s(self):
        # the twin has no forward-only path: time forward+backward on chunks of 1000, a
        # generous bound for it (its evaluation would be at most this fast)
        X = np.resize(self.X, (N_EVAL, *self.X.shape[1:]))
        t0 = time.perf_counter()
        for s in range(0, N_EVAL, 1000):
            self._forward_backward(X[s:s + 1000].astype(np.float32) / 255,
                                   np.zeros(min(1000, N_EVAL - s), np.int64))
        return N_EVAL / (time.perf_counter() - t0)


class _TorchTimer:
    """The same architecture in PyTorch (NCHW), with torch.optim.Adam, same thread count."""

    def __init__(self, layers, shape, threads, batch_size):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        H, W, C = shape
        mods, c = [], C
        for lay in layers:
            t = lay["type"]
            if t == "conv":
                mods.append(torch.nn.Conv2d(c, lay["filters"], lay["kernel"],
                                            stride=lay.get("stride", 1),
                                            padding=lay.get("padding", 0)))
                c = lay["filters"]
            elif t == "maxpool":
                mods.append(torch.nn.MaxPool2d(lay["size"], lay.get("stride", lay["size"])))
            elif t == "activation":
                mods.append(torch.nn.ReLU() if lay["fn"] == "relu"
                            else torch.nn.ELU(lay.get("alpha", 1.0)))
            elif t == "flatten":
                mods.append(torch.nn.Flatten())
            elif t == "dense":
                mods.append(torch.nn.LazyLinear(lay["units"]))
        self.net = torch.nn.Sequential(*mods)
        self.net(torch.zeros(1, C, H, W))  # materialise the lazy layers
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X, self.y, self.batches = _data(shape, batch_size)
        self.Xt = torch.from_numpy(self.X)
        self.yt = torch.from_numpy(self.y)
        self.step_ms(1)

    def step_ms(self, steps):
        torch = self.torch
        t0 = time.perf_counter()
        for i in range(steps):
            idx = torch.from_numpy(self.batches[i % len(self.batches)])
            x = self.Xt[idx].permute(0, 3, 1, 2).float().div_(255)
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(self.net(x), self.yt[idx])
            loss.backward()
            self.opt.step()
        return (time.perf_counter() - t0) * 1e3 / steps

    def eval_images_per_s(self):
        torch = self.torch
        X = torch.from_numpy(np.resize(self.X, (N_EVAL, *self.X.shape[1:])))
        t0 = time.perf_counter()
        with torch.no_grad():
            for s in range(0, N_EVAL, 1000):
                torch.softmax(self.net(X[s:s + 1000].permute(0, 3, 1, 2).float() / 255), 1)
        return N_EVAL / (time.perf_counter() - t0)


_TIMERS = {"numba": _NumbaTimer, "torch": _TorchTimer, "numpy": _NumpyTimer}


def _print_table(console, rows, compile_s) -> None:
    from rich.table import Table

    table = Table(title="ms per training step (batch 128) and evaluation images/s; "
                        "ratio = peer / numba (higher: ours faster)")
    for col in ("model", "input", "threads", "numba ms", "torch ms", "numpy ms",
                "torch/numba", "numpy/numba", "numba img/s", "torch img/s"):
        table.add_column(col, justify="right", no_wrap=True)
    keys = sorted({(r["model"], r["input"], r["threads"]) for r in rows},
                  key=lambda k: (k[2], k[0], k[1]))
    by = {(r["engine"], r["model"], r["input"], r["threads"]): r for r in rows}

    def get(engine, key, field):
        r = by.get((engine, *key))
        return None if r is None else r[field]

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    for key in keys:
        nb, th, npy = (get(e, key, "ms_per_step") for e in ("numba", "torch", "numpy"))
        table.add_row(key[0], key[1], str(key[2]), fmt(nb, ".3f"), fmt(th, ".3f"),
                      fmt(npy, ".3f"), fmt(th / nb if th and nb else None, ".2f"),
                      fmt(npy / nb if npy and nb else None, ".1f"),
                      fmt(get("numba", key, "eval_images_per_s"), ".0f"),
                      fmt(get("torch", key, "eval_images_per_s"), ".0f"))
    console.print(table)
    for k, v in compile_s.items():
        console.print(f"numba first step incl. JIT compile (or cache load), {k}: {v:.2f} s",
                      highlight=False)


if __name__ == "__main__":  # a worker process started by ``_Worker``
    try:
        _serve(sys.argv[1])
    except Exception as ex:  # one line for the parent to point at, not a traceback
        print(f"cnnvsdnn bench: the {sys.argv[1]} engine failed: {type(ex).__name__}: {ex}",
              file=sys.stderr)
        sys.exit(1)
