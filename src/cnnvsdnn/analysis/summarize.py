"""``cnnvsdnn summarize``: statistics over the seeds of a sweep, and paired model differences.

Reads every finished run (``metrics.json``) under the given directories and groups the runs by
dataset, engine, model and *variant* (any other config value that differs between runs of one
dataset and engine, e.g. ``optimizer.lr``; seeds, thread counts and progress do not count).
For each group and metric of one split (test by default): the number of seeds, mean, sample sd
(ddof 1) and the 95% Student-t interval of the mean. For each pair of models ``A,B`` (default
``dnn,cnn``): the per-seed difference B − A of runs with the same dataset, engine, variant and
seed, its mean, sd and t interval, the paired t-test (``scipy.stats.ttest_rel``) and the
Wilcoxon signed-rank test. (With 5 seeds the smallest two-sided Wilcoxon p is 0.0625: it can
only agree with the t-test when the seeds all point one way.)

Writes ``summary.md``, ``summary.csv``, ``paired.csv`` and ``summary.png`` into ``--out``
(default ``<first directory>/summary``), prints the tables, and with ``--json PATH`` the same
numbers as JSON. Points of a sweep that have no result (failed, timed out, cancelled, never
run: listed in the sweep's ``sweep.json``, or a run directory without ``metrics.json``) are
named on stderr and in ``summary.md``, never silently left out.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..config import NOT_A_RESULT, SAME_RESULT, flat_config, unused_keys, with_defaults
from ..errors import ConfigError, DataError
from ..evaluation.figures import plot_over_seeds
from ..evaluation.stats import CONFIDENCE, Stats, describe, fmt_p, paired
from ..evaluation.tables import markdown_table, print_rows, write_csv
from ..run.files import CONFIG, find_runs, read_metrics
from ..run.sweeps import points_without_result
from ..safe_io import check_output, check_output_dir, write_text

__all__ = ["METRICS", "Run", "Stats", "Summary", "add_arguments", "describe", "load_runs",
           "paired", "run", "summarize", "write_outputs"]

# metric key in metrics.json -> column title
METRICS = {"accuracy": "accuracy", "f1_weighted": "F1 (weighted)", "ar_weighted": "AR (weighted)"}
# Reading order of models in tables and figures; others follow alphabetically.
MODEL_ORDER = ["dnn", "dnn_elu", "cnn", "cnn8", "cnn16", "cnn32", "cnn_pool", "cnn_deep",
               "cnn_elu"]
ENGINE_ORDER = ["numba", "keras"]
# Config keys that do not make a run a different experiment: what a group is made of (seed,
# model, dataset, engine) and the keys that change no result (config/schema.py).
_NOT_VARIANT = ("seed", "engine.name", *NOT_A_RESULT, *SAME_RESULT)
_NOT_VARIANT_PREFIX = ("model.", "dataset.", "hydra.")


@dataclass
class Run:
    """One finished run: what it is, and its metrics.json."""

    path: Path
    dataset: str
    model: str
    engine: str
    seed: int
    variant: str
    metrics: dict = field(repr=False)

    def value(self, split: str, metric: str) -> float:
        return float(self.metrics["splits"][split][metric])

    @property
    def seconds(self) -> float | None:
        s = self.metrics.get("seconds") or {}
        return s.get("total")


# ---------------------------------------------------------------------------------- reading
def _flat(d) -> dict:
    """The config's keys as ``a.b`` with hashable values (lists as JSON text)."""
    return {k: json.dumps(v) if isinstance(v, list) else v for k, v in flat_config(d).items()}


def _settings(run_dir: Path) -> dict:
    """The run's resolved config (config.yaml), flat, without the keys that are no variant
    (a key the run predates counts as its default; a key the run does not use is left out)."""
    f = run_dir / CONFIG
    if not f.is_file():
        return {}
    try:
        flat = with_defaults(_flat(yaml.safe_load(f.read_text()) or {}))
    except yaml.YAMLError as ex:
        raise DataError(f"{f} is not valid YAML ({ex.__class__.__name__}); rerun that run or "
                        f"remove its directory") from None
    unused = unused_keys(flat)  # e.g. engine.fit_batch_size of a numba run
    return {k: v for k, v in flat.items() if k not in _NOT_VARIANT and k not in unused
            and not k.startswith(_NOT_VARIANT_PREFIX)}


