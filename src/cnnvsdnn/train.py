"""One training run: data -> model -> the loop of SPEC section 5 -> the run directory files.

``train(cfg, run_dir)`` is a plain function (the CLI's Hydra wrapper and the tests call it).
Read it top to bottom: it is the whole data flow from config to files.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from omegaconf import DictConfig, OmegaConf

from cnnvsdnn import checkpoint
from cnnvsdnn.errors import CnnvsdnnError, ConfigError
from cnnvsdnn.progress import TrainingProgress, compiling

# Files of a finished run directory (SPEC section 9).
LOG, METRICS, PREDICTIONS, PARAMS, TABLES, FIGURE, CONFIG = (
    "log.h5", "metrics.json", "predictions_test.npz", "params.npz", "tables.md",
    "training.png", "config.yaml")


class Interrupted(CnnvsdnnError):
    """SIGINT or SIGTERM: the run stopped after a whole step, with checkpoint and log saved."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum  # 130 for SIGINT, 143 for SIGTERM


def check_run_dir(run_dir: Path, cfg: DictConfig) -> None:
    """Refuse a run directory that already holds a run, unless resuming it with its own config.
    Called before Hydra writes anything into it, and again by ``train``."""
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
    _check_same_config((run_dir / CONFIG).read_text(), OmegaConf.to_yaml(cfg, resolve=True),
                       run_dir)


class BatchOrder:
    """Endless batches of indices: a fresh shuffle each epoch; the last partial batch wraps
    into the next epoch's order (SPEC section 5). Its state goes into checkpoints."""

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator):
        self.n, self.batch_size, self.rng = n, batch_size, rng
        self.order, self.pos = rng.permutation(n), 0

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        b = self.batch_size
        if self.pos + b <= self.n:
            self.pos += b
            return self.order[self.pos - b:self.pos]
        head = self.order[self.pos:]
        self.order = self.rng.permutation(self.n)
        self.pos = b - head.size
        return np.concatenate([head, self.order[:self.pos]])

    def state(self) -> dict:
        return {"order": self.order, "pos": self.pos, "rng_state": self.rng.bit_generator.state}

    def load(self, order, pos: int, rng_state: dict) -> None:
        self.order, self.pos = np.asarray(order), int(pos)
        self.rng.bit_generator.state = rng_state



