"""What the commands show on a terminal: wide tables, progress of a training run, warnings.

On a terminal a rich progress bar and spinners; into a pipe or a log file plain lines (CI,
cluster jobs) and tables 200 columns wide, where rich would otherwise squeeze them into 80.
"""

from __future__ import annotations

import math
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_stderr = Console(stderr=True)


def wide_console(stderr: bool = False) -> Console:
    """A terminal's own width; 200 columns into a pipe or a log file."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200)


def warn(msg: str) -> None:
    """A yellow ``warning: ...`` line on stderr."""
    _stderr.print(f"warning: {msg}", style="yellow", markup=False, highlight=False,
                  soft_wrap=True)


class TrainingProgress:
    """``update(step, cost, acc, dev_acc)`` after every step. Plain mode prints ~20 lines."""

    def __init__(self, total: int, title: str, enabled: bool = True, start: int = 0):
        self.total, self.title, self.enabled, self.start = total, title, enabled, start
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.every = max(1, total // 20)
        self._progress = None
        self._started = time.perf_counter()

    def __enter__(self):
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("cost {task.fields[cost]:.4f}  acc {task.fields[acc]:.3f}  "
                           "dev {task.fields[dev]}"),
                TimeRemainingColumn(), console=self.console, transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.title, total=self.total, completed=self.start,
                                                 cost=math.nan,
                                                 acc=math.nan, dev="-")
        return self

    def update(self, step: int, cost: float, acc: float, dev_acc: float) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            if step % 10 == 0 or step == self.total:  # redrawing every step costs time
                self._progress.update(self._task, completed=step, cost=cost, acc=acc,
                                      dev=_dev(dev_acc))
        elif step % self.every == 0 or step == self.total:
            dev = _dev(dev_acc)
            elapsed = time.perf_counter() - self._started
            print(f"{self.title}: step {step}/{self.total} cost {cost:.4f} acc {acc:.3f} "
                  f"dev {dev} ({elapsed:.1f} s)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False


def _dev(acc: float) -> str:
    return "-" if math.isnan(acc) else f"{acc:.4f}"


def compiling(work, enabled: bool = True) -> float:
    """Run ``work()`` (the engine's first calls: numba compiles its kernels, or loads them from
    its cache) under a spinner on a terminal; say how long it took when that was noticeable."""
    console = Console(stderr=True)
    started = time.perf_counter()
    if enabled and console.is_terminal:
        with console.status("compiling the engine's kernels (the first run after an install "
                            "takes ~20 s; later runs load them from numba's cache)"):
            work()
    else:
        work()
    seconds = time.perf_counter() - started
    if enabled and seconds > 2:
        print(f"engine kernels compiled in {seconds:.1f} s (cached for later runs)",
              file=sys.stderr, flush=True)
    return seconds


class counting:  # noqa: N801 -- used as a context manager, like a function
    """``with counting(n, "decoding 70000 images", enabled) as bar: for x in bar(items): ...``:
    a transient progress bar on a terminal; one line before and after otherwise (only for
    work of more than a few hundred items, which takes long enough to wonder about)."""

    def __init__(self, total: int, description: str, enabled: bool = True):
        self.total, self.description = total, description
        self.enabled = enabled and total >= 500
        self.console = Console(stderr=True)
        self._progress = None

    def __enter__(self):
        self._started = time.perf_counter()
        if self.enabled and self.console.is_terminal:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeRemainingColumn(),
                                      console=self.console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total)
        elif self.enabled:
            print(f"{self.description} ...", file=sys.stderr, flush=True)
        return self

    def __call__(self, items):
        for i, item in enumerate(items, 1):
            yield item
            if self._progress is not None and (i % 100 == 0 or i == self.total):
                self._progress.update(self._task, completed=i)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        if self.enabled and exc[0] is None:
            print(f"{self.description}: done in {time.perf_counter() - self._started:.1f} s",
                  file=sys.stderr, flush=True)
        return False
