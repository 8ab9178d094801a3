"""A run directory: the files it holds, whether it may take a run, and reading a finished one.

A finished run directory holds ``.hydra/`` (Hydra's records) and the files below;
``metrics.json`` is written last and marks the run as finished. A directory is only ever
written by one process at a time (:func:`lock_run_dir`), and never when it holds files that
are not a run's (:func:`foreign_files`).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from ..config import SAME_RESULT, config_diff
from ..errors import ConfigError
from .log import read_log

CONFIG = "config.yaml"  # the resolved config
LOG = "log.h5"  # train/* every step, dev/* every eval_every steps (run/log.py)
METRICS = "metrics.json"  # accuracy, F1, AR per split; written last
PREDICTIONS = "predictions_test.npz"  # probs (N_test, K), labels (N_test,)
PARAMS = "params.npz"  # the trained parameters
TABLES = "tables.md"  # accuracy per split, the test set per class
FIGURE = "training.png"  # cost and accuracy per step, dev accuracy every eval_every steps
GAINS = "gains.png"  # the test set's cumulative gains curve per class, with its AR
CONFUSION = "confusion.png"  # the test set's confusion matrix
MISTAKES = "mistakes.png"  # the test images most confidently misclassified
CHECKPOINT = "checkpoint.npz"  # everything a resume needs (run/checkpoint.py)
LOCK = ".lock"  # held (flock) by the process writing the directory; the pid inside
HYDRA = ".hydra"  # Hydra's records of the job
# every name a run writes: a directory is a run's if it holds nothing else (foreign_files)
RUN_FILES = (CONFIG, LOG, METRICS, PREDICTIONS, PARAMS, TABLES, FIGURE, GAINS, CONFUSION,
             MISTAKES, CHECKPOINT, LOCK, HYDRA)


MARKERS = (HYDRA, LOCK, LOG, CHECKPOINT, METRICS)  # what only a run leaves: files beside them are


def foreign_files(run_dir: Path) -> list[str]:
    """Names in ``run_dir`` that are not a run's: all of them when it holds none of a run's
    markers (a user's folder may well hold a ``config.yaml``), else those no run writes
    (Hydra's job log ``*.log`` and our temporary ``*.tmp`` files are a run's)."""
    try:
        names = sorted(p.name for p in Path(run_dir).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    if not any(n in MARKERS for n in names):
        return names
    return [n for n in names if n not in RUN_FILES and not n.endswith((".log", ".tmp"))]


def check_not_foreign(run_dir: Path, key: str = "hydra.run.dir") -> None:
    """Refuse a directory holding files that are not a run's: nothing may be written there."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{key}={run_dir} is a file; give a directory")
    other = foreign_files(run_dir)
    if other:
        shown = ", ".join(other[:4]) + (f" and {len(other) - 4} more" if len(other) > 4 else "")
        raise ConfigError(f"{key}={run_dir} holds files that are not a cnnvsdnn run ({shown}); "
                          f"choose a new or empty directory (nothing was written)")


SWEEP_RECORD = "sweep.json"  # every point's state (run/sweeps.py)
SUBMITIT = ".submitit"  # the submitit launchers' job files and logs
SWEEP_FILES = ("multirun.yaml", "summary", LOCK, SWEEP_RECORD, SUBMITIT)  # beside its runs


def check_not_foreign_sweep(sweep_dir: Path, key: str = "hydra.sweep.dir") -> None:
    """Refuse a sweep directory holding anything but sweep records and run directories."""
    sweep_dir = Path(sweep_dir)
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise ConfigError(f"{key}={sweep_dir} is a file; give a directory")
    for name in foreign_files(sweep_dir):
        p = sweep_dir / name
        if name in SWEEP_FILES or (p.is_dir() and not p.is_symlink() and not foreign_files(p)):
            continue
        raise ConfigError(f"{key}={sweep_dir} holds {name}, which is not a cnnvsdnn run or "
                          f"sweep record; choose a new or empty directory (nothing was written)")


_held: dict[Path, object] = {}  # run directories this process holds, and their open lock file


def lock_run_dir(run_dir: Path) -> None:
    """Hold the directory for this process (creating it) until the process ends, even by
    ``kill -9``; a one-line ConfigError when another process holds it. Again in the same
    process: nothing happens. (``fcntl.flock``, by hand: the holder's pid in the message is
    what a user needs, and the ``filelock`` package does not record it.)"""
    run_dir = Path(run_dir).absolute()
    if run_dir in _held:
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        f = open(run_dir / LOCK, "a+")  # noqa: SIM115 -- kept open while the lock is held
    except OSError as ex:
        raise ConfigError(f"cannot create the run directory {run_dir} ({ex.strerror}); "
                          f"choose a writable hydra.run.dir") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise ConfigError(f"{run_dir} is in use by another cnnvsdnn process (pid {pid}); wait "
                          f"for it to end, or choose another hydra.run.dir") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    _held[run_dir] = f


def saved_config(run_dir: Path) -> str | None:
    """The config a resume must match: the checkpoint's (the state it continues from), else
    the log's (a run killed before its first checkpoint), never the editable config.yaml."""
    run_dir = Path(run_dir)
    if (run_dir / CHECKPOINT).is_file():
        try:
            with np.load(run_dir / CHECKPOINT, allow_pickle=False) as z:
                missing = {"step", "order", "pos", "config"} - set(z.files)
                if missing:
                    raise ConfigError(f"{run_dir / CHECKPOINT} is not a checkpoint (it lacks "
                                      f"{', '.join(sorted(missing))}: a run's params.npz?); "
                                      f"train the run again in another hydra.run.dir")
                return str(z["config"])
        except ConfigError:
            raise
        except Exception as ex:  # a damaged or foreign file: no config to trust
            raise ConfigError(f"{run_dir / CHECKPOINT} is not a readable checkpoint "
                              f"({type(ex).__name__}); train the run again in another "
                              f"hydra.run.dir") from None
    if (run_dir / LOG).is_file():
        return read_log(run_dir / LOG)["config"] or None
    return None


def check_run_dir(run_dir: Path, cfg: DictConfig) -> None:
    """Refuse a run directory that already holds a run, unless resuming it with its own config.
    Called before Hydra writes anything into it, and again by ``train``."""
    run_dir = Path(run_dir)
    if (run_dir / METRICS).exists():
        raise ConfigError(f"{run_dir} already holds a finished run; choose another "
                          f"hydra.run.dir (nothing was overwritten)")
    if not cfg.train.resume:
        if (run_dir / LOG).exists():
            raise ConfigError(f"{run_dir} already holds an unfinished run; continue it with "
                              f"train.resume=true or choose another hydra.run.dir")
        return
    saved = saved_config(run_dir) if (run_dir / LOG).exists() else None
    if saved is not None:
        read_log(run_dir / LOG)  # resuming continues it: a damaged log is refused now
    if saved is None:
        raise ConfigError(f"train.resume=true but {run_dir} holds no run to resume; point "
                          f"hydra.run.dir at the interrupted run's directory")
    try:
        diff = config_diff(saved, OmegaConf.to_yaml(cfg, resolve=True))
    except yaml.YAMLError:
        raise ConfigError(f"the config saved in {run_dir} is damaged; train the run again in "
                          f"another hydra.run.dir") from None
    if diff:
        raise ConfigError(f"cannot resume {run_dir} with a different config ({', '.join(diff)} "
                          f"differ); resume with the same overrides plus train.resume=true")


def run_state(run_dir: Path, config_yaml: str, revisions: dict[str, int],
              ignore=SAME_RESULT, elsewhere: str = "pass --runs-dir DIR") -> str:
    """What a planned run directory holds: ``done`` (a finished run of this config),
    ``resume`` (an interrupted one) or ``new``. A run of another config, or one finished by
    another revision of its engine (``revisions``: engine name -> revision), is a ConfigError
    (``elsewhere``: how its message says to keep it). ``ignore``: config keys that may differ
    (default: those that change no result)."""
    saved = run_dir / CONFIG
    if not saved.is_file():
        if (run_dir / LOG).exists():
            raise ConfigError(f"{run_dir} holds a run without its {CONFIG}; delete it to "
                              f"retrain it")
        return "new"
    try:
        diff = config_diff(saved.read_text(), config_yaml, ignore)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise ConfigError(f"{saved} is damaged; delete {run_dir} to retrain it, or "
                          f"{elsewhere} to keep it") from None
    if diff:
        raise ConfigError(f"{run_dir} holds a run with another config ({', '.join(diff)} "
                          f"differ); delete it to retrain, or {elsewhere} to keep it")
    if (run_dir / METRICS).is_file():
        metrics = read_metrics(run_dir)
        engine = metrics.get("engine", "numba")
        revision = metrics.get("engine_revision", 1)
        if engine in revisions and revision != revisions[engine]:
            raise ConfigError(f"{run_dir} was trained by engine revision {revision}, this "
                              f"cnnvsdnn's is {revisions[engine]} and gives other numbers; "
                              f"delete it to retrain, or {elsewhere} to keep it")
        return "done"
    return "resume" if (run_dir / LOG).is_file() else "new"


def read_metrics(run_dir: Path) -> dict:
    """A finished run's ``metrics.json``; a one-line ConfigError if it is not one."""
    path = Path(run_dir) / METRICS
    try:
        m = json.loads(path.read_text())
        m["dataset"], m["model"], int(m["seed"])  # noqa: B018 -- the keys every reader needs
        for split in m["splits"].values():
            for key in ("accuracy", "f1_weighted", "ar_weighted"):
                float(split[key])
        m["splits"]["test"]["f1"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as ex:
        raise ConfigError(f"{path} is not a finished run's metrics.json ({ex!r}); rerun that "
                          f"run or remove its directory") from None
    return m


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories (holding metrics.json) at or under each path, in a stable order."""
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ConfigError(f"{p} does not exist; give run directories or multirun "
                              f"directories that hold metrics.json files")
        if (p / METRICS).is_file():
            found[p.resolve()] = None
        for m in sorted(p.rglob(METRICS)) if p.is_dir() else []:
            found[m.parent.resolve()] = None
    return list(found)
