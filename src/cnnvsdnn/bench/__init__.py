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

from omegaconf import OmegaConf
from rich.table import Table

from ..config import compose_config
from ..errors import CnnvsdnnError, ConfigError
from ..safe_io import check_output, write_text
from ..ui import wide_console
from .worker import ENGINES, INPUTS, have_torch


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="PATH", help="also write the rows as a JSON list")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
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
        if e not in ENGINES:
            raise ConfigError(f"unknown engine {e!r}; choose from numba, torch, numpy")
    if ns.steps < 1 or ns.repeats < 1 or ns.batch_size < 1 or any(t < 1 for t in threads):
        raise ConfigError("--steps, --repeats, --batch-size and --threads must be positive")
    if ns.warmup < 0:
        raise ConfigError("--warmup must be >= 0 seconds")
    if ns.json:
        check_output(ns.json, force=ns.force, what="JSON file", flag="--json")
    if "torch" in engines and not have_torch():
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
        write_text(ns.json, json.dumps(rows, indent=1))
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
    """One engine in a fresh process of its own (``python -m cnnvsdnn.bench.worker ENGINE``), driven
    by JSON lines over a pipe, so that no engine's libraries or thread pools (torch's OpenMP
    and oneDNN, numba's TBB workers) are loaded in another's process."""

    def __init__(self, engine: str):
        self.engine = engine
        self.proc = subprocess.Popen([sys.executable, "-m", "cnnvsdnn.bench.worker", engine],
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


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _layers(model: str) -> list[dict]:
    """The model's layer list as `cnnvsdnn train model=...` composes and validates it."""
    return OmegaConf.to_container(compose_config([f"model={model}"]).model.layers,
                                  resolve=True)  # the last layer: ${n_classes:} = 10


def _print_table(console, rows, compile_s) -> None:
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
