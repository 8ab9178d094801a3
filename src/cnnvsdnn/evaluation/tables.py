"""Tables: our numbers beside published ones (Markdown, CSV, LaTeX), plain Markdown tables of
rows of strings, CSV files, and the same on the terminal.

The report's tables (:class:`Table`) put each of our columns -- one run, or mean ± sd over
seeds -- beside the study's published value and the difference Δ = ours − study.
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
                "point", "state", "job", "run directory"}


@dataclass
class Table:
    """Rows of (row labels, one (ours, published) cell per group); rendered three ways."""

    title: str
    keys: list[str]  # names of the row-label columns, e.g. ["Split"] or ["Class", "Count"]
    groups: list[tuple[str, str]]  # (metric, column label), e.g. ("F1", "DNN")
    rows: list[tuple[list[str], list[tuple[Stats | None, float | None]]]]
    published: bool = True  # False: data the study never saw, so no study and Δ columns

    def _group_name(self, metric: str, label: str) -> str:
        return label if len({m for m, _ in self.groups}) == 1 else f"{metric} {label}"

    def markdown(self) -> str:
        head = list(self.keys)
        per = 3 if self.published else 1
        for metric, label in self.groups:
            head += [self._group_name(metric, label), "study", "Δ"][:per]
        lines = [f"**{self.title}**", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(self.keys) + "---:|" * per * len(self.groups)]
        for labels, cells in self.rows:
            out = list(labels)
            for ours, pub in cells:
                out += [_fmt_ours(ours), _fmt(pub), _fmt_diff(ours, pub)][:per]
            lines.append("| " + " | ".join(out) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        """Long format, full precision: one line per row and group."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([k.lower() for k in self.keys] +
                   ["metric", "model", "ours", "ours_sd", "runs", "study", "difference"])
        for labels, cells in self.rows:
            for (metric, label), (ours, pub) in zip(self.groups, cells, strict=True):
                diff = ours.mean - pub if ours is not None and pub is not None else None
                w.writerow([*labels, metric, label, _num(ours and ours.mean),
                            _num(ours.sd if ours and ours.n > 1 else None),
                            ours.n if ours else 0, _num(pub), _num(diff)])
        return buf.getvalue()

    def latex(self) -> str:
        """A booktabs ``table`` (\\usepackage{booktabs})."""
        nk, ng = len(self.keys), len(self.groups)
        names = [_tex(self._group_name(m, lab)) for m, lab in self.groups]
        if self.published:
            spec = "l" * nk + " rrr" * ng
            top = " & ".join([""] * nk + [f"\\multicolumn{{3}}{{c}}{{{g}}}" for g in names])
            rules = " ".join(f"\\cmidrule(lr){{{nk + 1 + 3 * i}-{nk + 3 + 3 * i}}}"
                             for i in range(ng))
            sub = " & ".join([*map(_tex, self.keys)] + ["ours & study & $\\Delta$"] * ng)
            head = [f"{top} \\\\", rules, f"{sub} \\\\"]
        else:
            spec = "l" * nk + " r" * ng
            head = [" & ".join([*map(_tex, self.keys), *names]) + " \\\\"]
        lines = ["% needs \\usepackage{booktabs}", "\\begin{table}[htbp]", "\\centering",
                 "\\small", f"\\caption{{{_tex(self.title)}}}", f"\\begin{{tabular}}{{{spec}}}",
                 "\\toprule", *head, "\\midrule"]
        for labels, cells in self.rows:
            out = [_tex(x) for x in labels]
            for ours, pub in cells:
                out += [_fmt_ours(ours, tex=True), _fmt(pub),
                        _fmt_diff(ours, pub, tex=True)][:3 if self.published else 1]
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