def load_runs(dirs: list[Path | str]) -> list[Run]:
    """Every finished run at or under ``dirs``; raises ConfigError if there is none."""
    paths = find_runs([Path(d) for d in dirs])
    if not paths:
        missing = points_without_result([Path(d) for d in dirs])
        if missing:
            raise ConfigError(f"no finished runs (metrics.json) under {', '.join(map(str, dirs))}"
                              f": {len(missing)} points there have no result (e.g. {missing[0][0]}:"
                              f" {missing[0][1]}); continue the sweep with train.resume=true")
        raise ConfigError(f"no finished runs (metrics.json) under {', '.join(map(str, dirs))}; "
                          f"run a sweep first, e.g. `cnnvsdnn train -m model=dnn,cnn "
                          f"seed=0,1,2,3,4`, and pass its outputs/multirun/<time> directory")
    raw = []
    for p in paths:
        try:
            m = read_metrics(p)
        except ConfigError as ex:
            raise DataError(str(ex)) from None
        key = (str(m["dataset"]), str(m["model"]), str(m.get("engine", "numba")), int(m["seed"]))
        raw.append((p, key, m, _settings(p)))
    # A variant is a setting that differs between runs of one dataset and engine.
    by_de: dict[tuple, list[dict]] = {}
    for _, key, _, s in raw:
        by_de.setdefault((key[0], key[2]), []).append(s)
    varying = {de: sorted(k for k in set().union(*ss) if len({repr(s.get(k)) for s in ss}) > 1)
               for de, ss in by_de.items()}
    runs, seen = [], {}
    for p, (dataset, model, engine, seed), m, s in raw:
        variant = " ".join(f"{k}={s.get(k)}" for k in varying[(dataset, engine)])
        ident = (dataset, engine, variant, model, seed)
        if ident in seen:
            print(f"summarize: {p} repeats {seen[ident]} (same dataset, engine, model, variant "
                  f"and seed); using the first", file=sys.stderr)
            continue
        seen[ident] = p
        runs.append(Run(p, dataset, model, engine, seed, variant, m))
    return runs


# ---------------------------------------------------------------------------------- numbers
def _order(model: str) -> tuple:
    return (MODEL_ORDER.index(model), "") if model in MODEL_ORDER else (len(MODEL_ORDER), model)


def _engine_order(engine: str) -> tuple:
    return (ENGINE_ORDER.index(engine), "") if engine in ENGINE_ORDER else (9, engine)


@dataclass
class Group:
    dataset: str
    engine: str
    variant: str
    model: str
    seeds: list[int]
    stats: dict[str, Stats]  # metric -> Stats
    seconds: Stats | None  # wall time per run


@dataclass
class Pair:
    dataset: str
    engine: str
    variant: str
    a: str
    b: str
    seeds: list[int]
    metric: str
    diff: Stats  # of b - a, per seed
    t: float
    p_ttest: float
    p_wilcoxon: float
    b_better: int  # seeds where b > a


@dataclass
class Summary:
    roots: list[str]
    split: str
    runs: list[Run]
    groups: list[Group]
    pairs: list[Pair]
    missing_pairs: list[str]
    no_result: list[tuple[str, str]] = field(default_factory=list)  # (directory, why)


def summarize(runs: list[Run], split: str = "test", pairs=(("dnn", "cnn"),),
              roots=()) -> Summary:
    """Group the runs and compute the statistics of the module docstring."""
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.engine, r.variant, r.model), []).append(r)
    keys = sorted(groups, key=lambda k: (k[0], _engine_order(k[1]), k[2], _order(k[3])))
    out_groups = []
    for k in keys:
        rs = sorted(groups[k], key=lambda r: r.seed)
        if split not in rs[0].metrics["splits"]:
            raise ConfigError(f"the runs have no {split!r} split; choose one of "
                              f"{', '.join(rs[0].metrics['splits'])}")
        secs = [r.seconds for r in rs if r.seconds is not None]
        out_groups.append(Group(*k, seeds=[r.seed for r in rs],
                                stats={m: describe([r.value(split, m) for r in rs])
                                       for m in METRICS},
                                seconds=describe(secs) if secs else None))
    out_pairs, missing = [], []
    for a, b in pairs:
        found = False
        for ds, eng, var in dict.fromkeys(k[:3] for k in keys):
            ra = {r.seed: r for r in groups.get((ds, eng, var, a), [])}
            rb = {r.seed: r for r in groups.get((ds, eng, var, b), [])}
            seeds = sorted(ra.keys() & rb.keys())
            if not seeds:
                continue
            found = True
            for m in METRICS:
                va = [ra[s].value(split, m) for s in seeds]
                vb = [rb[s].value(split, m) for s in seeds]
                d, t, p, w = paired(va, vb)
                out_pairs.append(Pair(ds, eng, var, a, b, seeds, m, d, t, p, w,
                                      sum(y > x for x, y in zip(va, vb))))
        if not found:
            missing.append(f"{b} − {a}")
    return Summary([str(r) for r in roots], split, runs, out_groups, out_pairs, missing)


