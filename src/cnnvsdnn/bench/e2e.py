"""``cnnvsdnn bench --e2e``: whole training runs, as a user feels them.

For each model and input: the real ``cnnvsdnn train`` (logging, development evaluation every
100 steps, checkpoints, progress lines, the final metrics, tables and figure) in a subprocess,
beside the same protocol written plainly in PyTorch with fused Adam (``plain_torch.py``) and in
JAX (``plain_jax.py``), all on the input's dataset (``bench/data.py``) with the study's steps,
seed 0, one after the other in a fresh random order each repeat. Reported per run: the training
loop's milliseconds per step (``metrics.json``'s ``seconds.train_loop`` / steps; the scripts time
the same loop) and the whole process's seconds (imports, data, compilation, final evaluation).
For ours also the milliseconds per step spent inside the training steps themselves
(``seconds.train_steps``): the bare step measured in the same run, so ``loop / step`` is the
loop's own overhead (development evaluation, log, checkpoints, progress) free of the machine's
drift between two measurements (the table gives the median of the runs' own ratios, never a
ratio of two medians, which may come from two runs); and the seconds after the loop
(``seconds.results``: final metrics, files and figures). With each run, the share of the CPU
time the host of a virtual machine took during it (``cnnvsdnn/host.py``).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import host
from ..config import compose_config, model_layers
from ..errors import CnnvsdnnError

PLAIN = {"torch_fused": "plain_torch.py", "jax": "plain_jax.py"}
# Without --e2e-repeats: repeats of a model and input until their runs took about this long
# (at least 2, at most 7). A 2000-step MNIST DNN run takes 6-15 s, so its few-second
# differences need more runs than the minutes-long 32x32x3 ones to outlast a noisy machine.
AUTO_BUDGET_S, AUTO_MIN, AUTO_MAX = 180.0, 2, 7


def auto_repeats(first_repeat_s: float) -> int:
    """Repeats of a model and input whose first repeat (every engine once) took this long."""
    return min(AUTO_MAX, max(AUTO_MIN, round(AUTO_BUDGET_S / max(first_repeat_s, 1e-3))))


def _cmd(engine: str, model: str, layers: list, data, threads: int, steps: int, dev_size: int,
         out: Path) -> list[str]:
    if engine == "numba":
        return [sys.executable, "-m", "cnnvsdnn", "train", f"model={model}", *data.overrides(),
                f"train.steps={steps}", f"train.dev_size={dev_size}", f"engine.threads={threads}",
                "seed=0", f"hydra.run.dir={out}"]
    return [sys.executable, str(Path(__file__).with_name(PLAIN[engine])),
            "--dataset", data.dataset, "--layers", json.dumps(layers), "--threads", str(threads),
            "--steps", str(steps), "--dev-size", str(dev_size), "--out", str(out),
            *([] if data.verify else ["--no-verify"])]


def _run(engine, model, layers, data, threads, steps, dev_size, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = _cmd(engine, model, layers, data, threads, steps, dev_size,
               out / "run" if engine == "numba" else out)
    t0, before = time.perf_counter(), host.cpu_jiffies()
    res = subprocess.run(cmd, env={**os.environ, **data.env}, capture_output=True, text=True)
    wall, steal = time.perf_counter() - t0, host.steal_share(before, host.cpu_jiffies())
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise CnnvsdnnError(f"the --e2e run of {engine} {model} failed (exit {res.returncode}): "
                            f"{tail}")
    if engine == "numba":
        m = json.loads((out / "run" / "metrics.json").read_text())
        sec, done = m["seconds"], m["steps"]
        return {"loop_ms_per_step": 1e3 * sec["train_loop"] / done, "process_s": wall,
                "step_ms_in_loop": 1e3 * sec["train_steps"] / done,
                "loop_over_steps": sec["train_loop"] / sec["train_steps"],
                "results_s": sec["results"]}, steal
    r = json.loads(res.stdout.strip().splitlines()[-1])
    return {"loop_ms_per_step": 1e3 * r["loop_s"] / r["steps"], "process_s": wall}, steal


def run_all(console, models, inputs, threads: int, data: dict, ns, tmp: Path,
            peers: list[str]) -> list[dict]:
    """Every model x input, ``ns.e2e_repeats`` runs of ours and of each peer's script (None:
    as many as fit ``AUTO_BUDGET_S``, judged by the first repeat). A row's ``host_steal``
    lists its runs' shares of CPU time taken by the host (None where not known)."""
    engines = ["numba", *peers]
    rows = []
    for model in models:
        for inp in inputs:
            d = data[inp]
            layers = model_layers(model, d.dataset)
            steps = ns.e2e_steps or int(compose_config([f"dataset={d.dataset}"]).train.steps)
            got, steal = {e: [] for e in engines}, {e: [] for e in engines}
            rng = random.Random(0)
            repeats, rep = ns.e2e_repeats or AUTO_MIN, 0
            while rep < repeats:
                t0 = time.perf_counter()
                for e in rng.sample(engines, len(engines)):
                    r, share = _run(e, model, layers, d, threads, steps, ns.dev_size,
                                    tmp / f"e2e_{e}_{model}_{inp}_{rep}")
                    got[e].append(r)
                    steal[e].append(None if share is None else round(share, 4))
                    inside = (f" ({r['step_ms_in_loop']:.3f} inside the steps)"
                              if "step_ms_in_loop" in r else "")
                    busy = "" if share is None else f", host steal {100 * share:.0f} %"
                    console.print(f"  e2e {e:11s} {model:4s} {inp} threads={threads}: "
                                  f"{r['loop_ms_per_step']:7.3f} ms/step in the loop{inside}, "
                                  f"{r['process_s']:6.1f} s the whole process{busy}",
                                  highlight=False)
                if rep == 0 and ns.e2e_repeats is None:
                    repeats = auto_repeats(time.perf_counter() - t0)
                rep += 1
            for e, rs in got.items():
                rows.append({"engine": e, "model": model, "input": inp, "threads": threads,
                             "steps": steps, **{k: round(statistics.median(r[k] for r in rs), 4)
                                                for k in rs[0]},
                             "runs": {k: [round(r[k], 4) for r in rs] for k in rs[0]},
                             "host_steal": steal[e]})
    return rows


