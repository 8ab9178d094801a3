"""Progress of a training run: a rich bar on a terminal, plain lines otherwise (logs, CI)."""

from __future__ import annotations

import math
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


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
        dev = "-" if math.isnan(dev_acc) else f"{dev_acc:.4f}"
        if self._progress is not None:
            if step % 10 == 0 or step == self.total:  # redrawing every step costs time
                self._progress.update(self._task, completed=step, cost=cost, acc=acc, dev=dev)
        elif step % self.every == 0 or step == self.total:
            elapsed = time.perf_counter() - self._started
            print(f"{self.title}: step {step}/{self.total} cost {cost:.4f} acc {acc:.3f} "
                  f"dev {dev} ({elapsed:.1f} s)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False
