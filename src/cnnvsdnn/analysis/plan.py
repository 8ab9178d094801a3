"""Train what is missing: the planner behind ``report --experiment`` and the ablation.

A plan is a list of :class:`Point` (one run: dataset, overrides, seed, its run directory).
:func:`plan` finds each point's state -- ``done`` (a finished run of the same config and engine
revision, reused), ``resume`` (an interrupted one, continued) or ``new`` -- and refuses a
directory holding a run of another config. :func:`train_point` trains one point in a
``cnnvsdnn train`` subprocess; :func:`train_sweep` trains many as Hydra multiruns, so a launcher
(``hydra/launcher=joblib``) can run them in parallel.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from ..config import compose_config
from ..data import load_dataset
from ..engines import engine_class
from ..errors import CnnvsdnnError, DataError, Interrupted
from ..run import run_state


@dataclass
class Point:
    """One planned run."""

    label: str  # the column or model it stands for
    dataset: str
    overrides: list[str]  # `cnnvsdnn train` overrides, dataset= and seed= included
    seed: int
    run_dir: Path
    state: str = "new"  # new | resume | done
    variant: str = "corrected"  # the protocol it follows (analysis/protocol.py)

    @property
    def name(self) -> str:
        """The column, and the protocol when it is not the corrected one."""
        return self.label if self.variant == "corrected" else f"{self.label} [{self.variant}]"

    @property
    def engine(self) -> str:
        return dict(o.split("=", 1) for o in self.overrides if "=" in o).get("engine", "numba")


def own_overrides(overrides: list[str]) -> list[str]:
    """The overrides that configure the run (not Hydra's own, such as the launcher)."""
    return [o for o in overrides if not o.lstrip("+~").startswith("hydra")]


def plan(points: list[Point]) -> list[Point]:
    """Set each point's state; ConfigError for a directory holding another config's run."""
    revisions = {name: engine_class(name).revision for name in ("numba", "keras")}
    for p in points:
        cfg = compose_config(own_overrides(p.overrides))
        p.state = run_state(p.run_dir, OmegaConf.to_yaml(cfg, resolve=True), revisions)
    return points


def unavailable(overrides: list[str]) -> str | None:
    """Why the dataset of a run with these overrides cannot be had (fetching it if it can),
    or None."""
    cfg = compose_config(own_overrides(overrides))
    try:
        load_dataset(cfg.dataset.name, verify=cfg.data.verify, mirror=cfg.data.mirror,
                     progress=cfg.progress)
    except DataError as ex:
        return str(ex)
    return None


def hydra_value(path: Path) -> str:
    """A path as a Hydra override value (quoted when it holds special characters)."""
    s = str(path)
    return s if re.fullmatch(r"[\w/.\-]+", s) else "'" + s.replace("'", "\\'") + "'"


def cli() -> list[str]:
    return [sys.executable, "-m", "cnnvsdnn"]


def train_point(p: Point, say=print) -> int:
    """Train or resume one point in a subprocess; returns its exit code (130/143: raise)."""
    if p.state == "resume" and not engine_class(p.engine).resumable:
        say(f"{p.run_dir} is an interrupted {p.engine} run, which cannot be resumed; removing "
            f"it and training again")
        shutil.rmtree(p.run_dir)
        p.state = "new"
    cmd = [*cli(), "train", *own_overrides(p.overrides),
           f"hydra.run.dir={hydra_value(p.run_dir)}"]
    if p.state == "resume":
        cmd.append("train.resume=true")
    rc = _run_child(cmd)
    if rc in (130, 143):
        verb = "resuming" if p.state == "resume" else "training"
        raise Interrupted(f"interrupted while {verb} {p.run_dir}; run the same command again "
                          f"to resume it", rc)
    return rc


def train_sweep(points: list[Point], runs_dir: Path, subdir: str, sweep_args: list[str],
                say=print) -> None:
    """The ``new`` points as Hydra multiruns into ``runs_dir`` (``subdir`` names each run's
    directory), one multirun per set of seeds; ``resume`` points one by one first."""
    for p in points:
        if p.state == "resume":
            say(f"resuming {p.run_dir}")
            if train_point(p, say) != 0:
                raise CnnvsdnnError(f"resuming {p.run_dir} failed; see the lines above")
    new = [p for p in points if p.state == "new"]
    by_seeds: dict[tuple, list[Point]] = {}
    for label in dict.fromkeys(p.label for p in new):
        seeds = tuple(p.seed for p in new if p.label == label)
        by_seeds.setdefault(seeds, []).append(next(p for p in new if p.label == label))
    for seeds, group in by_seeds.items():
        labels = [p.label for p in group]
        dataset = group[0].dataset
        say(f"training {dataset} {','.join(labels)} seeds {','.join(map(str, seeds))} into "
            f"{runs_dir}")
        cmd = [*cli(), "train", "-m", f"dataset={dataset}", f"model={','.join(labels)}",
               f"seed={','.join(map(str, seeds))}", "progress=false", *sweep_args,
               f"hydra.sweep.dir={hydra_value(runs_dir)}", f"hydra.sweep.subdir={subdir}"]
        rc = _run_child(cmd)
        if rc in (130, 143):
            raise Interrupted("interrupted; run the same command again to resume", rc)
        if rc != 0:
            raise CnnvsdnnError(f"training failed (exit {rc}): {' '.join(cmd)}")


def _run_child(cmd: list[str]) -> int:
    """Run a training subprocess (its progress shows on our terminal). On Ctrl-C the child
    gets the SIGINT too (it is in our process group), finishes its step and saves a checkpoint;
    SIGTERM and SIGHUP we pass on to it. Either way we wait for it, instead of killing it
    (which ``subprocess.run`` would do after 0.25 s), and return its exit code."""
    proc = subprocess.Popen(cmd)
    if threading.current_thread() is not threading.main_thread():
        return proc.wait()
    forward = {signal.SIGINT: signal.SIG_IGN,
               signal.SIGTERM: lambda s, f: proc.send_signal(s),
               signal.SIGHUP: lambda s, f: proc.send_signal(s)}
    old = {s: signal.signal(s, h) for s, h in forward.items()}
    try:
        return proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
