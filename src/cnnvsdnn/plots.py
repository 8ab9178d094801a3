"""Figures: the study's training curves (figures 8-16) and a per-class F1 comparison.

Built on ``matplotlib.figure.Figure`` directly (not pyplot), so no display, no global state and
no backend choice are involved: ``Figure.savefig`` renders with Agg.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cnnvsdnn.errors import CnnvsdnnError

__all__ = ["moving_average", "plot_f1_comparison", "plot_training"]

_TRAIN = "#1f77b4"
_DEV = "#d62728"
_MODEL_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred mean over ``window`` values (fewer at the ends), so the smoothed curve does not
    lag behind the dev points; same length as ``x``. Non-finite values (a diverged step) are
    skipped rather than blanking the rest of the curve; nan where a window has none."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    ok = np.isfinite(x)
    total = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    count = np.concatenate([[0], np.cumsum(ok)])
    i = np.arange(x.size)
    lo = np.maximum(i - window // 2, 0)
    hi = np.minimum(i - window // 2 + window, x.size)
    n = count[hi] - count[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[hi] - total[lo]) / n, np.nan)


def _save(fig: Figure, out_png: str | Path) -> Path:
    out = Path(out_png)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120)
    except OSError as exc:
        raise CnnvsdnnError(f"cannot write figure {out} ({exc}); check the output directory "
                            f"is writable") from None
    return out


def plot_training(log: dict, out_png: str | Path, title: str) -> Path:
    """Batch cost and accuracy per step (raw and smoothed) with the dev evaluations as markers.

    ``log`` is what :func:`cnnvsdnn.runlog.read_log` returns. Two panels sharing the step axis:
    cost on top, accuracy below.
    """
    train, dev = log["train"], log["dev"]
    steps = np.asarray(train["step"])
    # About 1/40 of the run, 10 to 200 steps: smooth enough to read the trend of noisy
    # 128-image batches without hiding how the curve bends.
    window = int(np.clip(steps.size // 40, 10, 200))
    marker = 4 if len(dev["step"]) <= 50 else 2
    dev_label = "development set"
    if len(dev["step"]):
        dev_label += (f" (final: cost {dev['cost'][-1]:.4g}, "
                      f"accuracy {dev['accuracy'][-1]:.4f})")

    fig = Figure(figsize=(9, 6.5), layout="constrained")
    ax_cost, ax_acc = fig.subplots(2, 1, sharex=True)
    panels = ((ax_cost, "cost", "Cost (cross-entropy)"), (ax_acc, "accuracy", "Accuracy"))
    for ax, key, label in panels:
        if steps.size:
            ax.plot(steps, train[key], color=_TRAIN, lw=0.6, alpha=0.3, label="training batch")
            ax.plot(steps, moving_average(train[key], window), color=_TRAIN, lw=1.8,
                    label=f"training batch, centred mean of {window} steps")
        if len(dev["step"]):
            ax.plot(dev["step"], dev[key], color=_DEV, lw=1.0, marker="o", ms=marker,
                    label=dev_label)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    if steps.size == 0 and len(dev["step"]) == 0:
        ax_cost.text(0.5, 0.5, "empty log", transform=ax_cost.transAxes, ha="center")

    ax_cost.set_yscale("log" if _positive(train["cost"], dev["cost"]) else "linear")
    ax_acc.set_ylim(_acc_floor(train["accuracy"], dev["accuracy"]), 1.01)  # 1.0 not clipped
    ax_acc.set_xlabel("Training step")
    if ax_cost.get_legend_handles_labels()[0]:
        ax_cost.legend(loc="lower left", fontsize=9, framealpha=0.9)  # the cost falls: free corner
    fig.suptitle(title, fontsize=13)
    return _save(fig, out_png)


def _positive(*arrays) -> bool:
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    return values.size > 0 and bool((values > 0).all())


def _acc_floor(*arrays) -> float:
    """Lower y limit of the accuracy panel: the lowest value rounded down to 0.1 (at most
    0.9), so the whole learning curve shows and a log that stays high keeps its detail."""
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    return float(np.clip(np.floor(values.min() * 10) / 10, 0.0, 0.9))


def plot_f1_comparison(f1_by_model: dict[str, list[float]], classes: list[str],
                       out_png: str | Path, title: str) -> Path:
    """Grouped bars of per-class F1, one bar per model (e.g. DNN, CNN, Keras)."""
    k = len(classes)
    for name, f1 in f1_by_model.items():
        if len(f1) != k:
            raise CnnvsdnnError(f"model {name!r} has {len(f1)} F1 values for {k} classes")
    n_models = max(len(f1_by_model), 1)
    width = 0.8 / n_models
    x = np.arange(k)

    fig = Figure(figsize=(max(7.0, 0.9 * k + 2), 4.8), layout="constrained")
    ax = fig.subplots()
    for i, (name, f1) in enumerate(f1_by_model.items()):
        ax.bar(x + (i - (n_models - 1) / 2) * width, f1, width * 0.95, label=name,
               color=_MODEL_COLOURS[i % len(_MODEL_COLOURS)])
    ax.set_xticks(x, classes, rotation=30 if max(map(len, classes), default=0) > 3 else 0)
    ax.set_xlabel("Class")
    ax.set_ylabel("F1 score")
    values = [v for f1 in f1_by_model.values() for v in f1]
    low = min(values, default=0.0)
    # Zoom in when every class is good (MNIST: 0.97-0.99), else show the full 0..1 range.
    ax.set_ylim(max(0.0, np.floor(low * 20) / 20 - 0.05) if low > 0.6 else 0.0, 1.0)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if f1_by_model:
        fig.legend(loc="outside right upper", fontsize=10, frameon=False)
    ax.set_title(title, fontsize=13)
    return _save(fig, out_png)
