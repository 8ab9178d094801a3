"""What the ``cnnvsdnn data`` commands print (rich tables) and draw (example-image grids)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from cnnvsdnn.console import wide_console

console = wide_console()


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def print_fetched(ds) -> None:
    console.print(f"{ds.name}: {len(ds.train_y)} train + {len(ds.test_y)} test images "
                  f"{ds.info.shape} from {ds.source}", markup=False, highlight=False,
                  soft_wrap=True)


def print_verify(rows) -> None:
    table = Table("dataset", "file", "status")
    for name, path, status in rows:
        table.add_row(name, path, status, style=None if status.startswith("ok") else "red")
    console.print(table)


def print_status(rows) -> None:
    table = Table("dataset", "status", "source", "size", "directory")
    for r in rows:
        table.add_row(r["dataset"], r["status"], r["source"], _size(r["bytes"]), r["dir"])
    console.print(table)


def image_grid(ds, out_png, per_class: int = 8, seed: int = 0) -> Path:
    """``per_class`` random training images of each class, one row per class, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    k = ds.info.n_classes
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.9, k * 0.95), squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(ds.train_y == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for j, ax in enumerate(axes[c]):
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(pick):
                img = ds.train_X[pick[j]]
                if img.shape[-1] == 1:
                    ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255)
                else:
                    ax.imshow(img)
        axes[c, 0].set_ylabel(ds.info.classes[c], rotation=0, ha="right", va="center",
                              fontsize=8)
    fig.suptitle(f"{ds.name}: {per_class} training images per class")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
