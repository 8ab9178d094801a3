"""Tables: our numbers beside published ones (Markdown, CSV, LaTeX), plain Markdown tables of
rows of strings, CSV files, and the same on the terminal.

The report's tables (:class:`Table`) put each of our columns -- one run, or mean ± sd over
seeds; under one protocol or several -- beside the study's published value and the difference
Δ = ours − published.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table as RichTable

from ..safe_io import write_text
from ..ui import wide_console
from .stats import Stats

NA = "n/a"
# Header names of columns that hold text (left-aligned); the others hold numbers.
TEXT_COLUMNS = {"dataset", "engine", "variant", "model", "difference", "metric", "change",
                "column", "split", "switch", "design", "verdict",
                "point", "state", "job", "run directory"}


@dataclass
class Table:
    """Rows of (row labels, one (ours, published) cell per group); rendered three ways.

    ``ours`` is one :class:`Stats` (or None), or with ``variants`` (e.g. the corrected and the
    study's protocol) a list of them, one per variant: each is shown, then the published value,
    then each one's difference to it."""

    title: str
    keys: list[str]  # names of the row-label columns, e.g. ["Split"] or ["Class", "Count"]
    groups: list[tuple[str, str]]  # (metric, column label), e.g. ("F1", "DNN")
    rows: list[tuple[list[str], list[tuple]]]
    variants: list[str] | None = None  # names of our variants; None: one, unnamed
    published: bool = True  # False: data the study never saw, so no study and Δ columns

    def _group_name(self, metric: str, label: str) -> str:
        return label if len({m for m, _ in self.groups}) == 1 else f"{metric} {label}"

    def _ours(self, cell) -> list:
        return list(cell) if self.variants else [cell]

    def _head(self, metric: str, label: str) -> list[str]:
        g = self._group_name(metric, label)
        names = [f"{g} {v}" for v in self.variants] if self.variants else [g]
        if not self.published:
            return names
        return names + ["study"] + ([f"Δ {v}" for v in self.variants] if self.variants else ["Δ"])

    def _width(self) -> int:
        """Columns per group: each variant, then the study's value and each variant's Δ."""
        n = len(self.variants) if self.variants else 1
        return 2 * n + 1 if self.published else n

    def _cells(self, ours, pub, tex: bool = False) -> list[str]:
        ours = self._ours(ours)
        out = [_fmt_ours(o, tex=tex) for o in ours]
        if self.published:
            out += [_fmt(pub)] + [_fmt_diff(o, pub, tex=tex) for o in ours]
        return out

    def markdown(self) -> str:
        head = list(self.keys)
        for metric, label in self.groups:
            head += self._head(metric, label)
        lines = [f"**{self.title}**", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(self.keys) + "---:|" * self._width() * len(self.groups)]
        for labels, cells in self.rows:
            out = list(labels)
            for ours, pub in cells:
                out += self._cells(ours, pub)
            lines.append("| " + " | ".join(out) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        """Long format, full precision: one line per row, group and variant."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([k.lower() for k in self.keys] + ["metric", "model", "protocol", "ours",
                                                     "ours_sd", "runs", "study",
                                                     "difference"])
        for labels, cells in self.rows:
            for (metric, label), (ours, pub) in zip(self.groups, cells, strict=True):
                for variant, o in zip(self.variants or [""], self._ours(ours), strict=True):
                    diff = o.mean - pub if o is not None and pub is not None else None
                    w.writerow([*labels, metric, label, variant, _num(o and o.mean),
                                _num(o.sd if o and o.n > 1 else None), o.n if o else 0,
                                _num(pub), _num(diff)])
        return buf.getvalue()

    def latex(self) -> str:
        """A booktabs ``table`` (\\usepackage{booktabs})."""
        nk, ng, k = len(self.keys), len(self.groups), self._width()
        names = [_tex(self._group_name(m, lab)) for m, lab in self.groups]
        spec = "l" * nk + (" " + "r" * k) * ng
        if self.published or self.variants:
            top = " & ".join([""] * nk + [f"\\multicolumn{{{k}}}{{c}}{{{g}}}" for g in names])
            rules = " ".join(f"\\cmidrule(lr){{{nk + 1 + k * i}-{nk + k * (i + 1)}}}"
                             for i in range(ng))
            variants = self.variants or ["ours"]
            sub_group = [*map(_tex, variants)]
            if self.published:
                sub_group += ["study"] + ["$\\Delta$" + (f" {_tex(v)}" if self.variants else "")
                                          for v in variants]
            sub = " & ".join([*map(_tex, self.keys)] + [" & ".join(sub_group)] * ng)
            head = [f"{top} \\\\", rules, f"{sub} \\\\"]
        else:
            head = [" & ".join([*map(_tex, self.keys), *names]) + " \\\\"]
        lines = ["% needs \\usepackage{booktabs}", "\\begin{table}[htbp]", "\\centering",
                 "\\small", f"\\caption{{{_tex(self.title)}}}", f"\\begin{{tabular}}{{{spec}}}",
                 "\\toprule", *head, "\\midrule"]
        for labels, cells in self.rows:
            out = [_tex(x) for x in labels]
            for ours, pub in cells:
                out += self._cells(ours, pub, tex=True)
            lines.append(" & ".join(out) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    return NA if x is None else f"{x:.4f}"


def _fmt_ours(s: Stats | None, tex: bool = False) -> str:
    if s is None:
        return NA
    if s.n == 1:
        return f"{s.mean:.4f}"
    return f"{s.mean:.4f} $\\pm$ {s.sd:.4f}" if tex else f"{s.mean:.4f} ± {s.sd:.4f}"


def _fmt_diff(s: Stats | None, pub: float | None, tex: bool = False) -> str:
    if s is None or pub is None:
        return NA
    d = f"{round(s.mean - pub, 4) or 0.0:+.4f}"  # no "-0.0000"
    return d.replace("-", "$-$") if tex else d


def _num(x) -> str:
    return "" if x is None else repr(float(x))


def _tex(s: str) -> str:
    return re.sub(r"([_&%#$])", r"\\\1", s).replace("±", "$\\pm$")


def markdown_table(rows: list[list[str]]) -> str:
    """A Markdown table of string rows, header first; number columns right-aligned."""
    head, *body = rows
    align = ["---" if h in TEXT_COLUMNS else "---:" for h in head]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, align, *body]) + "\n"


def write_csv(path: Path, header: list[str], rows) -> None:
    """A CSV file; NaN becomes an empty cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if isinstance(v, float) and math.isnan(v) else v for v in r] for r in rows])
    write_text(path, buf.getvalue())


def print_rows(title: str, rows: list[list[str]]) -> None:
    """A table of string rows (header first) on the terminal."""
    t = RichTable(title=title)
    for h in rows[0]:
        t.add_column(h, justify="left" if h in TEXT_COLUMNS else "right")
    for r in rows[1:]:
        t.add_row(*r)
    wide_console().print(t)
