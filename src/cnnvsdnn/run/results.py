"""The end of a run: metrics of the final parameters on the three splits, and every result file
of the run directory (``metrics.json`` last, as it marks a finished run)."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from rich.table import Table

from ..data import Splits
from ..errors import CnnvsdnnError
from ..evaluation.figures import plot_confusion, plot_gains, plot_mistakes, plot_training
from ..evaluation.metrics import format_split_table, split_metrics
from ..safe_io import atomic_write, write_text
from ..ui import wide_console
from .files import (
    CONFIG,
    CONFUSION,
    FIGURE,
    GAINS,
    LOG,
    METRICS,
    MISTAKES,
    PARAMS,
    PREDICTIONS,
    TABLES,
)
from .log import read_log


def finish_run(cfg: DictConfig, run_dir: Path, data: Splits, title: str, predict,
               flat_params: np.ndarray, named_params: dict, *, steps: int, started: float,
               loop_seconds: float, loop_parts: dict | None = None,
               extra: dict | None = None, cores: int = 1) -> float:
    """Metrics on the three splits with ``predict(X) -> probs``, then every result file.
    ``loop_parts``: seconds before the loop (``setup``: data, engine, compilation) and the
    loop's seconds inside the training steps and the dev evaluations (``train_loop`` and these
    cover the steps this process ran: after a resume, the rest). ``results``: the seconds of
    this function (final metrics, files, figures). With ``cores`` >= 2 the figures are drawn
    by two processes. Returns the dev accuracy."""
    results_started = time.perf_counter()
    run_dir = Path(run_dir)
    info, classes = data.info, list(data.info.classes)
    splits = {}
    for name in ("train", "dev", "test"):
        X, y = getattr(data, name)
        probs = predict(X)
        splits[name] = split_metrics(probs, y, n_classes=info.n_classes)
        if name == "test":
            atomic_write(run_dir / PREDICTIONS,
                         lambda f, p=probs, y=y: np.savez_compressed(f, probs=p, labels=y))
            test_probs = probs
    config_yaml = (run_dir / CONFIG).read_text()
    if cfg.train.save_params:  # with what `cnnvsdnn predict` needs to read new images
        atomic_write(run_dir / PARAMS, lambda f: np.savez(
            f, params=flat_params, step=steps, config=config_yaml,
            input_shape=np.array(info.shape), classes=np.array(classes, dtype=str),
            **named_params))
    write_text(run_dir / TABLES, tables_markdown(title, splits, classes))
    if cfg.train.figures:
        X_test, y_test = data.test
        log = read_log(run_dir / LOG)
        draw_figures([  # two halves of about equal drawing time (the gains: 20 axes)
            [lambda: plot_gains(test_probs, y_test, classes, run_dir / GAINS, title)],
            [lambda: plot_training(log, run_dir / FIGURE, title),
             lambda: plot_confusion(test_probs, y_test, classes, run_dir / CONFUSION, title),
             lambda: plot_mistakes(X_test, test_probs, y_test, classes, run_dir / MISTAKES,
                                   title)]],
            parallel=cores >= 2 and not any(m in sys.modules for m in _THREADED_RUNTIMES))
    now = time.perf_counter()
    seconds = {"train_loop": round(loop_seconds, 3),
               **{k: round(v, 3) for k, v in (loop_parts or {}).items()},
               "results": round(now - results_started, 3), "total": round(now - started, 3)}
    metrics = {"dataset": cfg.dataset.name, "model": cfg.model.name, "engine": cfg.engine.name,
               "seed": cfg.seed, "steps": steps, "splits": splits, "seconds": seconds,
               **(extra or {})}
    if info.path:  # a user's folder or .npz: which data, so runs on other data are told apart
        metrics["data"] = {"path": info.path, "sha256": info.sha256, "classes": classes,
                           "shape": list(info.shape), "n_train": info.n_train,
                           "n_test": info.n_test}
    write_text(run_dir / METRICS, json.dumps(metrics, indent=1))
    print_summary(title, splits, seconds, run_dir)
    return splits["dev"]["accuracy"]


# Libraries whose own threads make a fork unsafe (JAX says so when one happens): a run with
# one of them loaded (the Keras engine's TensorFlow) draws its figures in one process.
_THREADED_RUNTIMES = ("jax", "tensorflow", "torch")


def draw_figures(halves: list[list], parallel: bool) -> None:
    """Run two lists of figure-drawing calls: with ``parallel`` (and Linux's fork) the first in
    a child process while this one runs the second, else one after the other. matplotlib draws
    on one core, and a run's four figures take seconds -- a third of a 2000-step MNIST DNN run;
    two cores draw them in about half the time. The child only draws and writes its files
    (numpy and matplotlib, never the engine's threads, which a fork does not copy); an error
    there is raised here, as the same one line."""
    if not parallel or sys.platform != "linux" or \
            "fork" not in multiprocessing.get_all_start_methods():
        for draw in halves[0] + halves[1]:
            draw()
        return
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_draw_child, args=(halves[0], send), daemon=True)
    with warnings.catch_warnings():  # Python 3.12+ warns of forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    send.close()
    try:
        for draw in halves[1]:
            draw()
    finally:
        child.join()
        try:  # the child sends one message if it failed; its end closes either way
            failure = recv.recv() if recv.poll() else None
        except EOFError:
            failure = None
        recv.close()
    if failure is not None and failure[0] == "os":
        raise OSError(*failure[1:])
    if failure is not None or child.exitcode != 0:
        raise CnnvsdnnError(failure[1] if failure else
                            f"the process drawing the figures ended with code {child.exitcode}")


def _draw_child(draws: list, send) -> None:
    try:
        for draw in draws:
            draw()
    except OSError as ex:  # a full disk: the parent says it as it says any OSError
        send.send(("os", ex.errno, ex.strerror, ex.filename))
        sys.exit(1)
    except Exception as ex:  # one line for the parent, never a traceback
        send.send(("error", str(ex) if isinstance(ex, CnnvsdnnError) else
                   f"drawing the figures failed: {type(ex).__name__}: {ex}"))
        sys.exit(1)


def tables_markdown(title: str, splits: dict, classes: list[str]) -> str:
    """The run's ``tables.md``: accuracy per split, then the test set per class."""
    rows = ["| split | n | accuracy | F1 (weighted) | AR (weighted) |", "|---|---|---|---|---|"]
    for name, m in splits.items():
        rows.append(f"| {name} | {m['n']} | {m['accuracy']:.4f} | {m['f1_weighted']:.4f} | "
                    f"{m['ar_weighted']:.4f} |")
    return (f"# {title}\n\n## Accuracy\n\n" + "\n".join(rows) +
            "\n\n## Test set per class\n\n" + format_split_table(splits["test"], classes) + "\n")


def print_summary(title: str, splits: dict, seconds: dict, run_dir: Path) -> None:
    """The table a user sees at the end of a run, and its wall time."""
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
