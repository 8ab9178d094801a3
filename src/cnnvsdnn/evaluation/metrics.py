"""Per-split metrics: accuracy, per-class F1 and area ratio (AR), and the mean cross-entropy.

AR is the study's "area ratio" of the cumulative gains curve; it equals 2*AUC - 1 of the
one-vs-rest ROC curve (the Gini coefficient), which is what we compute, from average ranks
(Mann-Whitney U), so tied scores get half credit and the cost is O(N log N) per class.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError

__all__ = ["area_ratio", "average_ranks", "cross_entropy", "format_split_table", "load_predictions",
           "split_metrics"]


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of predicted probabilities (for evaluation; training uses logits)."""
    p = probs[np.arange(labels.size), labels].astype(np.float64)
    return float(-np.mean(np.log(np.maximum(p, np.finfo(np.float64).tiny))))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, tied values sharing their mean rank (``scipy.stats.rankdata``'s
    ``"average"``, whose import, ``scipy.stats``, took 2-9 s of every run's start-up)."""
    x = np.asarray(x).ravel()
    order = np.argsort(x)  # tied values get the same mean rank in any order
    s = x[order]
    edges = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1], [True])))
    ranks = np.empty(x.size, np.float64)
    ranks[order] = np.repeat((edges[:-1] + edges[1:] + 1) / 2.0, np.diff(edges))
    return ranks


def area_ratio(scores: np.ndarray, positive: np.ndarray) -> float:
    """AR = 2*AUC - 1 of ``scores`` for the boolean mask ``positive``.

    A class with no positives (or no negatives) has no ranking to judge; we return 0.0 (the
    baseline) rather than nan so that JSON stays valid. Its weight in the averages is 0 anyway.
    """
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.0
    ranks = average_ranks(scores)  # ties share the mean rank: half credit
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    auc = u / (n_pos * n_neg)
    return float(2.0 * auc - 1.0)


def split_metrics(probs: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> dict:
    """Metrics of one split: ``{"n", "accuracy", "count", "f1", "ar", "f1_weighted",
    "ar_weighted"}`` with plain Python numbers (JSON-serialisable).

    ``probs`` is (N, K) class probabilities (any monotone scores work), ``labels`` (N,) ints.
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    if probs.ndim != 2 or labels.ndim != 1 or probs.shape[0] != labels.shape[0]:
        raise ConfigError(
            f"predictions must be probs (N,K) and labels (N,), got {probs.shape} and "
            f"{labels.shape}; save one row of class probabilities per label"
        )
    n, k = probs.shape
    k = k if n_classes is None else int(n_classes)
    if k != probs.shape[1]:
        raise ConfigError(f"probs has {probs.shape[1]} columns but n_classes is {k}")
    if n == 0:
        raise ConfigError("no predictions to score (N = 0); pass a non-empty split")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k:
        raise ConfigError(f"labels must be integers in 0..{k - 1}; check the labels array")
    if not np.isfinite(probs).all():
        raise ConfigError("probs contains nan or inf: the model diverged or the predictions "
                          "are damaged; retrain with a smaller learning rate")
    labels = labels.astype(np.int64)

    pred = np.argmax(probs, axis=1)  # numpy returns the first maximum: ties -> lowest index
    correct = pred == labels
    count = np.bincount(labels, minlength=k)
    predicted = np.bincount(pred, minlength=k)
    tp = np.bincount(labels[correct], minlength=k)

    # F1 = 2PR/(P+R) = 2TP/(predicted + true); 0 when TP = 0 (precision and recall both 0).
    denom = predicted + count
    f1 = np.where(tp > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)
    ar = np.array([area_ratio(probs[:, j], labels == j) for j in range(k)])

    return {
        "n": int(n),
        "accuracy": float(correct.mean()),
        "count": [int(c) for c in count],
        "f1": [float(x) for x in f1],
        "ar": [float(x) for x in ar],
        "f1_weighted": float(np.dot(count, f1) / n),
        "ar_weighted": float(np.dot(count, ar) / n),
    }


def load_predictions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check a predictions file (``probs`` (N,K) float, ``labels`` (N,) int)."""
    path = Path(path)
    hint = "save it with numpy.savez(path, probs=..., labels=...)"
    if not path.is_file():
        raise ConfigError(f"predictions file {path} does not exist; give the path of an .npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("probs", "labels") if key not in data.files]
            if missing:
                raise ConfigError(
                    f"{path} lacks array(s) {', '.join(missing)} (has {data.files}); {hint}"
                )
            probs, labels = data["probs"], data["labels"]
    except ConfigError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"{path} is not a readable .npz file ({exc}); {hint}") from None

    if probs.ndim != 2 or probs.shape[1] < 2 or not np.issubdtype(probs.dtype, np.number):
        raise ConfigError(f"{path}: probs must be a numeric (N,K) array, K>=2, got "
                          f"{probs.dtype} {probs.shape}; {hint}")
    if labels.ndim != 1 or labels.shape[0] != probs.shape[0]:
        raise ConfigError(f"{path}: labels must have shape ({probs.shape[0]},) to match probs, "
                          f"got {labels.shape}; {hint}")
    if labels.size == 0:
        raise ConfigError(f"{path} holds no predictions (N = 0); {hint}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(f"{path}: labels must be integers, got {labels.dtype}; {hint}")
    k = probs.shape[1]
    if labels.min() < 0 or labels.max() >= k:
        raise ConfigError(f"{path}: labels must lie in 0..{k - 1}, found "
                          f"{labels.min()}..{labels.max()}; check the class indices")
    if not np.isfinite(probs).all():
        raise ConfigError(f"{path}: probs contains nan or inf; the model diverged or the "
                          f"file is damaged, rerun with a smaller learning rate")
    return probs, labels


def format_split_table(metrics: dict, classes: list[str]) -> str:
    """Markdown table of one split: per class count, F1, AR, then the weighted averages."""
    k = len(metrics["count"])
    if len(classes) != k:
        raise ConfigError(f"{len(classes)} class names for {k} classes; pass one name per class")
    lines = ["| Class | Count | F1 | AR |", "|---|---:|---:|---:|"]
    for name, c, f, a in zip(classes, metrics["count"], metrics["f1"], metrics["ar"],
                             strict=True):
        lines.append(f"| {name} | {c} | {f:.4f} | {a:.4f} |")
    lines.append(f"| **Weighted average** | {metrics['n']} | {metrics['f1_weighted']:.4f} | "
                 f"{metrics['ar_weighted']:.4f} |")
    lines.append("")
    lines.append(f"Accuracy: {metrics['accuracy']:.4f} (N = {metrics['n']})")
    return "\n".join(lines) + "\n"
