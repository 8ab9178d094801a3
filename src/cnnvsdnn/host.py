"""How busy the machine is: the load average and, on a Linux virtual machine, the share of its
CPU time that the host took (steal time).

A VM whose host preempts its vCPUs runs slower without any sign inside it but this counter (its
load average stays low): a step split over two threads waits whenever the other vCPU is off its
core. ``train`` records the share over its loop (``metrics.json``) and names it from
``STEAL_WARN`` on; ``bench`` reports it per timed cell and run and warns from ``STEAL_WARN`` on,
since the engines do not suffer alike and their ratios wander (the README's "A busy machine").

The steal counter is the 8th number of /proc/stat's ``cpu`` line (proc(5)); read here directly
rather than through psutil, a new dependency for one field of one line.
"""

from __future__ import annotations

import os
from pathlib import Path

STEAL_WARN = 0.05  # from this share of stolen CPU time on, timings are not the machine's own
_STAT = Path("/proc/stat")


def cpu_jiffies(text: str | None = None) -> tuple[int, int] | None:
    """(all CPU time, stolen CPU time) in clock ticks since boot, summed over the CPUs; None
    where the system keeps no such count (not Linux, or a kernel without the steal field)."""
    if text is None:
        try:
            text = _STAT.read_text()
        except OSError:
            return None
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                ticks = [int(v) for v in fields[1:9]]  # user ... steal (guest is inside user)
            except ValueError:
                return None
            return (sum(ticks), ticks[7]) if len(ticks) == 8 else None
    return None


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the CPU time between two :func:`cpu_jiffies` readings that the host took;
    None when unknown (no counter, or no time passed)."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return max(0, after[1] - before[1]) / (after[0] - before[0])


def describe(share: float | None) -> str:
    """``"the host took 12 % of this machine's CPU time (steal)"``, or ``""`` when not known."""
    return "" if share is None else \
        f"the host took {100 * share:.0f} % of this machine's CPU time (steal)"


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"
