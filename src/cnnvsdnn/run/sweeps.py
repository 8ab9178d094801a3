"""A sweep directory (``cnnvsdnn train -m``): the file that lists its points and how each ended,
and the points that have no result.

``cnnvsdnn train -m`` writes ``sweep.json`` next to Hydra's ``multirun.yaml`` before the first
job starts (every point ``pending``, or ``done`` when a resumed sweep keeps it) and again when
every point has ended. ``summarize`` reads it to name the points without a result, together with
any run directory that holds a run's files but no ``metrics.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..safe_io import write_text
from .files import CONFIG, LOG, METRICS
from .files import SWEEP_RECORD as SWEEP_FILE

# How a point of a sweep ended. Only "done" has a result (metrics.json).
DONE, FAILED, TIMED_OUT, CANCELLED, INTERRUPTED = ("done", "failed", "timed out", "cancelled",
                                                   "interrupted")
PENDING, NOT_RUN = "pending", "not run"  # not ended: queued or running; never started
STATES = (DONE, FAILED, TIMED_OUT, CANCELLED, INTERRUPTED, PENDING, NOT_RUN)


@dataclass
class PointRecord:
    """One point of a sweep, as ``sweep.json`` records it."""

    num: int  # Hydra's job number (hydra.job.num)
    overrides: list[str]  # the point's own overrides, e.g. ["model=cnn", "seed=1"]
    run_dir: str
    state: str = PENDING
    message: str = ""  # why it is not done, in one line
    job_id: str | None = None  # the scheduler's job id (SLURM: <array job>_<task>)
    kept: bool = False  # finished before, kept by a resumed sweep


def write_sweep_file(sweep_dir: Path, command: list[str], points: list[PointRecord]) -> Path:
    """``sweep_dir/sweep.json``, replaced atomically (a reader never sees half a file)."""
    return write_text(Path(sweep_dir) / SWEEP_FILE,
                      json.dumps({"command": command, "points": [asdict(p) for p in points]},
                                 indent=1))


def read_sweep_file(sweep_dir: Path) -> list[PointRecord]:
    """The points ``sweep_dir/sweep.json`` lists; [] when there is none or it is unreadable
    (it is a record for people and ``summarize``, never needed to resume)."""
    try:
        data = json.loads((Path(sweep_dir) / SWEEP_FILE).read_text())
        return [PointRecord(**p) for p in data["points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def points_without_result(paths: list[Path]) -> list[tuple[Path, str]]:
    """``(directory, what is known)`` for every sweep point at or under ``paths`` that has no
    ``metrics.json``: those ``sweep.json`` lists, and directories holding a run's config or log
    (or Hydra's records of a job) but no result."""
    found: dict[Path, str] = {}
    for p in map(Path, paths):
        if not p.is_dir():
            continue
        for sweep_file in sorted(p.rglob(SWEEP_FILE)):
            for rec in read_sweep_file(sweep_file.parent):
                d = Path(rec.run_dir)
                d = d if d.is_absolute() else sweep_file.parent / d
                if not (d / METRICS).is_file():
                    why = rec.state + (f": {rec.message}" if rec.message else "")
                    if rec.state == DONE:  # recorded as done, but its result is gone
                        why = "its metrics.json is missing"
                    found.setdefault(d.resolve(), why)
        for marker in (CONFIG, LOG, ".hydra"):
            for m in sorted(p.rglob(marker)):
                d = m.parent
                if d.name == ".hydra" or (d / METRICS).is_file():
                    continue
                found.setdefault(d.resolve(), "unfinished (a log or config but no metrics.json)"
                                 if (d / LOG).exists() else "no result (never trained)")
    return sorted(found.items())
