"""``cnnvsdnn train -m``: a sweep whose every point runs to its end, whatever the others do.

- :func:`check_run_dirs`: when a sweep goes into a directory given with ``hydra.sweep.dir``,
  the command's precheck (cli/train.py, which composes every point) checks each point's run
  directory before anything is queued: without ``train.resume=true`` it must hold no run; with
  it, a finished run must have the point's config (it is kept) and an interrupted one must be
  resumable (it continues).
- :class:`Sweeper` is Hydra's basic sweeper (the same points, numbers and directories) that
  launches only the points that are not finished, never stops at a failed point, and keeps how
  each one ended. Under the submitit launchers (``hydra/launcher=slurm``, ``submitit_local``) it
  submits the array itself and waits for every job, so a job that SLURM cancels or times out
  is a state in the table, not the end of the command.
- :func:`run_point` is the job: it trains the point and *returns* how it ended. It never ends the
  process with ``sys.exit``: submitit writes no result for that, and its caller would only find
  out from the scheduler, minutes later (or never, without accounting).
- :func:`report` prints, once every point has ended, one ``cnnvsdnn: error: ...`` line per point
  that is not done, a table of every point's state and directory, and the command that continues
  the sweep; ``sweep.json`` in the sweep directory records the same (run/sweeps.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper as HydraSweeper
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ..analysis.plan import hydra_value
from ..config import NOT_A_RESULT, config_diff
from ..engines import engine_class
from ..errors import CnnvsdnnError, ConfigError, Interrupted
from ..evaluation.tables import print_rows
from ..run import checkpoint, run_state, train
from ..run.files import CHECKPOINT, CONFIG, LOG, METRICS, check_not_foreign, check_run_dir
from ..run.sweeps import (
    CANCELLED,
    DONE,
    FAILED,
    INTERRUPTED,
    NOT_RUN,
    PENDING,
    TIMED_OUT,
    PointRecord,
    write_sweep_file,
)

log = logging.getLogger(__name__)

# What the signal that stopped a point's training loop means (run/loop.py stops on each).
_STOPPED_BY = {signal.SIGUSR2: TIMED_OUT,  # SLURM's warning before the time limit
               signal.SIGTERM: INTERRUPTED}  # scancel, the time limit, a shutdown: see sacct
# SLURM job states (sacct) that say why a job ended without its result, or stopped a point.
_SCHEDULER_STATES = {"CANCELLED": CANCELLED, "TIMEOUT": TIMED_OUT, "DEADLINE": TIMED_OUT,
                     "PREEMPTED": INTERRUPTED}
_UNFINISHED_SCHEDULER_STATES = {"PENDING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING",
                                "SUSPENDED", "UNKNOWN", "READY", "CONFIGURING"}


# ------------------------------------------------------------------------------ precheck
def check_run_dirs(combos: list[list[str]], points: list[tuple[DictConfig, Path]]) -> None:
    """Before anything is queued, the run directories of a sweep into a named
    ``hydra.sweep.dir`` (``points``: each point's config and directory, ``combos``: its
    overrides): no two points share one; without ``train.resume=true`` none holds a run; with
    it, a finished run has the point's very config (it is kept) and an interrupted one can be
    resumed (it continues). Raises a one-line ConfigError."""
    labels = point_labels(combos)
    taken: dict[Path, int] = {}
    occupied = []
    revisions = None
    for num, (cfg, run_dir) in enumerate(points):
        run_dir = Path(os.path.abspath(run_dir))
        if run_dir in taken:
            raise ConfigError(f"sweep points {taken[run_dir]} and {num} would share the run "
                              f"directory {run_dir}; give hydra.sweep.subdir a key that tells "
                              f"them apart, e.g. ${{hydra.job.num}}")
        taken[run_dir] = num
        check_not_foreign(run_dir, "a sweep point's directory")
        if not (run_dir / METRICS).exists() and not (run_dir / LOG).exists():
            continue
        if not cfg.train.resume:
            occupied.append(f"{run_dir} already holds "
                            + ("a finished run" if (run_dir / METRICS).exists()
                               else "an unfinished run"))
            continue
        if revisions is None:
            revisions = {name: engine_class(name).revision for name in ("numba", "keras")}
        try:
            if (run_dir / METRICS).exists():  # kept: the very config (threads included)
                run_state(run_dir, OmegaConf.to_yaml(cfg, resolve=True), revisions,
                          ignore=NOT_A_RESULT, elsewhere="choose another hydra.sweep.dir")
            else:
                check_run_dir(run_dir, cfg)  # continued: what a resume needs
        except ConfigError as ex:
            about = f" ({labels[num]})" if labels[num] else ""
            raise ConfigError(f"sweep point {num}{about}: {ex}") from None
    if occupied:
        raise ConfigError(
            f"{len(occupied)} of the sweep's {len(points)} points already hold a run (e.g. "
            f"{occupied[0]}); continue the sweep with the same command plus train.resume=true "
            f"(finished points are kept), or choose another hydra.sweep.dir (nothing was "
            f"overwritten)")


def point_run_dir(cfg: DictConfig, num: int) -> Path | None:
    """The run directory of sweep point ``num`` whose config (with its ``hydra`` node) is
    ``cfg``: ``hydra.sweep.dir``/``hydra.sweep.subdir``, as Hydra's launchers make it; None if
    it depends on what only the launcher knows (``${hydra.job.id}``, say)."""
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.job.num = num
    try:
        return Path(os.path.abspath(os.path.join(str(cfg.hydra.sweep.dir),
                                                 str(cfg.hydra.sweep.subdir))))
    except Exception:  # an interpolation OmegaConf cannot resolve yet
        return None


def finished(run_dir: Path, cfg: DictConfig) -> bool:
    """Whether ``run_dir`` holds a finished run of ``cfg`` (a resumed sweep keeps it)."""
    return ((run_dir / METRICS).is_file() and (run_dir / CONFIG).is_file()
            and not config_diff((run_dir / CONFIG).read_text(),
                                OmegaConf.to_yaml(cfg, resolve=True), NOT_A_RESULT))


def _job_config(full: DictConfig) -> DictConfig:
    """A point's config without its ``hydra`` node: what the job gets."""
    cfg = full.copy()
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