def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of predicted probabilities (for evaluation; training uses logits)."""
    p = probs[np.arange(labels.size), labels].astype(np.float64)
    return float(-np.mean(np.log(np.maximum(p, np.finfo(np.float64).tiny))))


def train(cfg: DictConfig, run_dir: Path) -> float:
    """Train ``cfg.model`` on ``cfg.dataset`` and write the run directory. Returns dev accuracy."""
    from cnnvsdnn.engine import REVISION as ENGINE_REVISION
    from cnnvsdnn.engine import Adam, build_model, set_threads
    from cnnvsdnn.parallel import effective_threads
    from cnnvsdnn.runlog import RunLog

    started = time.perf_counter()
    config_yaml = prepare_run_dir(cfg, run_dir)
    run_dir = Path(run_dir)
    t = cfg.train
    # killed before its first checkpoint: a resume starts again from step 0 in the same directory
    resumable = t.resume and (run_dir / checkpoint.NAME).exists()
    ckpt = checkpoint.load(run_dir) if resumable else None
    if ckpt is not None and ckpt["engine_revision"] != ENGINE_REVISION:
        raise ConfigError(f"{run_dir}'s checkpoint was written by engine revision "
                          f"{ckpt['engine_revision']}, this cnnvsdnn's is {ENGINE_REVISION}: "
                          f"resuming would mix two engines' numbers; train it again in another "
                          f"hydra.run.dir (or delete it)")
    threads = effective_threads(cfg)  # this job's share of the CPUs in a parallel sweep
    set_threads(threads)
    data = load_splits(cfg)
    info = data.info
    X_train, y_train = data.train

    # --- model and optimiser; independent random streams for init and batch order
    init_seq, order_seq = np.random.SeedSequence(cfg.seed).spawn(2)
    layers = OmegaConf.to_container(cfg.model.layers, resolve=True)
    model = build_model(layers, input_shape=tuple(info.shape), n_classes=info.n_classes,
                        rng=np.random.default_rng(init_seq), batch_size=t.batch_size)
    o = cfg.optimizer
    opt = Adam(model.n_params, lr=o.lr, beta1=o.beta1, beta2=o.beta2, eps=o.eps)
    batches = BatchOrder(y_train.size, t.batch_size, np.random.default_rng(order_seq))
    first = 1
    if ckpt is not None:  # continue exactly where the checkpoint left off
        model.load_params(ckpt["params"])
        opt.load_state(ckpt["adam_m"], ckpt["adam_v"], ckpt["adam_t"])
        batches.load(ckpt["order"], ckpt["pos"], ckpt["rng_state"])
        first = ckpt["step"] + 1

    def save_checkpoint(step: int) -> None:
        s = batches.state()
        checkpoint.save(run_dir, step=step, params=model.params, adam_m=opt.m, adam_v=opt.v,
                        adam_t=opt.t, order=s["order"], pos=s["pos"], rng_state=s["rng_state"],
                        config_yaml=config_yaml, engine_revision=ENGINE_REVISION)

    # --- the loop: every step a batch cost/accuracy; every eval_every steps the dev set
    title = f"{cfg.dataset.name} {cfg.model.name} seed {cfg.seed}"
    xb = np.empty((t.batch_size, *info.shape), dtype=np.float32)
    buf = np.zeros((3, t.eval_every))  # step, cost, accuracy; flushed to the log every eval
    nbuf = 0
    dev_acc = float("nan")
    stop = _SignalFlag()
    compiling(lambda: (model.warm_up(X_train), opt.warm_up()), enabled=cfg.progress)
    loop_started = time.perf_counter()
    with RunLog(run_dir / LOG, config_yaml, resume=t.resume) as log, \
            TrainingProgress(t.steps, title, enabled=cfg.progress, start=first - 1) as bar, stop:
        log.truncate_after(first - 1)  # rows past the checkpoint are redone
        for step in range(first, t.steps + 1):
            idx = next(batches)
            model.gather(X_train, idx, out=xb)
            cost, acc = model.loss_and_grad(xb, y_train[idx])
            opt.step(model.params, model.grads)
            buf[:, nbuf] = step, cost, acc
            nbuf += 1
            diverged = not math.isfinite(cost)
            save = step % t.checkpoint_every == 0 or step == t.steps or stop.signum
            if nbuf == t.eval_every or save or diverged:  # the log never lags a checkpoint
                log.append_train(buf[0, :nbuf], buf[1, :nbuf], buf[2, :nbuf])
                nbuf = 0
            if diverged or (step % t.eval_every == 0 and not np.isfinite(model.params).all()):
                log.flush()
                raise CnnvsdnnError(
                    f"training diverged at step {step}: the cost or a parameter is not finite; "
                    f"the usual cause is a learning rate too high (optimizer.lr={o.lr}), try a "
                    f"smaller one. The log and the last checkpoint stay in {run_dir}")
            if step % t.eval_every == 0:
                X_dev, y_dev = data.dev
                p_dev = model.predict_proba(X_dev, chunk=t.eval_chunk)
                dev_acc = float(np.mean(p_dev.argmax(1) == y_dev))
                log.append_dev(step, cross_entropy(p_dev, y_dev), dev_acc)
                log.flush()
            if save:
                log.flush()
                save_checkpoint(step)
            bar.update(step, cost, acc, dev_acc)
            if stop.signum:
                name = signal.Signals(stop.signum).name
                raise Interrupted(
                    f"{name} at step {step} of {t.steps}: checkpoint and log saved; continue "
                    f"with the same command plus train.resume=true hydra.run.dir={run_dir}",
                    stop.signum)
    loop_seconds = time.perf_counter() - loop_started

    # --- the result: the final parameters and their metrics on the three splits
    def predict(X):
        return model.predict_proba(X, chunk=t.eval_chunk)

    return finish_run(cfg, run_dir, data, title, predict, model.params, model.layer_params(),
                      steps=t.steps, started=started, loop_seconds=loop_seconds,
                      extra={"threads": threads, "engine_revision": ENGINE_REVISION})


class Splits(NamedTuple):
    """A dataset's three splits as ``(X uint8 (N,H,W,C), y int64 (N,))`` and its info."""

    info: object
    train: tuple
    dev: tuple
    test: tuple


