"""A run directory: the files it holds, whether it may take a run, and reading a finished one.

A finished run directory holds ``.hydra/`` (Hydra's records) and the files below;
``metrics.json`` is written last and marks the run as finished.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config import SAME_RESULT, config_diff
from ..errors import ConfigError

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
    if not (run_dir / LOG).exists() or not (run_dir / CONFIG).exists():
        raise ConfigError(f"train.resume=true but {run_dir} holds no run to resume; point "
                          f"hydra.run.dir at the interrupted run's directory")
    diff = config_diff((run_dir / CONFIG).read_text(), OmegaConf.to_yaml(cfg, resolve=True))
    if diff:
        raise ConfigError(f"cannot resume {run_dir} with a different config ({', '.join(diff)} "
                          f"differ); resume with the same overrides plus train.resume=true")


def run_state(run_dir: Path, config_yaml: str, revisions: dict[str, int],
              ignore=SAME_RESULT) -> str:
    """What a planned run directory holds: ``done`` (a finished run of this config),
    ``resume`` (an interrupted one) or ``new``. A run of another config, or one finished by
    another revision of its engine (``revisions``: engine name -> revision), is a ConfigError.
    ``ignore``: config keys that may differ (default: those that change no result)."""
    saved = run_dir / CONFIG
    if not saved.is_file():
        if (run_dir / LOG).exists():
            raise ConfigError(f"{run_dir} holds a run without its {CONFIG}; delete it to "
                              f"retrain it")
        return "new"
    diff = config_diff(saved.read_text(), config_yaml, ignore)
    if diff:
        raise ConfigError(f"{run_dir} holds a run with another config ({', '.join(diff)} "
                          f"differ); delete it to retrain, or pass --runs-dir DIR to keep it")
    if (run_dir / METRICS).is_file():
        metrics = read_metrics(run_dir)
        engine = metrics.get("engine", "numba")
        revision = metrics.get("engine_revision", 1)
        if engine in revisions and revision != revisions[engine]:
            raise ConfigError(f"{run_dir} was trained by engine revision {revision}, this "
                              f"cnnvsdnn's is {revisions[engine]} and gives other numbers; "
                              f"delete it to retrain, or pass --runs-dir DIR to keep it")
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