# ------------------------------------------------------------------------------ the job
def run_point(cfg: DictConfig, run_dir: Path) -> PointRecord:
    """Train one sweep point and return how it ended (its state and one-line message).

    With ``train.resume=true`` a finished point of the same config is kept, an interrupted
    one continues, and one that never started starts. A signal that stops the point in the
    command's own process (the basic launcher, one point after another) stops the sweep: the
    Interrupted error goes up to the command, as for a single run."""
    hc = HydraConfig.get()
    rec = PointRecord(num=int(hc.job.num), overrides=list(hc.overrides.task),
                      run_dir=str(run_dir))
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    with _time_limit_warning():
        try:
            if cfg.train.resume and finished(run_dir, cfg):
                rec.state, rec.kept = DONE, True
                return rec
            if cfg.train.resume and not (run_dir / LOG).exists():  # never started: start it
                with read_write(cfg):
                    cfg.train.resume = False
            train(cfg, run_dir)
            rec.state = DONE
        except Interrupted as ex:
            if os.getpid() == _PARENT_PID or full_error:
                raise
            if (run_dir / METRICS).is_file():  # it came while the results were written
                rec.state = DONE
            else:
                signum = ex.exit_code - 128
                rec.state = _STOPPED_BY.get(signum, INTERRUPTED)
                rec.message = _stopped_message(run_dir, signum)
        except CnnvsdnnError as ex:
            if full_error:
                raise
            rec.state, rec.message = FAILED, str(ex)
        except OSError as ex:  # a full disk, a file removed under us
            if full_error:
                raise
            where = f" ({ex.filename})" if ex.filename else ""
            rec.state = FAILED
            rec.message = (f"{ex.strerror or ex}{where}; check the disk and the run directory, "
                           f"then resume with train.resume=true")
    if rec.state != DONE and os.environ.get("SUBMITIT_EXECUTOR"):
        print(f"cnnvsdnn: error: {rec.message}", file=sys.stderr)  # into the job's own log
    return rec