def prepare_run_dir(cfg: DictConfig, run_dir: Path) -> str:
    """Validate, refuse a directory holding another run, create it, write ``config.yaml``.
    Returns the resolved config as YAML (it goes into the log and the checkpoints)."""
    from cnnvsdnn.config import validate

    validate(cfg)
    run_dir = Path(run_dir)
    check_run_dir(run_dir, cfg)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise ConfigError(f"cannot create the run directory {run_dir} ({ex.strerror}); "
                          f"choose a writable hydra.run.dir") from None
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    (run_dir / CONFIG).write_text(config_yaml)
    return config_yaml


def load_splits(cfg: DictConfig) -> Splits:
    """The official training set split into train and dev (SPEC section 2), and the test set."""
    from cnnvsdnn.data import dev_split, load_dataset

    t = cfg.train
    ds = load_dataset(cfg.dataset.name, verify=cfg.data.verify, mirror=cfg.data.mirror,
                      progress=cfg.progress)
    n_all = ds.train_y.size
    if t.dev_size >= n_all or t.batch_size > n_all - t.dev_size:
        raise ConfigError(f"train.dev_size={t.dev_size} and train.batch_size={t.batch_size} do "
                          f"not fit the {n_all} training images of {cfg.dataset.name}")
    mode = t.dev_split.value if hasattr(t.dev_split, "value") else str(t.dev_split)
    train_idx, dev_idx = dev_split(n_all, t.dev_size, mode=mode, seed=cfg.seed)
    return Splits(ds.info, (ds.train_X[train_idx], ds.train_y[train_idx].astype(np.int64)),
                  (ds.train_X[dev_idx], ds.train_y[dev_idx].astype(np.int64)),
                  (ds.test_X, ds.test_y.astype(np.int64)))


def finish_run(cfg: DictConfig, run_dir: Path, data: Splits, title: str, predict,
               flat_params: np.ndarray, named_params: dict, *, steps: int, started: float,
               loop_seconds: float, extra: dict | None = None) -> float:
    """Metrics on the three splits with ``predict(X) -> probs``, then every result file;
    ``metrics.json`` last, as it marks a finished run. Returns the dev accuracy."""
    from cnnvsdnn.metrics import split_metrics
    from cnnvsdnn.plots import plot_training
    from cnnvsdnn.runlog import read_log

    run_dir = Path(run_dir)
    splits = {}
    for name in ("train", "dev", "test"):
        X, y = getattr(data, name)
        probs = predict(X)
        splits[name] = split_metrics(probs, y, n_classes=data.info.n_classes)
        if name == "test":
            np.savez_compressed(run_dir / PREDICTIONS, probs=probs, labels=y)
    config_yaml = (run_dir / CONFIG).read_text()
    if cfg.train.save_params:
        np.savez(run_dir / PARAMS, params=flat_params, step=steps, config=config_yaml,
                 **named_params)
    (run_dir / TABLES).write_text(tables_markdown(title, splits, list(data.info.classes)))
    plot_training(read_log(run_dir / LOG), run_dir / FIGURE, title)
    seconds = {"train_loop": round(loop_seconds, 3),
               "total": round(time.perf_counter() - started, 3)}
    metrics = {"dataset": cfg.dataset.name, "model": cfg.model.name, "engine": cfg.engine.name,
               "seed": cfg.seed, "steps": steps, "splits": splits, "seconds": seconds,
               **(extra or {})}
    tmp = run_dir / (METRICS + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=1))
    tmp.replace(run_dir / METRICS)
    print_summary(title, splits, seconds, run_dir)
    return splits["dev"]["accuracy"]