def print_table(console, rows: list[dict], step_rows: list[dict]) -> None:
    """Ours against each peer's plain script; our loop against its own steps (same run) and
    against the bare step of ``bench`` (same model, input and threads, timed in bursts)."""
    by = {(r["engine"], r["model"], r["input"]): r for r in rows}
    bare = {(r["model"], r["input"], r["threads"]): r["ms_per_step"] for r in step_rows
            if r["engine"] == "numba"}
    peers = sorted({r["engine"] for r in rows} - {"numba"})
    table = Table(title="whole training runs (medians): training loop ms per step and the "
                        "whole process's seconds; (x) = peer / ours")
    for col in ("model", "input", "steps", "ours loop ms", "step ms in the loop", "loop / step",
                "bench step ms", "ours process s", "after the loop s",
                *[f"{p} loop ms" for p in peers], *[f"{p} process s" for p in peers],
                "host steal"):
        table.add_column(col, justify="right", no_wrap=True)
    for (e, model, inp), r in by.items():
        if e != "numba":
            continue
        b = bare.get((model, inp, r["threads"]))
        loop, proc = [], []
        for p in peers:
            q = by.get((p, model, inp))
            loop.append("-" if q is None else f"{q['loop_ms_per_step']:.3f} "
                        f"({q['loop_ms_per_step'] / r['loop_ms_per_step']:.2f}x)")
            proc.append("-" if q is None else f"{q['process_s']:.1f} "
                        f"({q['process_s'] / r['process_s']:.2f}x)")
        # the host's share over all the engines' runs of this model and input
        shares = [v for q in rows if (q["model"], q["input"]) == (model, inp)
                  for v in q.get("host_steal", []) if v is not None]
        table.add_row(model, inp, str(r["steps"]), f"{r['loop_ms_per_step']:.3f}",
                      f"{r['step_ms_in_loop']:.3f}",
                      f"{r['loop_over_steps']:.3f}",
                      "-" if b is None else f"{b:.3f}", f"{r['process_s']:.1f}",
                      f"{r['results_s']:.1f}", *loop, *proc,
                      f"{100 * min(shares):.0f}-{100 * max(shares):.0f} %" if shares else "-")
    # 13 columns: into a pipe or a log, wider than the usual 200 rather than cut headers
    (console if console.is_terminal else Console(width=320)).print(table)