def _stopped_message(run_dir: Path, signum: int) -> str:
    name = signal.Signals(signum).name
    why = " (the time limit is near)" if signum == signal.SIGUSR2 else ""
    try:
        step = checkpoint.load(run_dir)["step"] if (run_dir / CHECKPOINT).exists() else None
    except CnnvsdnnError as ex:
        return f"stopped by {name}{why}; {ex}"
    if step is not None:
        saved = f"its checkpoint at step {step} and log are saved"
    elif (run_dir / LOG).exists():  # the loop saves one at its stop if its engine can resume
        saved = "its log is saved, no checkpoint (its engine cannot resume: it starts again)"
    else:
        saved = "before training started: nothing to save"
    return f"stopped by {name}{why}; {saved}"


@contextmanager
def _time_limit_warning():
    """In a submitit job, SLURM's pre-timeout SIGUSR2 (the preset's ``signal_delay_s``) would go
    to submitit's handler, which raises inside whatever code runs (or requeues the job, which the
    preset does not ask for). ``train`` handles it from its start (run/loop.py: at once before
    the loop, after the current step in it, after the results once they are written); a signal
    that comes before ``train`` listens is kept and sent again once it does, one that comes
    after ``train`` returned is only noted."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        yield
        return
    ended = threading.Event()

    def forward():  # wait for the loop's handler, then give it the signal
        while not ended.wait(0.1):
            if signal.getsignal(signal.SIGUSR2) is not keep:
                if not ended.is_set():  # (not submitit's handler, back after the job)
                    os.kill(os.getpid(), signal.SIGUSR2)
                return

    def keep(signum, frame):
        print("cnnvsdnn: SIGUSR2 (the time limit is near) outside the training loop",
              file=sys.stderr)
        threading.Thread(target=forward, daemon=True).start()

    old = signal.signal(signal.SIGUSR2, keep)
    try:
        yield
    finally:
        ended.set()
        signal.signal(signal.SIGUSR2, old)


# ------------------------------------------------------------------------------ the sweeper
_PARENT_PID: int | None = None  # the command's process (the basic launcher runs jobs in it)
_RESULT: dict = {}  # the last sweep of this process: sweep_dir, command, points


class Sweeper(HydraSweeper):
    """Hydra's basic sweeper (``hydra/sweeper=cnnvsdnn``, the default in conf/config.yaml): the
    same points in the same order, numbered and placed the same, but every point runs to its end
    and its outcome is kept for :func:`report`.

    (Not a subclass of BasicSweeper: Hydra's plugin scan executes that module a second time,
    after which BasicSweeper's own ``super(BasicSweeper, self)`` fails for subclasses.)"""

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None):
        super().__init__()
        self.max_batch_size, self.params = max_batch_size, dict(params or {})
        self.hydra_context = self.config = self.launcher = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list:
        global _PARENT_PID
        _PARENT_PID = os.getpid()
        params = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = BasicSweeper.split_arguments(parser.parse_overrides(params),
                                               self.max_batch_size)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        command = ["cnnvsdnn", "train", *sys.argv[1:]]
        planned: list[list[PointRecord]] = []
        num = 0
        for batch in batches:  # composing each point also checks it, as the basic sweeper does
            planned.append([])
            for overrides in batch:
                planned[-1].append(self._plan(list(overrides), num))
                num += 1
        points = [p for batch in planned for p in batch]
        _RESULT.clear()
        _RESULT.update(sweep_dir=sweep_dir, command=command, points=points)
        write_sweep_file(sweep_dir, command, points)
        try:
            for batch in planned:
                todo = [p for p in batch if p.state != DONE]
                if todo:
                    self._launch(todo)
        except BaseException:  # Ctrl-C, or an interrupted point in this very process
            for p in points:
                if p.state == PENDING and not p.job_id and p.run_dir != "?":
                    p.state = _state_on_disk(Path(p.run_dir))  # (submitted jobs keep running)
            raise
        finally:
            write_sweep_file(sweep_dir, command, points)
        return [points]

    def _plan(self, overrides: list[str], num: int) -> PointRecord:
        full = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        run_dir = point_run_dir(full, num)
        rec = PointRecord(num=num, overrides=overrides, run_dir=str(run_dir or "?"))
        cfg = _job_config(full)
        # a resumed sweep keeps its finished points (of this very config) without a job
        if run_dir is not None and cfg.train.resume and finished(run_dir, cfg):
            rec.state, rec.kept = DONE, True
        return rec

    def _launch(self, todo: list[PointRecord]) -> None:
        submitit = _submitit_launcher()
        if submitit is not None and isinstance(self.launcher, submitit):
            _launch_submitit(self.launcher, todo)
            return
        # other launchers number the points of one launch() consecutively
        groups: list[list[PointRecord]] = []
        for p in todo:
            if groups and groups[-1][-1].num == p.num - 1:
                groups[-1].append(p)
            else:
                groups.append([p])
        for group in groups:
            returns = self.launcher.launch([p.overrides for p in group],
                                           initial_job_idx=group[0].num)
            for p, ret in zip(group, returns):
                _take_return(p, ret)