class _SignalFlag:
    """While active, SIGINT/SIGTERM only set ``signum``; the loop stops after the whole step."""

    signum = 0

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def _check_same_config(saved: str, current: str, run_dir: Path) -> None:
    """A resumed run must continue with the config it started with (resume itself aside)."""
    from cnnvsdnn.config import config_diff

    diff = config_diff(saved, current)
    if diff:
        raise ConfigError(f"cannot resume {run_dir} with a different config ({', '.join(diff)} "
                          f"differ); resume with the same overrides plus train.resume=true")


def run_state(run_dir: Path, config_yaml: str, ignore=None) -> str:
    """What a planned run directory holds: ``done`` (a finished run of this config),
    ``resume`` (an interrupted one) or ``new``. A run of another config is a ConfigError.
    ``ignore``: config keys that may differ (default: those that change no result)."""
    from cnnvsdnn.config import NOT_A_RESULT, config_diff

    saved = run_dir / CONFIG
    if not saved.is_file():
        if (run_dir / LOG).exists():
            raise ConfigError(f"{run_dir} holds a run without its {CONFIG}; delete it to "
                              f"retrain it")
        return "new"
    diff = config_diff(saved.read_text(), config_yaml, NOT_A_RESULT if ignore is None else ignore)
    if diff:
        raise ConfigError(f"{run_dir} holds a run with another config ({', '.join(diff)} "
                          f"differ); delete it to retrain, or pass --runs-dir DIR to keep it")
    if (run_dir / METRICS).is_file():
        _check_engine_revision(run_dir)
        return "done"
    return "resume" if (run_dir / LOG).is_file() else "new"


def _check_engine_revision(run_dir: Path) -> None:
    """A finished numba run made by an engine that computes differently is not reused."""
    from cnnvsdnn.engine import REVISION

    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{run_dir / METRICS} cannot be read; delete {run_dir} to retrain "
                          f"it") from None
    revision = metrics.get("engine_revision", 1)
    if metrics.get("engine") == "numba" and revision != REVISION:
        raise ConfigError(f"{run_dir} was trained by engine revision {revision}, this "
                          f"cnnvsdnn's is {REVISION} and gives other numbers; delete it to "
                          f"retrain, or pass --runs-dir DIR to keep it")


def tables_markdown(title: str, splits: dict, classes: list[str]) -> str:
    """The run's ``tables.md``: accuracy per split, then the test set per class."""
    from cnnvsdnn.metrics import format_split_table

    rows = ["| split | n | accuracy | F1 (weighted) | AR (weighted) |", "|---|---|---|---|---|"]
    for name, m in splits.items():
        rows.append(f"| {name} | {m['n']} | {m['accuracy']:.4f} | {m['f1_weighted']:.4f} | "
                    f"{m['ar_weighted']:.4f} |")
    return (f"# {title}\n\n## Accuracy\n\n" + "\n".join(rows) +
            "\n\n## Test set per class\n\n" + format_split_table(splits["test"], classes) + "\n")


def print_summary(title: str, splits: dict, seconds: dict, run_dir: Path) -> None:
    """The table a user sees at the end of a run, and its wall time."""
    from rich.table import Table

    from cnnvsdnn.console import wide_console

    table = Table(title=title)
    for col in ("split", "n", "accuracy", "F1 (weighted)", "AR (weighted)"):
        table.add_column(col, justify="right")
    for name, m in splits.items():
        table.add_row(name, str(m["n"]), f"{m['accuracy']:.4f}", f"{m['f1_weighted']:.4f}",
                      f"{m['ar_weighted']:.4f}")
    console = wide_console()
    console.print(table)
    console.print(f"wall time {seconds['total']:.1f} s (training loop "
                  f"{seconds['train_loop']:.1f} s); run directory {run_dir}",
                  highlight=False, soft_wrap=True)
