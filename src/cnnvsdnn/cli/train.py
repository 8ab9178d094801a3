"""``cnnvsdnn train``: Hydra composes the config (one run, or a sweep with ``-m``) and calls
``run.train(cfg, run_dir)`` for each point, after every point was checked."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from ..config import compose_job, conf_dir, config_error_line, register_schemas
from ..errors import CnnvsdnnError, ConfigError
from ..run import train
from ..run.files import check_not_foreign, check_not_foreign_sweep, check_run_dir, lock_run_dir
from . import sweep

# Hydra's own flags that take a value (the value is not an override).
_HYDRA_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                      "--experimental-rerun", "--cfg", "-c", "--package", "-p", "--info", "-i"}
# Flags after which Hydra only prints something: no run, so nothing to check first.
_HYDRA_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i",
                     "--version", "--shell-completion", "-sc", "--resolve"}
_MAX_PRECHECK = 1000  # sweep combinations checked before a multirun starts
# Hydra's modes, of which a command may have one.
_HYDRA_MODES = {"-m": "--multirun", "--multirun": "--multirun", "--cfg": "--cfg", "-c": "--cfg",
                "--info": "--info", "-i": "--info", "--shell-completion": "--shell-completion",
                "-sc": "--shell-completion"}


def train_command(args: list[str]) -> int:
    """``cnnvsdnn train ARGS``: check, then hand over to Hydra; returns the exit code."""
    register_schemas()
    overrides, flags = _split_hydra_args(args)
    modes = {_HYDRA_MODES[f] for f in flags if f in _HYDRA_MODES}
    if len(modes) > 1:  # Hydra would raise a ValueError with a traceback
        raise ConfigError(f"{' and '.join(sorted(modes))} cannot be combined; use one of them "
                          f"(e.g. `cnnvsdnn train model=dnn --cfg job` shows one run's config)")
    if not flags & _HYDRA_INFO_FLAGS and not flags & {"--config-dir", "-cd", "--config-path",
                                                       "-cp", "--config-name", "-cn"}:
        _precheck(overrides, multirun=bool(flags & {"-m", "--multirun"}))

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
    def _hydra_task(cfg):
        return run_job(cfg)

    saved = sys.argv
    sys.argv = ["cnnvsdnn train", *args]
    try:
        _hydra_task()
        code = 0
    except SystemExit as ex:  # our one-line errors inside the job, or Hydra's own exit
        code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
    except KeyboardInterrupt:
        if not sweep.started():
            raise
        print("cnnvsdnn: interrupted", file=sys.stderr)
        code = 130
    finally:
        sys.argv = saved
    return sweep.report(code)  # after a sweep: every point's state; 1 if one is not done


def run_job(cfg):
    """The job Hydra runs (once per sweep point): a thin wrapper around ``run.train``; a sweep's
    point reports how it ended instead of ending the process (cli/sweep.py)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return sweep.run_point(cfg, run_dir)
        return train(cfg, run_dir)
    except CnnvsdnnError as ex:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"cnnvsdnn: error: {ex}", file=sys.stderr)
        sys.exit(ex.exit_code)
    except OSError as ex:  # a full disk, a file removed under us: the work failed, say where
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        where = f" ({ex.filename})" if ex.filename else ""
        print(f"cnnvsdnn: error: {ex.strerror or ex}{where}; check the disk and the run "
              f"directory, then resume with train.resume=true", file=sys.stderr)
        sys.exit(1)


def _split_hydra_args(args: list[str]) -> tuple[list[str], set[str]]:
    """Separate key=value overrides from Hydra's flags (and the flags' values)."""
    overrides: list[str] = []
    flags: set[str] = set()
    it = iter(args)
    for a in it:
        if a.startswith("-"):
            name = a.split("=", 1)[0]
            flags.add(name)
            if name in _HYDRA_VALUE_FLAGS and "=" not in a and name not in ("--info", "-i"):
                next(it, None)
        else:
            overrides.append(a)
    return overrides, flags


def _precheck(overrides: list[str], multirun: bool) -> None:
    """Compose and validate every point of the run or sweep before any work starts, and hold
    the output directory for this process: Hydra writes into it before the job runs."""
    try:  # every override, Hydra's own too: a malformed one is Hydra's traceback otherwise
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as ex:
        raise ConfigError(config_error_line(ex)) from ex
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    out = [o.value() for o in parsed if o.get_key_element() == key]
    if out and not isinstance(out[-1], str):
        raise ConfigError(f"{key} must name one directory, not {out[-1]}")
    if out and not out[-1].strip():
        raise ConfigError(f"{key} is empty; give the directory to write into, e.g. "
                          f"{key}=outputs/my-run")
    _check_writable(Path(out[-1]) if out else Path("outputs"))
    if out:  # the default directories are new ones, named by the time
        (check_not_foreign_sweep if multirun else check_not_foreign)(Path(out[-1]), key)
    if not multirun:
        cfg, _ = compose_job(overrides, multirun=False)
        if out:
            lock_run_dir(Path(out[-1]))
            check_run_dir(Path(out[-1]), cfg)
        return
    combos = [list(combo) for combo in itertools.islice(_sweep(parsed), _MAX_PRECHECK)]
    points = [compose_job(combo, multirun=True, job_num=num) for num, combo in enumerate(combos)]
    if out:  # a sweep directory that may hold runs already: refuse before Hydra writes
        lock_run_dir(Path(out[-1]))  # one sweep at a time in a sweep directory
        sweep.check_run_dirs(combos, points)  # kept, resumed or new with train.resume=true


def _sweep(parsed) -> itertools.product:
    """The points of a sweep in the order Hydra's basic sweeper numbers them: one list of
    ``key=value`` per key (the last override of a key wins, at its first place), producted."""
    lists: dict[str, list[str]] = {}
    for o in parsed:
        key = o.get_key_element()
        lists[key] = ([f"{key}={v}" for v in o.sweep_string_iterator()]
                      if o.is_sweep_override() else [f"{key}={o.get_value_element_as_str()}"])
    return itertools.product(*lists.values())


def _check_writable(path: Path) -> None:
    """The output directory (or its nearest existing parent) must be a writable directory."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the output directory {path} ({p} is not a writable "
                          f"directory); choose another with hydra.run.dir=... or "
                          f"hydra.sweep.dir=...")