def _state_on_disk(run_dir: Path) -> str:
    if (run_dir / METRICS).is_file():
        return DONE
    return INTERRUPTED if (run_dir / LOG).exists() else NOT_RUN


def _take_return(p: PointRecord, ret) -> None:
    """Copy how a point ended from Hydra's JobReturn of its job."""
    value = ret._return_value
    if ret.hydra_cfg is not None:  # where the launcher put it
        p.run_dir = str(ret.hydra_cfg.hydra.runtime.output_dir)
    if ret.status == JobStatus.COMPLETED and isinstance(value, PointRecord):
        p.state, p.message, p.kept = value.state, value.message, value.kept
    elif ret.status == JobStatus.COMPLETED:  # not our job function (a test's, say)
        p.state = DONE
    else:  # an exception our job did not turn into a state: a bug; HYDRA_FULL_ERROR shows it
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise value
        last = str(value).strip().splitlines()
        p.state = FAILED
        p.message = (f"unexpected {type(value).__name__}"
                     + (f": {last[-1]}" if last else "")
                     + "; HYDRA_FULL_ERROR=1 shows the traceback")


# ------------------------------------------------------------------------------ submitit
def _submitit_launcher():
    """Hydra's submitit launcher class, or None without the ``sweep`` extra."""
    try:
        from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
            BaseSubmititLauncher,
        )
    except ImportError:
        return None
    return BaseSubmititLauncher


def _launch_submitit(launcher, todo: list[PointRecord]) -> None:
    """What the submitit launcher's own ``launch`` does (one array job; each task calls the
    launcher with its point's overrides and number), except that it waits for *every* job
    rather than raising at the first that did not complete, and submits only ``todo``."""
    import submitit  # the sweep extra; only needed here
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    kind = launcher._EXECUTOR
    params = dict(launcher.params)
    init = {"folder": params.pop("submitit_folder")}
    if "max_num_timeout" in params:
        init[f"{kind}_max_num_timeout"] = params.pop("max_num_timeout")
    executor = submitit.AutoExecutor(cluster=kind, **init)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"{kind}_{k}": v
                                  for k, v in params.items()})
    log.info(f"Submitit '{kind}' sweep output dir : {launcher.config.hydra.sweep.dir}")
    for p in todo:
        log.info(f"\t#{p.num} : {' '.join(p.overrides)}")
    jobs = executor.map_array(launcher, [p.overrides for p in todo],
                              ["hydra.sweep.dir"] * len(todo), [p.num for p in todo],
                              [f"job_id_for_{p.num}" for p in todo],
                              [Singleton.get_state()] * len(todo))
    for p, job in zip(todo, jobs):
        p.job_id = str(job.job_id)
    write_sweep_file(_RESULT["sweep_dir"], _RESULT["command"], _RESULT["points"])
    pending = dict(zip(range(len(todo)), jobs))
    try:
        while pending:
            for i, job in list(pending.items()):
                if job.done():
                    _take_job(todo[i], job)
                    del pending[i]
            if pending:
                time.sleep(1)
    except KeyboardInterrupt:
        ids = " ".join(str(j.job_id) for j in pending.values())
        for i in pending:
            todo[i].message = "still running when the command was interrupted"
        print(f"cnnvsdnn: stopped waiting; {len(pending)} jobs keep running (scancel {ids} "
              f"stops them); once they have ended, run the same command plus train.resume=true",
              file=sys.stderr)
        raise


