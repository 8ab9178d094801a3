"""Statistics over seeds: mean, sample sd and the Student-t interval of the mean; paired tests.

(With 5 seeds the smallest two-sided Wilcoxon p is 0.0625: it can only agree with the t-test
when the seeds all point one way.)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass
class Stats:
    """Mean, sample sd (ddof 1) and the 95% t interval of the mean of n values (sd and
    interval are NaN for a single value)."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float

    def pm(self, digits: int = 4) -> str:
        """``mean ± sd`` (the mean alone for one value)."""
        return f"{self.mean:.{digits}f}" if self.n < 2 else \
            f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"

    def ci(self, digits: int = 4, sign: bool = False) -> str:
        if math.isnan(self.ci_low):
            return "n/a"
        f = f"+.{digits}f" if sign else f".{digits}f"
        return f"[{self.ci_low:{f}}, {self.ci_high:{f}}]"


def describe(values, confidence: float = CONFIDENCE) -> Stats:
    """:class:`Stats` of a sequence of numbers."""
    from scipy import stats  # a second to import: on first use

    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        raise ValueError("describe() needs at least one value")
    mean = float(x.mean())
    if n < 2:
        return Stats(n, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Stats(n, mean, sd, mean - half, mean + half)


def paired(a, b) -> tuple[Stats, float, float, float]:
    """(Stats of b − a, t statistic, paired t-test p, Wilcoxon p) of two equal-length samples."""
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = b - a
    s = describe(d)
    t = p = w = math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN results for n < 2 or all-equal differences
        if d.size >= 2:
            res = stats.ttest_rel(b, a)
            t, p = float(res.statistic), float(res.pvalue)
            if np.any(d != 0):
                try:
                    w = float(stats.wilcoxon(d).pvalue)
                except ValueError:
                    pass
    return s, t, p, w


def fmt_p(x: float) -> str:
    """A p-value for a table: 3 decimals, 2 significant digits below 0.001."""
    return "n/a" if math.isnan(x) else (f"{x:.2g}" if x < 0.001 else f"{x:.3f}")
