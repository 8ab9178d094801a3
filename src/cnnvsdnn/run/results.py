"""The end of a run: metrics of the final parameters on the three splits, and every result file
of the run directory (``metrics.json`` last, as it marks a finished run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from rich.table import Table

from .. import host
from ..data import Splits
from ..evaluation.figures import (
    confusion_layout,
    gains_layout,
    plot_confusion,
    plot_gains,
    plot_mistakes,
    plot_training,
    training_layout,
)
from ..evaluation.metrics import format_split_table, split_metrics
from ..safe_io import atomic_write, write_text
from ..ui import wide_console
from .drawing import FigureDrawer
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
               extra: dict | None = None, drawer: FigureDrawer | None = None) -> float:
    """Metrics on the three splits with ``predict(X) -> probs``, then every result file.
    ``loop_parts``: seconds before the loop (``setup``: data, engine, compilation) and the
    loop's seconds inside the training steps and the dev evaluations (``train_loop`` and these
    cover the steps this process ran: after a resume, the rest). ``results``: the seconds of
    this function (final metrics, files, figures). ``drawer`` (started by :func:`start_figures`)
    draws the figures from the test predictions while the other splits are evaluated.
    Returns the dev accuracy."""
    results_started = time.perf_counter()
    run_dir = Path(run_dir)
    info, classes = data.info, list(data.info.classes)
    X_test, y_test = data.test
    test_probs = predict(X_test)  # first: the figures need only these and the log
    if drawer is not None:
        drawer.draw(test_probs, read_log(run_dir / LOG))
    atomic_write(run_dir / PREDICTIONS,
                 lambda f: np.savez_compressed(f, probs=test_probs, labels=y_test))
    splits = {}
    for name in ("train", "dev"):
        X, y = getattr(data, name)
        splits[name] = split_metrics(predict(X), y, n_classes=info.n_classes)
    splits["test"] = split_metrics(test_probs, y_test, n_classes=info.n_classes)
    config_yaml = (run_dir / CONFIG).read_text()
    if cfg.train.save_params:  # with what `cnnvsdnn predict` needs to read new images
        atomic_write(run_dir / PARAMS, lambda f: np.savez(
            f, params=flat_params, step=steps, config=config_yaml,
            input_shape=np.array(info.shape), classes=np.array(classes, dtype=str),
            **named_params))
    write_text(run_dir / TABLES, tables_markdown(title, splits, classes))
    if drawer is not None:
        drawer.wait()
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
    print_summary(title, splits, seconds, run_dir, (extra or {}).get("host_steal"))
    return splits["dev"]["accuracy"]


def start_figures(drawer: FigureDrawer, run_dir: Path, data: Splits, title: str,
                  cores: int) -> None:
    """Start ``drawer`` on the run's four figures, in two halves of about equal drawing time
    (the gains curves have 20 axes): called before the engine starts its threads."""
    X_test, y_test = data.test
    classes = list(data.info.classes)
    ready = {}  # figures laid out by the drawing process while the run trains

    def prepare():  # each drawn once without rendering: 0.1 s (training) to 0.7 s (gains)
        ready["gains"] = gains_layout(len(classes), title)
        ready["training"] = training_layout(title)
        ready["confusion"] = confusion_layout(classes, title)

    def halves(test_probs, log):
        return [[lambda: plot_gains(test_probs, y_test, classes, run_dir / GAINS, title,
                                    ready.pop("gains", None))],
                [lambda: plot_training(log, run_dir / FIGURE, title,
                                       ready.pop("training", None)),
                 lambda: plot_confusion(test_probs, y_test, classes, run_dir / CONFUSION,
                                        title, ready.pop("confusion", None)),
                 lambda: plot_mistakes(X_test, test_probs, y_test, classes,
                                       run_dir / MISTAKES, title)]]

    drawer.start(halves, cores, prepare)


def tables_markdown(title: str, splits: dict, classes: list[str]) -> str:
    """The run's ``tables.md``: accuracy per split, then the test set per class."""
    rows = ["| split | n | accuracy | F1 (weighted) | AR (weighted) |", "|---|---|---|---|---|"]
    for name, m in splits.items():
        rows.append(f"| {name} | {m['n']} | {m['accuracy']:.4f} | {m['f1_weighted']:.4f} | "
                    f"{m['ar_weighted']:.4f} |")
    return (f"# {title}\n\n## Accuracy\n\n" + "\n".join(rows) +
            "\n\n## Test set per class\n\n" + format_split_table(splits["test"], classes) + "\n")


def print_summary(title: str, splits: dict, seconds: dict, run_dir: Path,
                  host_steal: float | None = None) -> None:
    """The table a user sees at the end of a run, and its wall time; with the host's share of
    the loop's CPU time when that slowed it (``host.STEAL_WARN`` or more)."""
    table = Table(title=title)
    for col in ("split", "n", "accuracy", "F1 (weighted)", "AR (weighted)"):
        table.add_column(col, justify="right")
    for name, m in splits.items():
        table.add_row(name, str(m["n"]), f"{m['accuracy']:.4f}", f"{m['f1_weighted']:.4f}",
                      f"{m['ar_weighted']:.4f}")
    console = wide_console()
    console.print(table)
    busy = "" if host_steal is None or host_steal < host.STEAL_WARN else \
        f", slowed: {host.describe(host_steal)} during it"
    console.print(f"wall time {seconds['total']:.1f} s (training loop "
                  f"{seconds['train_loop']:.1f} s{busy}); run directory {run_dir}",
                  highlight=False, soft_wrap=True)