# ---------------------------------------------------------------------------------- output
def _label(dataset: str, engine: str, variant: str, model: str) -> str:
    s = model if engine == "numba" else f"{model} ({engine})"
    return f"{s} [{variant}]" if variant else s


def group_rows(summary: Summary) -> list[list[str]]:
    """The per-model table as strings: header first."""
    rows = [["dataset", "engine", "model", "seeds"]]
    if any(g.variant for g in summary.groups):
        rows[0].insert(2, "variant")
    for title in METRICS.values():
        rows[0] += [f"{title} mean ± sd", "95% CI"]
    rows[0].append("s/run")
    for g in summary.groups:
        row = [g.dataset, g.engine, g.model, str(len(g.seeds))]
        if len(rows[0]) > len(row) + 2 * len(METRICS) + 1:
            row.insert(2, g.variant or "-")
        for m in METRICS:
            row += [g.stats[m].pm(), g.stats[m].ci()]
        row.append(f"{g.seconds.mean:.0f}" if g.seconds else "n/a")
        rows.append(row)
    return rows


def pair_rows(summary: Summary) -> list[list[str]]:
    """The paired-difference table as strings: header first."""
    rows = [["dataset", "engine", "difference", "metric", "pairs", "mean ± sd", "95% CI",
             "paired t p", "Wilcoxon p", "B better"]]
    for p in summary.pairs:
        diff = f"{p.b} − {p.a}" + (f" [{p.variant}]" if p.variant else "")
        rows.append([p.dataset, p.engine, diff, METRICS[p.metric], str(p.diff.n),
                     f"{p.diff.mean:+.4f}" + ("" if p.diff.n < 2 else f" ± {p.diff.sd:.4f}"),
                     p.diff.ci(sign=True), fmt_p(p.p_ttest), fmt_p(p.p_wilcoxon),
                     f"{p.b_better}/{p.diff.n}"])
    return rows


def _where(roots: list[str]) -> str:
    """The directories given, or their common parent when there are many (a shell glob)."""
    if len(roots) <= 3:
        return ", ".join(roots) or "."
    try:
        return f"{len(roots)} directories in {os.path.commonpath(roots) or '.'}"
    except ValueError:  # absolute and relative paths mixed
        return f"{len(roots)} directories"


def markdown(summary: Summary) -> str:
    n_seeds = sorted({len(g.seeds) for g in summary.groups})
    text = [f"# Summary over seeds ({summary.split} split)", "",
            f"{len(summary.runs)} runs under {_where(summary.roots)}; "
            f"{'/'.join(map(str, n_seeds))} seeds per model. Mean ± sample sd, and the 95% "
            f"Student-t interval of the mean.", "", markdown_table(group_rows(summary))]
    if summary.pairs:
        text += ["## Paired differences (same dataset, engine and seed)", "",
                 "B − A per seed; its mean ± sd, 95% t interval, the paired t-test and the "
                 "Wilcoxon signed-rank test (two-sided), and the seeds where B is better.", "",
                 markdown_table(pair_rows(summary))]
    if summary.missing_pairs:
        text += [f"No runs to pair for {', '.join(summary.missing_pairs)}.", ""]
    if summary.no_result:
        text += [f"## Points without a result ({len(summary.no_result)}, left out)", "",
                 *[f"- `{d}`: {why}" for d, why in summary.no_result], ""]
    return "\n".join(text)


