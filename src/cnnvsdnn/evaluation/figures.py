"""Figures: the study's training curves (figures 8-16), a per-class F1 comparison, values over
seeds with their means and intervals (``summarize``, the ablation), and of one run's test
predictions: the per-class cumulative gains curves with the areas the area ratio compares (the
study's Fig. 4), the confusion matrix and the most confident mistakes.

Built on ``matplotlib.figure.Figure`` directly (not pyplot), so no display, no global state and
no backend choice are involved: ``Figure.savefig`` renders with Agg. matplotlib is imported on
the first figure (it takes a second), not by every command that imports this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CnnvsdnnError
from ..safe_io import atomic_write

__all__ = ["confusion_layout", "gains_area_ratio", "gains_curve", "gains_layout",
           "moving_average", "plot_confusion", "plot_f1_comparison", "plot_gains",
           "plot_image_grid", "plot_mistakes", "plot_over_seeds", "plot_training",
           "training_layout"]

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


def warm_up() -> None:
    """Import matplotlib and draw a small figure with text into memory: what the first real
    figure would otherwise pay (imports, the font, Agg, PNG), ~1 s. The run's drawing process
    calls it while the run trains (``run/drawing.py``)."""
    import io

    fig = _figure(figsize=(1, 1))
    fig.subplots().set_title("warm-up", y=1.0)
    fig.savefig(io.BytesIO(), format="png", dpi=20)


def _save(fig, out_png: str | Path) -> Path:
    out = Path(out_png)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnvsdnnError(f"cannot write figure {out} ({exc}); check the output directory "
                            f"is writable") from None
    return atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=120))


class TrainingLayout:
    """The training figure before its curves: the two panels sharing the step axis, their
    labels and grids, and the title, for one :func:`plot_training` under ``title``."""

    def __init__(self, title: str):
        self.title = title
        w, h = 9, 6.5  # a fixed layout (inches): constrained layout doubles the drawing time
        self.fig = fig = _figure(figsize=(w, h))
        fig.subplots_adjust(left=0.85 / w, right=1 - 0.2 / w, top=1 - 0.55 / h,
                            bottom=0.6 / h, hspace=0.08)
        self.ax_cost, self.ax_acc = fig.subplots(2, 1, sharex=True)
        for ax, label in ((self.ax_cost, "Cost (cross-entropy)"), (self.ax_acc, "Accuracy")):
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        self.ax_acc.set_xlabel("Training step")
        fig.suptitle(title, fontsize=13)


def training_layout(title: str) -> TrainingLayout:
    """A :class:`TrainingLayout` drawn once (its axes and tick objects made): a fifth to a
    quarter of the figure's time, taken while the run trains (``run/results.py``)."""
    layout = TrainingLayout(title)
    layout.fig.draw_without_rendering()
    return layout


def plot_training(log: dict, out_png: str | Path, title: str,
                  layout: TrainingLayout | None = None) -> Path:
    """Batch cost and accuracy per step (raw and smoothed) with the dev evaluations as markers.

    ``log`` is what :func:`cnnvsdnn.run.log.read_log` returns. Two panels sharing the step axis:
    cost on top, accuracy below. ``layout``: one made beforehand by :func:`training_layout`
    (else it is made here).
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

    if layout is None or layout.title != title:
        layout = TrainingLayout(title)
    ax_cost, ax_acc = layout.ax_cost, layout.ax_acc
    for ax, key in ((ax_cost, "cost"), (ax_acc, "accuracy")):
        if steps.size:
            ax.plot(steps, train[key], color=_TRAIN, lw=0.6, alpha=0.3, label="training batch")
            ax.plot(steps, moving_average(train[key], window), color=_TRAIN, lw=1.8,
                    label=f"training batch, centred mean of {window} steps")
        if len(dev["step"]):
            ax.plot(dev["step"], dev[key], color=_DEV, lw=1.0, marker="o", ms=marker,
                    label=dev_label)
    if steps.size == 0 and len(dev["step"]) == 0:
        ax_cost.text(0.5, 0.5, "empty log", transform=ax_cost.transAxes, ha="center")

    ax_cost.set_yscale("log" if _positive(train["cost"], dev["cost"]) else "linear")
    ax_acc.set_ylim(_acc_floor(train["accuracy"], dev["accuracy"]), 1.01)  # 1.0 not clipped
    if ax_cost.get_legend_handles_labels()[0]:
        ax_cost.legend(loc="lower left", fontsize=9, framealpha=0.9)  # the cost falls: free corner
    return _save(layout.fig, out_png)


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


# ------------------------------------------------------------------------------ predictions
def gains_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative gains ("lift") curve of one class, as vertices (x, y): the images sorted
    by ``scores``, highest first; y = how many ``positive`` ones are among the first x.

    Images with tied scores have no order among them: their stretch of the curve is one straight
    segment (its area counts each tie half, as :func:`cnnvsdnn.evaluation.metrics.area_ratio`
    does)."""
    scores = np.asarray(scores)
    order = np.argsort(-scores, kind="stable")
    s, hits = scores[order], np.cumsum(np.asarray(positive)[order])
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # the last image of each tied run
    return np.r_[0, ends + 1].astype(np.float64), np.r_[0, hits[ends]].astype(np.float64)


