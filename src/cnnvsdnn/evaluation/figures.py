"""Figures: the study's training curves (figures 8-16), a per-class F1 comparison, and values
over seeds with their means and intervals (``summarize``, the ablation).

Built on ``matplotlib.figure.Figure`` directly (not pyplot), so no display, no global state and
no backend choice are involved: ``Figure.savefig`` renders with Agg. matplotlib is imported on
the first figure (it takes a second), not by every command that imports this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CnnvsdnnError
from ..safe_io import atomic_write

__all__ = ["moving_average", "plot_f1_comparison", "plot_over_seeds", "plot_training"]

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


def _figure(**kwargs):
    """A new ``matplotlib.figure.Figure``."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, out_png: str | Path) -> Path:
    out = Path(out_png)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnvsdnnError(f"cannot write figure {out} ({exc}); check the output directory "
                            f"is writable") from None
    return atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=120))


def plot_training(log: dict, out_png: str | Path, title: str) -> Path:
    """Batch cost and accuracy per step (raw and smoothed) with the dev evaluations as markers.

    ``log`` is what :func:`cnnvsdnn.run.log.read_log` returns. Two panels sharing the step axis:
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

    fig = _figure(figsize=(9, 6.5), layout="constrained")
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

    fig = _figure(figsize=(max(7.0, 0.9 * k + 2), 4.8), layout="constrained")
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


def plot_over_seeds(panels: dict[str, list[tuple[str, dict]]], metric_titles: dict[str, str],
                    out_png: str | Path, title: str) -> Path:
    """One row of panels per dataset, one panel per metric: each group's seeds as dots and
    its mean with the 95% t interval. ``panels``: dataset -> [(group label, {metric:
    (values, Stats)})]; ``metric_titles``: metric -> panel title."""
    fig = _figure(figsize=(4.2 * len(metric_titles), 0.6 + 3.2 * len(panels)),
                 layout="constrained")
    axes = fig.subplots(len(panels), len(metric_titles), squeeze=False)
    for i, (dataset, groups) in enumerate(panels.items()):
        labels = [label for label, _ in groups]
        for j, (metric, mtitle) in enumerate(metric_titles.items()):
            ax = axes[i][j]
            for x, (_, by_metric) in enumerate(groups):
                vals, s = by_metric[metric]
                jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else [0.0]
                ax.plot(x + np.asarray(jitter), vals, "o", ms=3.5, color="0.6", zorder=1)
                err = None if s.n < 2 else [[s.mean - s.ci_low], [s.ci_high - s.mean]]
                ax.errorbar([x], [s.mean], yerr=err, fmt="D", ms=6, capsize=5, lw=1.5,
                            color=f"C{x % 10}", zorder=2)
            ax.set_xticks(range(len(groups)), labels, rotation=30 if len(groups) > 3 else 0,
                          ha="right" if len(groups) > 3 else "center")
            ax.set_title(f"{dataset}: {mtitle}")
            ax.grid(axis="y", alpha=0.3)
            ax.ticklabel_format(axis="y", useOffset=False)
    fig.suptitle(title)
    return _save(fig, out_png)


def plot_image_grid(rows: list[np.ndarray], row_labels: list[str], out_png: str | Path,
                    title: str) -> Path:
    """Images uint8 (N, H, W, C) in rows, one row per label (the study's figures 1-3)."""
    cols = max((len(r) for r in rows), default=1) or 1
    fig = _figure(figsize=(cols * 0.9, len(rows) * 0.95 + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (images, label) in enumerate(zip(rows, row_labels)):
        for j, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(images):
                img = images[j]
                if img.shape[-1] == 1:
                    ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255)
                else:
                    ax.imshow(img)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    return _save(fig, out_png)