def _nan_none(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def to_json(summary: Summary) -> dict:
    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return _nan_none(o)

    return clean({
        "roots": summary.roots, "split": summary.split, "confidence": CONFIDENCE,
        "runs": [{"path": str(r.path), "dataset": r.dataset, "model": r.model,
                  "engine": r.engine, "seed": r.seed, "variant": r.variant}
                 for r in summary.runs],
        "groups": [{**{k: v for k, v in asdict(g).items() if k not in ("stats", "seconds")},
                    **{m: asdict(s) for m, s in g.stats.items()},
                    "seconds": asdict(g.seconds) if g.seconds else None}
                   for g in summary.groups],
        "pairs": [{**{k: v for k, v in asdict(p).items() if k != "diff"},
                   "diff": asdict(p.diff)} for p in summary.pairs],
        "no_result": [{"path": d, "why": why} for d, why in summary.no_result],
    })


def figure(summary: Summary, path: Path, title: str | None = None) -> Path:
    """Each metric per model: the seeds as dots, the mean with its 95% t interval."""
    panels: dict[str, list] = {}
    for g in summary.groups:
        vals = {m: ([r.value(summary.split, m) for r in summary.runs
                     if (r.dataset, r.engine, r.variant, r.model) ==
                     (g.dataset, g.engine, g.variant, g.model)], g.stats[m]) for m in METRICS}
        panels.setdefault(g.dataset, []).append((_label(g.dataset, g.engine, g.variant, g.model),
                                                 vals))
    where = "test" if summary.split == "test" else summary.split
    titles = {m: f"{where} {t}" for m, t in METRICS.items()}
    return plot_over_seeds(panels, titles, path,
                           title or "mean and 95% t interval over seeds (dots: single seeds)")


def write_outputs(summary: Summary, out: Path) -> list[Path]:
    """summary.md, summary.csv (one row per group and metric), paired.csv, summary.png."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise ConfigError(f"cannot create {out} ({ex.strerror}); choose another --out") from None
    md = out / "summary.md"
    write_text(md, markdown(summary))
    rows = []
    for g in summary.groups:
        for m, s in g.stats.items():
            rows.append([g.dataset, g.engine, g.variant, g.model, summary.split, m, s.n, s.mean,
                         s.sd, s.ci_low, s.ci_high, " ".join(map(str, g.seeds)),
                         g.seconds.mean if g.seconds else math.nan])
    write_csv(out / "summary.csv", ["dataset", "engine", "variant", "model", "split", "metric",
                                     "n", "mean", "sd", "ci_low", "ci_high", "seeds",
                                     "seconds_per_run"], rows)
    prow = [[p.dataset, p.engine, p.variant, p.a, p.b, summary.split, p.metric, p.diff.n,
             p.diff.mean, p.diff.sd, p.diff.ci_low, p.diff.ci_high, p.t, p.p_ttest,
             p.p_wilcoxon, p.b_better, " ".join(map(str, p.seeds))] for p in summary.pairs]
    write_csv(out / "paired.csv", ["dataset", "engine", "variant", "a", "b", "split", "metric",
                                    "n", "mean_diff", "sd", "ci_low", "ci_high", "t", "p_ttest",
                                    "p_wilcoxon", "b_better", "seeds"], prow)
    return [md, out / "summary.csv", out / "paired.csv", figure(summary, out / "summary.png")]


def print_tables(summary: Summary) -> None:
    print_rows(f"{summary.split} split over seeds (mean ± sd, 95% t interval)",
               group_rows(summary))
    if summary.pairs:
        print_rows("paired differences B − A (same dataset, engine and seed)",
                   pair_rows(summary))
    for m in summary.missing_pairs:
        print(f"no runs to pair for {m}")


# ---------------------------------------------------------------------------------- command
def add_arguments(parser) -> None:
    """The arguments of ``cnnvsdnn summarize`` (the CLI wires them to :func:`run`)."""
    parser.add_argument("dirs", nargs="+", metavar="MULTIRUN_DIR",
                        help="multirun (sweep) directories or run directories; searched for "
                        "metrics.json")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON "
                        "(- for stdout)")
    parser.add_argument("--out", metavar="DIR", help="where the tables and the figure go "
                        "(default: MULTIRUN_DIR/summary)")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"],
                        help="which split's metrics (default: test)")
    parser.add_argument("--pair", action="append", metavar="A,B",
                        help="report B − A paired by seed (default: dnn,cnn); repeatable; "
                        "--pair none for no pairs")


def parse_pairs(values: list[str] | None) -> list[tuple[str, str]]:
    if not values:
        return [("dnn", "cnn")]
    pairs = []
    for v in values:
        if v.strip().lower() == "none":
            continue
        parts = [s.strip() for s in v.split(",")]
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise ConfigError(f"--pair {v!r} must be two different models A,B (B − A is "
                              f"reported), e.g. --pair dnn,cnn")
        pairs.append((parts[0], parts[1]))
    return pairs


def run(ns) -> int:
    """``cnnvsdnn summarize``: see the module docstring."""
    pairs = parse_pairs(ns.pair)
    runs = load_runs(ns.dirs)
    summary = summarize(runs, split=ns.split, pairs=pairs, roots=ns.dirs)
    out = check_output_dir(Path(ns.out) if ns.out else Path(ns.dirs[0]) / "summary")
    if ns.json and ns.json != "-":
        check_output(ns.json, force=ns.force, what="JSON file", flag="--json")
    summary.no_result = [(str(d), why) for d, why in points_without_result(ns.dirs)]
    for d, why in summary.no_result:
        print(f"summarize: no result, left out: {d} ({why})", file=sys.stderr)
    files = write_outputs(summary, out)
    if ns.json == "-":
        print(json.dumps(to_json(summary), indent=1))
    else:
        print_tables(summary)
        if ns.json:
            write_text(ns.json, json.dumps(to_json(summary), indent=1))
            files.append(Path(ns.json))
        print(f"summarize: {len(runs)} runs; wrote {', '.join(map(str, files))}")
    return 0