def gains_area_ratio(x: np.ndarray, y: np.ndarray) -> float:
    """AR = (area model − area baseline) / (area best − area baseline) of a gains curve from
    :func:`gains_curve`: the baseline is the diagonal to (N, P), the best curve rises with slope
    1 to (P, P) and stays there (docs/method.md, section 6). 0 without positives or negatives.
    """
    n, p = float(x[-1]), float(y[-1])
    if p == 0 or p == n:
        return 0.0
    model = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))  # trapezoids
    base, best = n * p / 2, p * p / 2 + (n - p) * p
    return (model - base) / (best - base)


_GAINS_MAX_PANELS = 20


class GainsLayout:
    """The gains figure before its curves: every axes, inset, tick setting, label, the legend
    and the title, for one :func:`plot_gains` of ``n_classes`` classes under ``title`` (which
    draws into it: a layout serves one figure)."""

    def __init__(self, n_classes: int, title: str):
        self.n_classes, self.title = n_classes, title
        n = min(n_classes, _GAINS_MAX_PANELS)
        cols = min(5, n)
        rows = -(-n // cols)
        w, h = 2.6 * cols + 0.7, 2.55 * rows + 1.4
        # a fixed layout: constrained layout draws the figure twice, doubling ~20 axes' cost
        self.fig = fig = _figure(figsize=(w, h))
        fig.subplots_adjust(left=0.6 / w, right=1 - 0.15 / w, top=1 - 0.75 / h,
                            bottom=0.85 / h, wspace=0.12, hspace=0.3)
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        self.axes = list(axes.flat[:n])
        self.insets = [ax.inset_axes([0.4, 0.07, 0.56, 0.5]) for ax in self.axes]
        from matplotlib.ticker import MaxNLocator

        for ax, inset in zip(self.axes, self.insets):
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.grid(True, alpha=0.25)
            inset.tick_params(labelsize=6, length=2, pad=1)
            for axis in (inset.xaxis, inset.yaxis):
                axis.set_major_locator(MaxNLocator(3))
            inset.set_facecolor("white")
        # three ticks an axis (shared: set once): matplotlib's six per axis made tick objects
        # a third of this figure's drawing time
        axes[0, 0].set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
        axes[0, 0].set_yticks([0, 0.5, 1], ["0", "0.5", "1"])
        for ax in axes[-1]:
            ax.set_xlabel("share of test images taken", fontsize=9)
        for ax in axes[:, 0]:
            ax.set_ylabel("share of the class found", fontsize=9)
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [Line2D([], [], color=_TRAIN, lw=1.4, label="model (by its probability)"),
                   Line2D([], [], color="0.45", lw=1, ls="--", label="baseline (random order)"),
                   Line2D([], [], color="black", lw=1, ls=":", label="best (the class first)"),
                   Patch(color=_TRAIN, alpha=0.35, label="model − baseline"),
                   Patch(color=_DEV, alpha=0.5, label="best − model (insets: zoomed in)")]
        fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8.5, frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
        more = f"; the {n} classes of lowest AR of {n_classes}" if n < n_classes else ""
        fig.suptitle(f"{title}\ncumulative gains per class; AR = (model − baseline) / (best − "
                     f"baseline) areas{more}", fontsize=11)


def gains_layout(n_classes: int, title: str) -> GainsLayout:
    """A :class:`GainsLayout` drawn once (which makes the tick objects the final drawing
    reuses): about half the figure's time. The run's drawing process makes it while the run
    trains (``run/results.py: start_figures``)."""
    layout = GainsLayout(n_classes, title)
    layout.fig.draw_without_rendering()
    return layout


def plot_gains(probs: np.ndarray, labels: np.ndarray, classes: list[str], out_png: str | Path,
               title: str, layout: GainsLayout | None = None) -> tuple[Path, list[float]]:
    """One panel per class (the study's Fig. 4): the model's cumulative gains curve, the
    baseline (random order) and the best curve, the area between model and baseline shaded
    blue and the area between best and model red; AR = blue / (blue + red), printed on each
    panel. Beyond 20 classes the 20 of lowest AR are drawn. Returns (path, AR of every class).
    ``layout``: one made beforehand by :func:`gains_layout` (else it is made here).
    """
    probs, labels = np.asarray(probs), np.asarray(labels)
    k = probs.shape[1]
    if layout is None or (layout.n_classes, layout.title) != (k, title):
        layout = GainsLayout(k, title)
    curves = [gains_curve(probs[:, j], labels == j) for j in range(k)]
    ars = [gains_area_ratio(x, y) for x, y in curves]
    shown = list(range(k)) if k <= _GAINS_MAX_PANELS else \
        sorted(np.argsort(ars, kind="stable")[:_GAINS_MAX_PANELS].tolist())
    for ax, inset, j in zip(layout.axes, layout.insets, shown):
        x, y = curves[j]
        n, p = x[-1], y[-1]
        if p == 0:
            ax.text(0.5, 0.5, "no test images\nof this class", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9)
        else:
            # shares, so every class's panel has the same axes. Drawn through at most ~800
            # of the curve's vertices (under a pixel apart; the AR uses them all)
            keep = np.unique(np.searchsorted(x, np.linspace(0, n, 800)))
            _draw_gains(ax, x, y, x[np.minimum(keep, x.size - 1)])
        # best − model too thin to see: zoom in on it
        if not (p > 0 and ars[j] > 0.9 and _zoom_gains(inset, x, y)):
            inset.remove()
        # y given: matplotlib then skips placing the title above the ticks, a layout of
        # every axes and inset (a fifth of the figure's time); no ticks are on top
        ax.set_title(f"{classes[j]}: AR = {ars[j]:.4f}", fontsize=10, y=1.0)
    return _save(layout.fig, out_png), ars


def _draw_gains(ax, x, y, xs) -> None:
    """Model, baseline and best curve of one class in shares, the areas between them shaded,
    through the vertices ``xs`` of the curve (x, y) plus the best curve's corner (P, P)."""
    n, p = x[-1], y[-1]
    xs = np.union1d(xs, [0, p, n])
    fx, fy = xs / n, np.interp(xs, x, y) / p
    ax.fill_between(fx, fx, fy, color=_TRAIN, alpha=0.35, lw=0)
    ax.fill_between(fx, fy, np.minimum(xs / p, 1.0), color=_DEV, alpha=0.5, lw=0)
    ax.plot([0, 1], [0, 1], color="0.45", lw=1, ls="--")
    ax.plot([0, p / n, 1], [0, 1, 1], color="black", lw=1, ls=":")
    ax.plot(fx, fy, color=_TRAIN, lw=1.4)


def _zoom_gains(inset, x, y) -> bool:
    """Draw into ``inset`` the stretch holding most of the best − model area (by all the
    vertices); False if there is no such area."""
    n, p = x[-1], y[-1]
    xs = np.union1d(x, [p])
    gap = np.minimum(xs / p, 1.0) - np.interp(xs, x, y) / p  # best − model, in shares
    area = np.r_[0, np.cumsum((gap[1:] + gap[:-1]) / 2 * np.diff(xs))]
    if area[-1] <= 0:
        return False
    lo = xs[max(np.searchsorted(area, 0.02 * area[-1]) - 1, 0)]
    hi = xs[min(np.searchsorted(area, 0.9 * area[-1]), xs.size - 1)]
    y_lo = max(0.0, 1 - 1.3 * gap.max())
    lo = max(lo, y_lo * p)  # left of this both curves lie below the inset's y range
    hi = max(hi, lo + 2)
    _draw_gains(inset, x, y, x[(x >= lo) & (x <= hi)])
    inset.set_xlim(lo / n, hi / n)
    inset.set_ylim(y_lo, 1 + 0.05 * (1 - y_lo))
    return True


class ConfusionLayout:
    """The confusion figure before its counts: the matrix's axes with the class names, their
    labels and the colour bar, for one :func:`plot_confusion` of ``classes`` under ``title``."""

    def __init__(self, classes: list[str], title: str):
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import PowerNorm

        self.classes, self.title = list(classes), title
        k = len(classes)
        side = min(max(4.5, 0.55 * k + 2.5), 14)
        # a fixed layout (inches): the matrix in a square beside its colour bar, room for long
        # class names below and left, two title lines above
        long = max(map(len, classes), default=0) > 3
        room = 1.25 if long else 0.75
        w, h, top = side + 1.2, side, 0.75
        sq = min(w - room - 1.5, h - room - top)
        self.fig = fig = _figure(figsize=(w, h))
        self.ax = ax = fig.add_axes([room / w, room / h, sq / w, sq / h])
        cax = fig.add_axes([(room + sq + 0.25) / w, (room + 0.1 * sq) / h, 0.18 / w,
                            0.8 * sq / h])
        self.cmap, self.norm = colormaps["Blues"], PowerNorm(0.5, vmin=0, vmax=1)
        ticks = range(k) if k <= 40 else range(0, k, max(1, k // 20))
        ax.set_xticks(list(ticks), [classes[i] for i in ticks], rotation=45 if long else 0,
                      ha="right" if long else "center", fontsize=9)
        ax.set_yticks(list(ticks), [classes[i] for i in ticks], fontsize=9)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        fig.colorbar(ScalarMappable(self.norm, self.cmap), cax=cax,
                     label="share of the true class (square-root scale)")


def confusion_layout(classes: list[str], title: str) -> ConfusionLayout:
    """A :class:`ConfusionLayout` drawn once (its axes, colour bar and tick objects made),
    taken while the run trains (``run/results.py``)."""
    layout = ConfusionLayout(classes, title)
    layout.fig.draw_without_rendering()
    return layout


def plot_confusion(probs: np.ndarray, labels: np.ndarray, classes: list[str],
                   out_png: str | Path, title: str,
                   layout: ConfusionLayout | None = None) -> Path:
    """The confusion matrix of the predicted classes (argmax): rows the true class, columns the
    predicted one, each cell's count written in it (up to 30 classes). Colour is the share of
    its row on a square-root scale, so the few mistakes show beside a full diagonal.
    ``layout``: one made beforehand by :func:`confusion_layout` (else it is made here)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    k = probs.shape[1]
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (labels, probs.argmax(1)), 1)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    if layout is None or (layout.classes, layout.title) != (list(classes), title):
        layout = ConfusionLayout(classes, title)
    ax = layout.ax
    ax.imshow(share, cmap=layout.cmap, norm=layout.norm)
    if k <= 30:
        size = 9 if k <= 12 else 7 if k <= 20 else 5.5
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=size,
                            color="white" if share[i, j] > 0.45 else "black")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}\nconfusion matrix of the {cm.sum()} test images (accuracy "
                 f"{acc:.4f})", fontsize=11, y=1.0)  # y: see plot_gains
    return _save(layout.fig, out_png)


def plot_mistakes(X: np.ndarray, probs: np.ndarray, labels: np.ndarray, classes: list[str],
                  out_png: str | Path, title: str, n: int = 24) -> Path:
    """The ``n`` test images the model got wrong with the highest probability, most
    confident first, each with its true class and the predicted class and probability.
    Drawn as one mosaic in one axes (24 axes would take seconds to lay out)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    pred = probs.argmax(1)
    conf = probs[np.arange(len(pred)), pred]
    wrong = np.flatnonzero(pred != labels)
    wrong = wrong[np.argsort(-conf[wrong], kind="stable")][:n]
    cols = 8 if len(wrong) > 12 else max(len(wrong), 4)
    rows = max(1, -(-len(wrong) // cols))
    h, w, c = X.shape[1:]
    gap, cap = max(2, round(0.4 * w)), max(4, round(0.45 * h))  # pixels beside, above a tile
    mosaic = np.full((rows * (h + cap), cols * (w + gap) + gap, 3), 255, np.uint8)
    for t, i in enumerate(wrong):
        r, q = divmod(t, cols)
        y0, x0 = r * (h + cap) + cap, q * (w + gap) + gap
        mosaic[y0:y0 + h, x0:x0 + w] = X[i] if c == 3 else np.repeat(X[i], 3, axis=2)
    inch = 1.15 / h  # a tile 1.15 inches tall; the figure keeps the pixels square
    aw, ah = mosaic.shape[1] * inch, mosaic.shape[0] * inch
    fw, fh = max(aw + 0.2, 6.0), ah + 0.85
    fig = _figure(figsize=(fw, fh))
    ax = fig.add_axes([(fw - aw) / 2 / fw, 0.12 / fh, aw / fw, ah / fh])
    ax.imshow(mosaic, interpolation="nearest", aspect="auto")
    ax.set_axis_off()

    def short(name: str) -> str:
        return name if len(name) <= 14 else name[:13] + "…"

    for t, i in enumerate(wrong):
        r, q = divmod(t, cols)
        ax.text(q * (w + gap) + gap + w / 2, r * (h + cap) + cap - 0.5,
                f"true {short(classes[labels[i]])}\npred {short(classes[pred[i]])} "
                f"({conf[i]:.2f})", ha="center", va="bottom", fontsize=7.5, color="#b00000",
                linespacing=1.1)
    what = (f"the {len(wrong)} most confident mistakes of {int((pred != labels).sum())} on the "
            f"test set (true class, predicted class and its probability)" if len(wrong) else
            "no mistakes on the test set")
    fig.suptitle(f"{title}\n{what}", fontsize=10)
    return _save(fig, out_png)
