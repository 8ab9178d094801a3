"""``cnnvsdnn bench``: our engine's speed against its strongest peers, measured in the same run.

Engines: ``numba`` (ours); the peers, each in its fastest CPU configuration when installed:
``torch_fused`` (PyTorch eager with ``Adam(fused=True)``), ``torch_compile`` (``torch.compile``
and fused Adam), ``jax`` (``jax.jit`` of the whole step with ``optax.adam``); ``torch``
(PyTorch's default ``Adam()``) on request; ``numpy`` (the plain-NumPy twin the tests check the
kernels against). For each model, input shape and thread count: the median milliseconds of one
training step (batch 128: gather + forward + backward + Adam) and evaluation images per second,
every engine from the same state reached by training ours ``--pretrain`` steps on the input's
dataset (Adam's moments of a trained network, not zeros), on batches of that dataset.

Each engine runs in a fresh process of its own per thread count, after a warm-up; the engines'
repeats alternate (in a new random order each repeat), so all see the same machine. JIT
compile time is reported separately, never inside a step time. ``--e2e`` also times whole
training runs (``bench/e2e.py``). How busy the machine was -- the load average, and the share
of the CPU time a virtual machine's host took (``host.py``) -- is printed with each cell
and for the whole run, with a warning when the host took enough to make the ratios wander.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

from rich.table import Table

from .. import host
from ..config import model_layers
from ..errors import CnnvsdnnError, ConfigError
from ..safe_io import check_output, write_text
from ..ui import warn, wide_console
from . import e2e
from .data import BenchData
from .names import ENGINES, INPUTS, NEEDS

DEFAULT_ENGINES = "numba,torch_fused,torch_compile,jax,numpy"
PEERS = ("torch", "torch_fused", "torch_compile", "jax")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="PATH", help="also write the rows as a JSON list")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.add_argument("--models", default="dnn,cnn", help="models of conf/model/ (dnn,cnn)")
    p.add_argument("--inputs", default="28x28x1,32x32x3", help="input shapes (28x28x1,32x32x3)")
    p.add_argument("--threads", default="1,2", help="thread counts (1,2)")
    p.add_argument("--engines", default=DEFAULT_ENGINES,
                   help=f"engines to time ({DEFAULT_ENGINES}; also torch: PyTorch's default "
                        f"Adam); a peer that is not installed is skipped")
    p.add_argument("--steps", type=int, default=30, help="timed steps per repeat (30)")
    p.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported (5)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup", type=float, default=0.5,
                   help="seconds of untimed steps before each measurement (0.5)")
    p.add_argument("--pretrain", type=int, default=2000,
                   help="steps ours trains on the input's dataset before timing; every engine "
                        "starts from that state (2000; 0: from the initialisation)")
    p.add_argument("--e2e", action="store_true",
                   help="also time whole `cnnvsdnn train` runs against plain PyTorch (fused "
                        "Adam) and JAX scripts of the same protocol, at the largest --threads")
    p.add_argument("--e2e-only", action="store_true", help="--e2e without the step timings")
    p.add_argument("--e2e-steps", type=int, default=None,
                   help="training steps of the --e2e runs (default: the study's per dataset)")
    p.add_argument("--e2e-repeats", type=int, default=None,
                   help="runs per engine, model and input, alternating engines (default: 2-7, "
                        "as many as fit about 3 minutes of runs: more of the short ones)")
    p.add_argument("--no-verify", action="store_true",
                   help="accept dataset copies whose checksums differ (data.verify=false)")
    p.add_argument("--dev-size", type=int, default=5000,
                   help="development images of the --e2e runs (the study's 5000)")


def run(ns: argparse.Namespace) -> int:
    console = wide_console()
    models, inputs = _split(ns.models), _split(ns.inputs)
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
            raise ConfigError(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    if min(ns.steps, ns.repeats, ns.batch_size, *threads) < 1 or ns.dev_size < 1 or \
            any(v is not None and v < 1 for v in (ns.e2e_steps, ns.e2e_repeats)):
        raise ConfigError("--steps, --repeats, --batch-size, --threads, --e2e-steps, "
                          "--e2e-repeats and --dev-size must be positive")
    if ns.warmup < 0 or ns.pretrain < 0:
        raise ConfigError("--warmup and --pretrain must be >= 0")
    if ns.json:
        check_output(ns.json, force=ns.force, what="JSON file", flag="--json")
    missing = sorted({NEEDS[e] for e in engines if e in NEEDS and find_spec(NEEDS[e]) is None})
    if missing:
        console.print(f"not installed, skipped: {', '.join(missing)} (pip install "
                      f"'cnnvsdnn[bench]')")
        engines = [e for e in engines if NEEDS.get(e) not in missing]
    layer_lists = {m: model_layers(m) for m in models}  # 10 classes, as every input's
    data = {inp: BenchData(inp, verify=not ns.no_verify) for inp in inputs}
    for d in data.values():
        if d.note:
            console.print(d.note, highlight=False)
    console.print(f"load average at start: {host.load()}", highlight=False)
    started = host.cpu_jiffies()

    rows, e2e_rows, about, steal = [], [], {}, {}
    with tempfile.TemporaryDirectory(prefix="cnnvsdnn-bench-") as tmp:
        if not ns.e2e_only:
            rows = _time_steps(console, ns, engines, models, inputs, threads, layer_lists,
                               Path(tmp), about, steal)
        if ns.e2e or ns.e2e_only:
            e2e_rows = e2e.run_all(console, models, inputs, max(threads), data, ns, Path(tmp),
                                   peers=[e for e in ("torch_fused", "jax") if e in engines])
    taken = host.steal_share(started, host.cpu_jiffies())
    console.print(f"load average at end: {host.load()}" + (
        "" if taken is None else f"; the host took {100 * taken:.1f} % of this machine's CPU "
                                 f"time during the bench (steal time, /proc/stat)"),
        highlight=False)
    for line in about.values():
        console.print(line, highlight=False)
    if rows:
        _print_table(console, rows, steal)
    if e2e_rows:
        e2e.print_table(console, e2e_rows, rows)
    if ns.json:
        write_text(ns.json, json.dumps(rows + e2e_rows, indent=1))
        console.print(f"rows written to {ns.json}")
    if taken is not None and taken >= host.STEAL_WARN:
        warn(steal_warning(taken))
    return 0


def steal_warning(share: float) -> str:
    """What ``bench`` ends with when the host took ``host.STEAL_WARN`` or more."""
    return (f"the host of this virtual machine took {100 * share:.0f} % of its CPU time while "
            f"bench ran (steal time): a step split over threads then waits for a preempted "
            f"one, unevenly across engines, so these ratios are not to be trusted; run bench "
            f"again when the host is quiet (the 'host steal' column says which rows it hit)")


def _time_steps(console, ns, engines, models, inputs, threads, layer_lists, tmp: Path,
                about: dict, steal: dict) -> list[dict]:
    """Every cell's rows; ``about`` gets each engine's setup line, ``steal`` each cell's
    (model, input, threads) share of CPU time taken by the host (None: not known)."""
    rows, states, compile_s, notes = [], {}, {}, set()
    for threads_n in threads:
        workers = {e: _Worker(e, threads_n) for e in engines}
        try:
            for model in models:
                for inp in inputs:
                    key = (model, inp)
                    if ns.pretrain and key not in states:
                        states[key] = _pretrain(console, workers.get("numba"), key, threads_n,
                                                layer_lists[model], ns, tmp)
                    cell = {"layers": layer_lists[model], "inp": inp, "verify": not ns.no_verify,
                            "batch_size": ns.batch_size, "state": states.get(key)}
                    timed, share = _time_cell(workers, cell, ns)
                    steal[(model, inp, threads_n)] = share
                    for engine, r in timed.items():
                        if r["about"]:
                            about[engine] = r["about"]
                        if r["note"] and r["note"] not in notes:
                            notes.add(r["note"])
                            warn(r["note"])
                        compile_s.setdefault(engine, []).append(r["first_s"])
                        rows.append({"engine": engine, "model": model, "input": inp,
                                     "threads": threads_n, "ms_per_step": round(r["ms"], 4),
                                     "eval_images_per_s": round(r["ips"], 1)})
                        console.print(f"  {engine:13s} {model:4s} {inp} threads={threads_n}: "
                                      f"{r['ms']:8.3f} ms/step, {r['ips']:9.0f} eval images/s",
                                      highlight=False)
                    if share is not None:
                        console.print(f"  host steal while these were timed: {100 * share:.0f} % "
                                      f"of this machine's CPU time", highlight=False)
        finally:
            for w in workers.values():
                w.close()
    for engine, s in compile_s.items():
        about[engine] = f"{engine:13s} " + (f"{about[engine]} " if engine in about else "") + \
            f"(setup and first step, incl. compile or cache load: {min(s):.2f}-{max(s):.2f} s)"
    return rows


def _pretrain(console, worker, key, threads_n, layers, ns, tmp: Path) -> str:
    """Train ours ``--pretrain`` steps on the input's dataset; the state's .npz path."""
    own = worker is None
    worker = worker or _Worker("numba", threads_n)
    out = tmp / f"state_{key[0]}_{key[1]}.npz"
    try:
        r = worker.call(op="pretrain", layers=layers, inp=key[1], batch_size=ns.batch_size,
                        steps=ns.pretrain, out=str(out), verify=not ns.no_verify)
    finally:
        if own:
            worker.close()
    console.print(f"  trained {key[0]} {key[1]} {ns.pretrain} steps to start from (cost "
                  f"{r['cost']:.3f}, {r['s']:.1f} s)", highlight=False)
    return str(out)


def _time_cell(workers: dict, cell: dict, ns: argparse.Namespace) -> tuple[dict, float | None]:
    """One model x input x threads cell on every engine: setup reply + median ms + eval img/s,
    and the share of the CPU time the host took while they were timed.

    The engines' repeats alternate, in a fresh random order each repeat: on a shared machine
    the speed drifts by up to 2x within seconds, and alternation gives all the same
    conditions; a pause before each repeat lets the others' threads go idle. The NumPy twin,
    10-30x slower and heavy on the caches, is timed after them, alone.
    """
    setup = {e: w.call(op="setup", **cell) for e, w in workers.items()}
    out, before = {}, host.cpu_jiffies()
    for group in ([e for e in workers if e != "numpy"], [e for e in workers if e == "numpy"]):
        steps = {e: ns.steps if e != "numpy" else max(1, ns.steps // 10) for e in group}
        for e in group:  # the first ~0.1 s of a run can be 2x slow: page faults, thread
            t0 = time.perf_counter()  # pools and clocks settling
            while time.perf_counter() - t0 < ns.warmup:
                workers[e].call(op="steps", steps=steps[e])
        ms = {e: [] for e in group}
        rng = random.Random(0)
        for _ in range(ns.repeats):
            for e in rng.sample(group, len(group)):
                time.sleep(0.05 if len(group) > 1 else 0)
                ms[e].append(workers[e].call(op="steps", steps=steps[e])["ms"])
        ips = {e: [] for e in group}  # evaluation passes, alternating as the steps do
        for _ in range(3):
            for e in rng.sample(group, len(group)):
                ips[e].append(workers[e].call(op="eval")["ips"])
        for e in group:
            out[e] = {**setup[e], "ms": statistics.median(ms[e]),
                      "ips": statistics.median(ips[e])}
    return {e: out[e] for e in workers}, host.steal_share(before, host.cpu_jiffies())


class _Worker:
    """One engine in a fresh process of its own (``python -m cnnvsdnn.bench.worker ENGINE
    THREADS``), driven by JSON lines over a pipe, so that no engine's libraries or thread pools
    (torch's OpenMP and oneDNN, XLA's, numba's TBB workers) are loaded in another's process."""

    def __init__(self, engine: str, threads: int = 1, env: dict | None = None):
        self.engine = engine
        self.proc = subprocess.Popen([sys.executable, "-m", "cnnvsdnn.bench.worker", engine,
                                      str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     env=None if env is None else {**os.environ, **env})

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


def _print_table(console, rows, steal: dict) -> None:
    by = {(r["engine"], r["model"], r["input"], r["threads"]): r for r in rows}
    present = {r["engine"] for r in rows}
    peers = [e for e in ENGINES if e in present and e != "numba"]
    table = Table(title="ms per training step (batch 128), from a trained state; (x) = peer ms "
                        "/ ours (above 1: ours faster); best = the fastest peer")
    for col in ("model", "input", "threads", "ours ms", *[f"{p} ms" for p in peers],
                "best peer", "best / ours", "ours eval img/s", "best eval img/s", "host steal"):
        table.add_column(col, justify="right", no_wrap=True)
    keys = sorted({(r["model"], r["input"], r["threads"]) for r in rows},
                  key=lambda k: (k[2], k[0], k[1]))
    for key in keys:
        ours = by.get(("numba", *key))
        nb = ours["ms_per_step"] if ours else None
        cells, best = [], None
        for p in peers:
            r = by.get((p, *key))
            if r is None:
                cells.append("-")
                continue
            ms = r["ms_per_step"]
            cells.append(f"{ms:.3f}" + (f" ({ms / nb:.2f}x)" if nb else ""))
            if p in PEERS and (best is None or ms < best["ms_per_step"]):
                best = r
        best_eval = max((by[(p, *key)]["eval_images_per_s"] for p in peers
                         if p in PEERS and (p, *key) in by), default=None)
        table.add_row(key[0], key[1], str(key[2]), "-" if nb is None else f"{nb:.3f}", *cells,
                      best["engine"] if best else "-",
                      f"{best['ms_per_step'] / nb:.2f}" if best and nb else "-",
                      f"{ours['eval_images_per_s']:.0f}" if ours else "-",
                      "-" if best_eval is None else f"{best_eval:.0f}",
                      "-" if steal.get(key) is None else f"{100 * steal[key]:.0f} %")
    console.print(table)
