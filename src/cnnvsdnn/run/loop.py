"""One training run, top to bottom: config -> data -> engine -> the loop -> the run directory.

``train(cfg, run_dir)`` is a plain function (the CLI's Hydra wrapper and the tests call it) and
the one training loop of every engine. The protocol it follows:

- batches of ``train.batch_size`` drawn by shuffling the training split each epoch;
- every step: the batch's cost and accuracy into the log;
- every ``train.eval_every`` steps: cost and accuracy on the whole development split (in
  chunks, never back-propagated) into the log (its rows are written every ``LOG_EVERY``
  steps and at every checkpoint);
- the final parameters are the result (no early stopping): their metrics on the training,
  development and test splits, the predictions, the parameters, the tables and the figure;
- a checkpoint every ``train.checkpoint_every`` steps and on a signal (see ``train``), from which
  ``train.resume=true`` continues bit for bit.
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from .. import engines, host
from ..config import validate
from ..data import load_splits
from ..errors import CnnvsdnnError, ConfigError, Interrupted
from ..evaluation.metrics import cross_entropy
from ..safe_io import write_text
from ..ui import TrainingProgress, compiling, warn, wide_console
from . import checkpoint
from .batches import BatchOrder
from .cpus import effective_threads
from .drawing import FigureDrawer
from .files import CHECKPOINT, CONFIG, LOG, check_not_foreign, check_run_dir, lock_run_dir
from .log import RunLog
from .results import finish_run, start_figures
from .schedule import schedule

LOG_EVERY = 500  # steps between writes of log.h5 (and at every checkpoint)


def train(cfg: DictConfig, run_dir: Path) -> float:
    """Train ``cfg.model`` on ``cfg.dataset`` and write the run directory. Returns dev accuracy.

    SIGINT, SIGTERM, SIGHUP and SIGUSR2 (SLURM's time-limit warning) end it with one line and
    exit code 128 + N wherever they come: before the loop at once (nothing to save), in the loop
    after the current step (checkpoint and log saved), while the results are written once they
    are complete."""
    with _Signals() as signals, FigureDrawer(_Signals.SIGNALS) as drawer:
        return _train(cfg, Path(run_dir), signals, drawer)


def _train(cfg: DictConfig, run_dir: Path, signals: _Signals, drawer: FigureDrawer) -> float:
    started = time.perf_counter()
    config_yaml = prepare_run_dir(cfg, run_dir)
    t = cfg.train
    threads = effective_threads(cfg)  # this job's share of the CPUs in a parallel sweep
    data = load_splits(cfg.dataset, dev_size=t.dev_size, dev_mode=_value(t.dev_split),
                       seed=cfg.seed, verify=cfg.data.verify, mirror=cfg.data.mirror,
                       progress=cfg.progress, cifar10_decode=_value(cfg.data.cifar10_decode))
    info, (X_train, y_train), (X_dev, y_dev) = data.info, data.train, data.dev
    plan = schedule(cfg, y_train.size)
    title = f"{cfg.dataset.name} {cfg.model.name} seed {cfg.seed}"
    if "protocol" in plan.info:
        title += f" ({cfg.engine.name}, {plan.info['protocol']})"
    if t.figures:  # now, while this process has no threads to fork (see run/drawing.py)
        start_figures(drawer, run_dir, data, title, threads)

    # --- the engine, from initial parameters drawn by the seed; independent random streams
    # for the initialisation and the batch order
    init_seq, order_seq = np.random.SeedSequence(cfg.seed).spawn(2)
    net = engines.network(OmegaConf.to_container(cfg.model.layers, resolve=True),
                          tuple(info.shape), info.n_classes)
    params = engines.init_params(net, np.random.default_rng(init_seq), plan.init)
    engine = engines.create(cfg.engine.name, net, params, plan.adam, plan.batch_size, threads,
                            **plan.engine_options)
    batches = BatchOrder(y_train.size, plan.batch_size, np.random.default_rng(order_seq),
                         last=plan.last_batch, labels=y_train)
    first = 1
    # killed before its first checkpoint: a resume starts again from step 0 in the same directory
    if t.resume and (run_dir / CHECKPOINT).exists():  # continue where the checkpoint left off
        ckpt = checkpoint.load(run_dir)
        if ckpt["engine_revision"] != engine.revision:
            raise ConfigError(f"{run_dir}'s checkpoint was written by engine revision "
                              f"{ckpt['engine_revision']}, this cnnvsdnn's is {engine.revision}: "
                              f"resuming would mix two engines' numbers; train it again in "
                              f"another hydra.run.dir (or delete it)")
        try:
            engine.load_state(ckpt["engine_state"])
            batches.load(ckpt["order"], ckpt["pos"], ckpt["rng_state"])
        except (KeyError, ValueError, TypeError, IndexError, CnnvsdnnError) as ex:
            raise ConfigError(f"{run_dir / CHECKPOINT} does not fit this run ({ex}); train it "
                              f"again in another hydra.run.dir") from None
        if not engine.finite():
            raise ConfigError(f"{run_dir / CHECKPOINT} holds parameters that are not finite "
                              f"(the run diverged); train it again with a smaller optimizer.lr "
                              f"in another hydra.run.dir")
        first = ckpt["step"] + 1

    def save_checkpoint(step: int) -> None:
        if engine.resumable:
            saver.save(step=step, engine_state=engine.state(), **batches.state(),
                       config_yaml=config_yaml, engine_revision=engine.revision)

    # --- the loop: every step a batch cost/accuracy; every eval_every steps the dev set
    # plain ints: an attribute of an OmegaConf node costs ~0.1 ms, 5 % of a step
    steps, every = plan.steps, plan.eval_every
    ckpt_every, eval_chunk = int(t.checkpoint_every), int(t.eval_chunk)
    # rows of the log gathered here and written every LOG_EVERY steps and at each checkpoint:
    # an HDF5 append costs ~3 ms, 2 % of a 2000-step MNIST DNN run if made every evaluation
    log_every = max(every, LOG_EVERY)
    # cost and accuracy of each training step since the last write: list appends, ~1 us a step
    # right after a step's kernels have taken the caches, where a store into a NumPy row buffer
    # took ~4 us (0.3 % of an MNIST DNN step)
    costs, accs = [], []
    dev_rows = []  # (step, cost, accuracy) of each development evaluation
    dev_acc = float("nan")
    compiling(lambda: engine.warm_up(X_train), enabled=cfg.progress)
    X_dev_eval = engine.eval_input(X_dev)  # evaluated every `every` steps (after compiling)
    about, slow = engine.about()  # which threading layer and BLAS; a slow fallback says so
    if about:
        wide_console().print(about, highlight=False, soft_wrap=True)
    if slow:
        warn(slow)
    loop_started, jiffies = time.perf_counter(), host.cpu_jiffies()
    step_s = eval_s = 0.0  # the loop's seconds inside train_step and the dev evaluation
    clock = time.perf_counter
    signals.defer()  # from here on a signal stops the loop after its step
    # (the checkpoint writer is left last: every way out waits for its write)
    with checkpoint.Saver(run_dir) as saver, \
            RunLog(run_dir / LOG, config_yaml, resume=t.resume) as log, \
            TrainingProgress(steps, title, enabled=cfg.progress, start=first - 1) as bar:
        log.truncate_after(first - 1)  # rows past the checkpoint are redone
        for step in range(first, steps + 1):
            idx, labels = batches.next_with_labels()
            t0 = clock()
            cost, acc = engine.train_step(X_train, idx, labels)
            step_s += clock() - t0
            costs.append(cost)
            accs.append(acc)
            # read once: a signal that lands later in this step (during the evaluation, say)
            # stops the next one, so the step that stops is always the step saved
            stop = signals.signum
            save = step % ckpt_every == 0 or step == steps or stop
            evaluate = step % every == 0
            # a checkpoint must hold finite parameters (a resume would diverge again)
            diverged = not math.isfinite(cost) or ((save or evaluate) and not engine.finite())
            if evaluate and not diverged:
                t0 = clock()
                p_dev = engine.predict_proba(X_dev_eval, chunk=eval_chunk)
                eval_s += clock() - t0
                dev_acc = float(np.mean(p_dev.argmax(1) == y_dev))
                dev_rows.append((step, cross_entropy(p_dev, y_dev), dev_acc))
            if len(costs) == log_every or save or diverged:  # the log never lags a checkpoint
                log.append_train(np.arange(step - len(costs) + 1, step + 1), costs, accs)
                if dev_rows:
                    log.append_dev(*zip(*dev_rows))
                log.flush()
                costs, accs, dev_rows = [], [], []
            if diverged:
                raise CnnvsdnnError(
                    f"training diverged at step {step}: the cost or a parameter is not finite; "
                    f"the usual cause is a learning rate too high (optimizer.lr="
                    f"{plan.adam.lr}), try a smaller one. The log and the last checkpoint stay "
                    f"in {run_dir}")
            if save:
                save_checkpoint(step)
            bar.update(step, cost, acc, dev_acc)
            if stop:
                saver.wait()
                saved = "checkpoint and log saved" if engine.resumable else "log saved"
                raise Interrupted(
                    f"{signals.name} at step {step} of {steps}: {saved}; continue with the "
                    f"same command plus train.resume=true hydra.run.dir={run_dir}",
                    128 + signals.signum)
    loop_seconds = time.perf_counter() - loop_started
    # a virtual machine's host taking CPU time slows the loop invisibly from the inside
    steal = host.steal_share(jiffies, host.cpu_jiffies())

    # --- the result: the final parameters and their metrics on the three splits
    dev = finish_run(cfg, run_dir, data, title,
                     lambda X: engine.predict_proba(X, chunk=t.eval_chunk),
                     engine.flat_params(), engine.layer_params(), steps=steps,
                     started=started, loop_seconds=loop_seconds,
                     loop_parts={"setup": loop_started - started, "train_steps": step_s,
                                 "dev_eval": eval_s},
                     extra={**plan.info, **engine.info(),
                            "host_steal": None if steal is None else round(steal, 4)},
                     drawer=drawer if drawer.started else None)
    if signals.signum:
        raise Interrupted(f"{signals.name} while the results were written; they are complete: "
                          f"the run in {run_dir} is finished", 128 + signals.signum)
    return dev


def prepare_run_dir(cfg: DictConfig, run_dir: Path) -> str:
    """Validate, refuse a directory holding other files or another run, hold it for this
    process (creating it), write ``config.yaml``. Returns the resolved config as YAML (it goes
    into the log and the checkpoints)."""
    validate(cfg)
    check_not_foreign(run_dir)
    lock_run_dir(run_dir)
    check_run_dir(run_dir, cfg)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    write_text(run_dir / CONFIG, config_yaml)
    return config_yaml


def _value(v):
    return v.value if hasattr(v, "value") else str(v)


class _Signals:
    """SIGINT, SIGTERM, SIGHUP and SIGUSR2 (SLURM's warning ahead of a time limit, see
    conf/hydra/launcher/slurm.yaml) while a run trains. Until :meth:`defer` they raise
    :class:`Interrupted` at once (nothing is written yet that a resume needs); after it they
    only set ``signum``, and the loop stops after its step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2)
    signum = 0
    deferred = False

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def defer(self) -> None:
        self.deferred = True

    def _handle(self, signum, frame):
        self.signum = signum
        if not self.deferred:
            raise Interrupted(f"{self.name} before training started: nothing changed; run the "
                              f"same command again", 128 + signum)

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False