def _take_job(p: PointRecord, job) -> None:
    """How a submitit job ended: its result when it wrote one (our job always does, unless it
    was killed), else the scheduler's word."""
    try:
        [ret] = job.results()
    except Exception as ex:  # no result: killed (cancelled, time limit, memory, node)
        state = _final_state(job)
        p.state = _SCHEDULER_STATES.get(state.split()[0] if state else "", FAILED)
        last = [ln for ln in str(ex).splitlines() if ln.strip() and not ln.startswith("-")]
        why = f"the job ended as {state or 'unknown'} without a result"
        if "failed during processing" in str(ex) and last:
            why = f"the job raised {last[-2] if len(last) > 1 else last[-1]}"
        p.message = f"{why}; its log: {job.paths.stderr}"
        return
    _take_return(p, ret)
    if p.state == INTERRUPTED and job.__class__.__name__ == "SlurmJob":
        # SIGTERM stopped the loop: the scheduler says whether it was scancel or the limit
        state = _final_state(job).split()[0]
        p.state = _SCHEDULER_STATES.get(state, INTERRUPTED)


def _final_state(job, wait_s: float = 30) -> str:
    """The job's state once the scheduler has recorded its end (sacct lags by a second or so);
    '' if it cannot say."""
    deadline = time.time() + wait_s
    while True:
        try:
            state = str(job.watcher.get_state(job.job_id, mode="force"))
        except Exception:  # no sacct (a local job), or accounting is off
            return str(getattr(job, "state", "") or "")
        if state.split()[0] not in _UNFINISHED_SCHEDULER_STATES or time.time() > deadline:
            return state
        time.sleep(1)


# ------------------------------------------------------------------------------ the report
def started() -> bool:
    """Whether this process has started a sweep whose report is still to be printed."""
    return bool(_RESULT)


def report(exit_code: int = 0) -> int:
    """After a sweep: one error line per point that is not done, the table of every point, and
    the command that continues the sweep. Returns the command's exit code: ``exit_code`` if it is
    not 0 (an interruption) or no sweep ran, else 0 when every point is done and 1 if not."""
    if not _RESULT:
        return exit_code
    sweep_dir, command, points = _RESULT["sweep_dir"], _RESULT["command"], _RESULT["points"]
    _RESULT.clear()
    label = dict(zip((p.num for p in points), point_labels([p.overrides for p in points])))
    for p in points:
        if p.state not in (DONE, NOT_RUN) and p.message:
            about = ", ".join(x for x in (label[p.num], p.job_id and f"job {p.job_id}") if x)
            print(f"cnnvsdnn: error: point {p.num}{f' ({about})' if about else ''} {p.state}: "
                  f"{p.message}", file=sys.stderr)
    counts: dict[str, int] = {}
    for p in points:
        counts[p.state] = counts.get(p.state, 0) + 1
    rows = [["#", "point", "state", "job", "run directory"]]
    for p in points:
        state = f"{p.state} (kept)" if p.kept else p.state
        rows.append([str(p.num), label[p.num] or "-", state, p.job_id or "-", p.run_dir])
    sys.stdout.flush()
    print_rows(f"sweep {sweep_dir}: {len(points)} points, "
               + ", ".join(f"{n} {s}" for s, n in counts.items()), rows)
    if any(p.state != DONE for p in points):
        print("continue the sweep (finished points are kept): "
              + _resume_command(command, sweep_dir))
    if exit_code:
        return exit_code
    return 0 if all(p.state == DONE for p in points) else 1


def point_labels(points: list[list[str]]) -> list[str]:
    """Each point as the overrides that tell it from the others (``model=cnn seed=1``)."""
    values: dict[str, set[str]] = {}
    for overrides in points:
        for o in overrides:
            k, _, v = o.partition("=")
            values.setdefault(k, set()).add(v)
    varying = {k for k, vs in values.items() if len(vs) > 1}
    return [" ".join(o for o in overrides if o.partition("=")[0] in varying)
            for overrides in points]


def _resume_command(command: list[str], sweep_dir: Path) -> str:
    args = [a for a in command if not a.startswith(("train.resume=", "hydra.sweep.dir="))]
    args += ["train.resume=true", f"hydra.sweep.dir={hydra_value(sweep_dir)}"]
    return " ".join(shlex.quote(a) for a in args)
