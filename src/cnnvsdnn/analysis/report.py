"""``cnnvsdnn report``: the study's tables and figures from finished runs, beside its values.

Two ways in:

- ``report RUN_DIR… [--out DIR]`` reads every ``metrics.json`` under the given directories (a
  run directory or a multirun sweep) and writes, per dataset, into ``DIR/<dataset>/``:
  the accuracy table (the study's IV, VI, VIII) and the per-class table (V, VII, IX) as
  Markdown, CSV and LaTeX, ``report.md`` with both, one training figure per run (figures 8-16),
  a per-class F1 figure, and for each column's first run the cumulative gains curves with
  their AR (the study's Fig. 4), the confusion matrix and the most confident mistakes. Runs on a
  user's folder or .npz are reported per data (``DIR/<kind>-<name>-<sha256 prefix>/``) with
  their class names. Each of our columns stands beside the published value and the
  difference; several seeds of one column show as mean ± sd (sample sd).
- ``report --experiment mnist`` runs the experiment ``experiments/mnist.py`` first: it trains
  (``cnnvsdnn train`` subprocesses, progress shown) the runs the tables need that are not
  finished yet in ``--runs-dir``, resumes an interrupted one, reuses a finished one with the
  same config, and skips a dataset that cannot be had or a Keras column without Keras.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np

from ..config import compose_config
from ..data import DATASETS
from ..errors import CnnvsdnnError, ConfigError
from ..evaluation.figures import plot_confusion, plot_f1_comparison, plot_gains, plot_training
from ..evaluation.stats import describe
from ..evaluation.tables import NA, Table
from ..run.files import LOG, MISTAKES, PREDICTIONS, find_runs, read_metrics
from ..run.log import read_log
from ..safe_io import check_output_dir, io_error, write_text
from . import protocol as P
from .experiments import (
    Experiment,
    default_experiment,
    default_label,
    load_experiment,
    model_engine,
)
from .plan import Point, plan, train_point, unavailable

SPLITS = (("train", "Training"), ("dev", "Development"), ("test", "Test"))
DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
                  "svhn": "SVHN"}


# ------------------------------------------------------------------------------ training
def _keras_missing() -> str | None:
    for mod in ("keras", "tensorflow"):
        if importlib.util.find_spec(mod) is None:
            return mod
    return None


def _run_dir_name(dataset_dir: Path, overrides: list[str], seed: int, taken: set,
                  variant: str = P.CORRECTED) -> Path:
    """``<engine>_<model>[_<keras protocol>][_<variant>]_seed<seed>``; the corrected protocol's
    runs keep the names they had before protocols existed, so they are reused."""
    model, engine, protocol = model_engine(overrides)
    stem = f"{engine}_{model}" + (f"_{protocol}" if protocol not in (None, "study") else "")
    stem += "" if variant == P.CORRECTED else f"_{variant}"
    d = dataset_dir / f"{stem}_seed{seed}"
    if d in taken:
        raise ConfigError(f"two columns of the experiment would train into {d} (same model and "
                          f"engine); give them different models or engines")
    taken.add(d)
    return d


def prepare_runs(exp: Experiment, runs_dir: Path, seeds: list[int] | None = None,
                 train: bool = True) -> tuple[list[Path], list[str], list[str]]:
    """Train what the experiment lacks (see the module docstring).

    Returns (finished run directories, notes for the report, failures)."""
    seeds = exp.seeds if seeds is None else seeds
    runs_dir = Path(runs_dir).resolve() / exp.dataset
    points: list[Point] = []
    notes: list[str] = []
    taken: set = set()
    for label, overrides in exp.runs.items():
        _, engine, _ = model_engine(overrides)
        if engine == "keras" and (mod := _keras_missing()):
            notes.append(f"{label}: not trained, `{mod}` is not installed (pip install "
                         f"'cnnvsdnn[reference]'); the column shows {NA}.")
            continue
        column = [f"dataset={exp.dataset}", *overrides]
        try:
            sw = P.switches(column)
            for variant in P.planned_variants(exp.protocols, exp.attribution, sw):
                for seed in seeds:
                    p = Point(label, exp.dataset,
                              [*column, *P.variant_overrides(variant, sw), f"seed={seed}"],
                              seed, _run_dir_name(runs_dir, overrides, seed, taken, variant),
                              variant=variant)
                    compose_config(p.overrides)
                    points.append(p)
        except ConfigError as ex:
            if engine != "keras":
                raise ConfigError(f"experiment {exp.path}, column {label}: {ex}") from None
            notes.append(f"{label}: not trained ({ex}); the column shows {NA}.")
            points = [p for p in points if p.label != label]
    plan(points)
    done = [p.run_dir for p in points if p.state == "done"]
    for p in points:
        if p.state == "done":
            print(f"report: {p.dataset} {p.name} seed {p.seed}: reusing {p.run_dir}",
                  flush=True)
    todo = [p for p in points if p.state != "done"]
    if not train:
        notes += [f"{p.name} seed {p.seed}: no finished run in {p.run_dir} (--no-train)."
                  for p in todo]
        todo = []
    if todo and (why := unavailable(todo[0].overrides)):
        # a dataset that cannot be had is skipped, not a failure
        notes.append(f"{len(todo)} run(s) not trained: {exp.dataset} cannot be had ({why})")
        todo = []
    failures = []
    for i, p in enumerate(todo, 1):
        verb = "resuming" if p.state == "resume" else "training"
        print(f"report: [{i}/{len(todo)}] {verb} {p.dataset} {p.name} seed {p.seed} in "
              f"{p.run_dir}", flush=True)
        rc = train_point(p, say=lambda m: print(f"report: {m}", flush=True))
        if rc != 0:
            failures.append(f"{p.dataset} {p.name} seed {p.seed} (exit {rc}, see {p.run_dir})")
            notes.append(f"{p.name} seed {p.seed}: training failed (exit {rc}).")
        else:
            done.append(p.run_dir)
    return done, notes, failures


# ------------------------------------------------------------------------------ tables
def _published(exp: Experiment | None, key: str, label: str, index=None) -> float | None:
    """A published value, or None when the study has none (another dataset or column)."""
    pub = (exp.published or {}) if exp else {}
    try:
        v = pub[key][label]
        return float(v if index is None else v[index])
    except (KeyError, IndexError, TypeError):
        return None


def _cell(ms_by_variant: dict[str, list[dict]], variants: list[str] | None, value):
    """Our Stats of ``value(metrics)`` per variant (one Stats when ``variants`` is None)."""
    def stats(ms):
        vals = [value(m) for m in ms]
        return describe(vals) if vals else None
    if variants is None:
        return stats(next(iter(ms_by_variant.values()), []))
    return [stats(ms_by_variant.get(v, [])) for v in variants]


def accuracy_table(title: str, labels: list[str], runs: dict[str, dict[str, list[dict]]],
                   exp: Experiment | None, variants: list[str] | None = None) -> Table:
    """``runs``: column label -> variant -> metrics of its runs."""
    rows = []
    for split, name in SPLITS:
        cells = []
        for label in labels:
            ours = _cell(runs.get(label, {}), variants,
                         lambda m, split=split: m["splits"][split]["accuracy"])
            cells.append((ours, _published(exp, "accuracy", label, split)))
        rows.append(([name], cells))
    return Table(title, ["Split"], [("accuracy", lab) for lab in labels], rows,
                 [P.display(v) for v in variants] if variants else None)


def class_table(title: str, labels: list[str], runs: dict[str, dict[str, list[dict]]],
                exp: Experiment | None, classes: list[str], counts: list[int], n: int,
                variants: list[str] | None = None) -> Table:
    groups = [(metric, lab) for metric in ("F1", "AR") for lab in labels]
    rows = []
    for i, cls in enumerate(classes + ["Weighted average"]):
        cells = []
        for metric, label in groups:
            key = metric.lower()
            if i < len(classes):
                ours = _cell(runs.get(label, {}), variants,
                             lambda m, key=key, i=i: m["splits"]["test"][key][i])
                pub = _published(exp, key, label, i)
            else:
                ours = _cell(runs.get(label, {}), variants,
                             lambda m, key=key: m["splits"]["test"][f"{key}_weighted"])
                pub = _published(exp, f"{key}_weighted", label)
            cells.append((ours, pub))
        rows.append(([cls, str(counts[i] if i < len(classes) else n)], cells))
    return Table(title, ["Class", "Count"], groups, rows,
                 [P.display(v) for v in variants] if variants else None)


# ------------------------------------------------------------------------------ the report
def build_report(run_dirs: list[Path], out_dir: Path, experiment: Experiment | None = None,
                 notes: list[str] | None = None) -> dict[str, Path]:
    """Write the tables and figures of every dataset in ``run_dirs``; returns dataset -> dir."""
    if not run_dirs:
        raise ConfigError("no finished runs (metrics.json) found; train some first "
                          "(`cnnvsdnn train`), or use `cnnvsdnn report --experiment mnist`")
    by_dataset: dict[str, list[tuple[Path, dict]]] = {}
    for d in run_dirs:
        m = read_metrics(d)
        by_dataset.setdefault(_data_key(m), []).append((d, m))
    written = {}
    for key, runs in by_dataset.items():
        dataset = runs[0][1]["dataset"]
        own = runs[0][1].get("data")  # a user's folder or .npz: its classes are recorded
        exp = None if own else experiment if experiment and experiment.dataset == dataset \
            else default_experiment(dataset)
        info = DATASETS.get(dataset)
        classes = list(own["classes"]) if own else list(info.classes) if info else \
            [str(i) for i in range(len(runs[0][1]["splits"]["test"]["f1"]))]
        written[key] = _write_dataset(key, runs, Path(out_dir) / key, exp, classes,
                                      list(notes or []))
    return written


def _variant(run_dir: Path) -> tuple[str, list]:
    """(variant, switches) of a finished run, from its config.yaml (``corrected`` when it has
    none, or its dataset has no protocol switches)."""
    flat = P.run_config(run_dir)
    if flat is None:
        return P.CORRECTED, []
    try:
        sw = P.switches_of_run(flat)
    except ConfigError:  # a dataset or engine this cnnvsdnn does not know: no protocols
        return P.CORRECTED, []
    return P.variant_of(flat, sw), sw


def _data_key(m: dict) -> str:
    """What a run was trained on: the built-in set's name; for a folder or .npz its kind, name
    and content, so runs on other (or edited) data never share a table."""
    own = m.get("data")
    if not own:
        return m["dataset"]
    return f"{m['dataset']}-{Path(own['path']).stem}-{own.get('sha256', '')[:8]}"


def _write_dataset(dataset: str, runs: list[tuple[Path, dict]], out: Path,
                   exp: Experiment | None, classes: list[str], notes: list[str]) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise io_error(ex, out, "create") from None
    own = runs[0][1].get("data")
    name = DATASET_TITLES.get(dataset, dataset) if not own else \
        f"{runs[0][1]['dataset']} {own['path']}"
    # Side by side: the experiment's protocols as sub-columns of each column; otherwise a run
    # of another protocol is a column of its own ("CNN (study protocol)").
    # Other variants (one switch on or off) feed the "why they differ" section.
    side = list(exp.protocols) if exp and len(exp.protocols) > 1 else None
    grouped: dict[str, dict[str, list[tuple[Path, dict]]]] = {}
    switches: dict[str, list] = {}
    for d, m in sorted(runs, key=lambda r: (r[1].get("seed", 0), str(r[0]))):
        label = (exp.column_of(m) if exp else None) or default_label(m)
        variant, sw = _variant(d)
        if side is None and variant != P.CORRECTED:
            label = f"{label} ({P.display(variant)})"
        switches.setdefault(label, sw)
        grouped.setdefault(label, {}).setdefault(variant, []).append((d, m))
    labels = list(exp.runs) if exp else []
    labels += [lab for lab in grouped if lab not in labels]
    metrics = {lab: {v: [m for _, m in rs] for v, rs in grouped.get(lab, {}).items()}
               for lab in labels}
    shown = side or [P.CORRECTED]  # the variants in the tables; the others feed "why"
    table_metrics = {lab: ({v: metrics[lab].get(v, []) for v in shown} if side else
                           {v: ms for v, ms in metrics[lab].items()})
                     for lab in labels}

    tables = (exp.tables or {}) if exp else {}
    t_acc = f"Table {tables['accuracy']} ({name})" if "accuracy" in tables else name
    t_cls = f"Table {tables['classes']} ({name})" if "classes" in tables else name
    first = next(m for vs in metrics.values() for ms in vs.values() for m in ms)
    test = first["splits"]["test"]
    acc = accuracy_table(f"{t_acc}: accuracy on the training, development and test splits",
                         labels, table_metrics, exp, side)
    cls = class_table(f"{t_cls}: test set per class, F1 score and area ratio (AR), weighted "
                      f"averages last", labels, table_metrics, exp, classes, test["count"],
                      test["n"], side)
    acc.published = cls.published = not own  # the study never saw a user's data
    for table, stem in ((acc, "accuracy"), (cls, "per_class")):
        write_text(out / f"{stem}.md", table.markdown())
        write_text(out / f"{stem}.csv", table.csv())
        write_text(out / f"{stem}.tex", table.latex())

    # figures 8-16: one per run of the tables; then per-class F1 of every column with runs
    figures = []
    for label in labels:
        for variant in (side or list(grouped.get(label, {}))):
            for d, m in grouped.get(label, {}).get(variant, []):
                tag = "" if variant == P.CORRECTED or not side else f"_{variant}"
                png = out / (f"training_{m.get('engine', 'numba')}_{m['model']}{tag}_seed"
                             f"{m['seed']}.png")
                if png in figures:  # two runs of one model and seed (e.g. other steps)
                    png = png.with_name(f"{png.stem}_{d.name}.png")
                try:
                    log = read_log(d / LOG)
                except ConfigError as ex:  # missing or damaged: the tables need no log
                    notes.append(f"{d}: no training figure ({ex}).")
                    continue
                steps = f", {m['steps']} steps" if m.get("steps") else ""
                proto = f" ({P.display(variant)})" if side else ""
                plot_training(log, png, f"{name}, {label}{proto}: {m['engine']} {m['model']}, "
                                        f"seed {m['seed']}{steps}")
                figures.append(png)
    f1 = {}
    for lab, by_v in table_metrics.items():
        for v, ms in by_v.items():
            if ms:
                key = f"{lab} ({P.display(v)})" if side else lab
                f1[key] = [describe(list(x)).mean
                           for x in zip(*(m["splits"]["test"]["f1"] for m in ms))]
    f1_png = plot_f1_comparison(f1, classes, out / "f1_per_class.png",
                                f"{name}: per-class F1 on the test set")
    figures.append(f1_png)
    for label in labels:  # the test predictions of each column's first run (corrected first)
        by_v = grouped.get(label, {})
        first_runs = by_v.get(P.CORRECTED) or next(iter(by_v.values()), None)
        if first_runs:
            figures += _prediction_figures(out, name, label, *first_runs[0], classes, notes)

    # notes: what the numbers are, where they come from, what is missing
    pub_count = (exp.published or {}).get("count") if exp else None
    if pub_count and list(pub_count) != list(test["count"]):
        notes.append(f"Our test counts {test['count']} differ from the study's {pub_count}.")
    for label in labels:
        by_v = table_metrics[label]
        if not any(by_v.values()) and not any(n.startswith(f"{label}:") for n in notes):
            notes.append(f"{label}: no finished run; shown as {NA}.")
        for v, ms in by_v.items():
            what = f"{label} ({P.display(v)})" if side else label
            if len(ms) > 1:
                seeds = [m["seed"] for m in ms]
                notes.append(f"{what}: mean ± sd (sample sd) over {len(ms)} runs, seeds {seeds}.")
                if len(set(seeds)) < len(seeds):
                    notes.append(f"{what}: several runs share a seed; they are averaged anyway.")
            if len({m.get("steps") for m in ms}) > 1:
                notes.append(f"{what}: the runs differ in steps "
                             f"{sorted({m['steps'] for m in ms})}.")
    if exp and not exp.published:
        notes.append("No published values for this dataset: the published columns show n/a.")
    notes += (exp.notes if exp else [])
    why = ""
    if side and P.CORRECTED in side and P.STUDY in side:
        columns = [P.Column(lab, switches.get(lab, []),
                            {v: {m["seed"]: (d, m) for d, m in rs}
                             for v, rs in grouped.get(lab, {}).items()})
                   for lab in labels if grouped.get(lab)]
        why = P.why_section(columns, exp.published, exp.explained, exp.attribution)
    run_lines = []
    for lab in labels:
        for v, rs in grouped.get(lab, {}).items():
            what = f"{lab} ({P.display(v)})" if side else lab
            run_lines.append(f"- {what}: " + ", ".join(f"`{d}` ({m['steps']} steps)"
                                                       for d, m in rs))
    fig_lines = [f"![{p.stem}]({p.name})" for p in figures]
    if own:
        intro = "The study's tables and figures on your own data (the study has no values for it)."
    elif side:
        intro = ("Ours under the corrected protocol and under the study's (`protocol=study`), "
                 "the study's published value (study) and the differences (Δ = ours − study).")
    else:
        intro = "Ours, the study's published value (study) and the difference (Δ = ours − study)."
    heading = f"# {name}: the study's tables" + ("" if own else " beside ours")
    report = (f"{heading}\n\n{intro}\n\n" + acc.markdown() + "\n" + cls.markdown() + "\n" +
              why +
              ("## Notes\n\n" + "\n".join(f"- {n}" for n in dict.fromkeys(notes)) + "\n\n"
               if notes else "") +
              "## Runs\n\n" + "\n".join(run_lines) + "\n\n## Figures\n\n" +
              "\n\n".join(fig_lines) + "\n")
    write_text(out / "report.md", report)
    print(f"\n{acc.markdown()}\n{cls.markdown()}")
    if why:
        print(why)
    for n in dict.fromkeys(notes):
        print(f"note: {n}")
    print(f"report: wrote {out}/ (report.md, accuracy and per_class .md/.csv/.tex, "
          f"{len(figures)} figures)", flush=True)
    return out


def _prediction_figures(out: Path, name: str, label: str, run_dir: Path, m: dict,
                        classes: list[str], notes: list[str]) -> list[Path]:
    """A run's gains curves and confusion matrix (from its saved test predictions) and its
    most confident mistakes (copied: drawing them needs the test images)."""
    stem = f"{m.get('engine', 'numba')}_{m['model']}_seed{m['seed']}"
    title = f"{name}, {label}: {m.get('engine', 'numba')} {m['model']}, seed {m['seed']}"
    pred = Path(run_dir) / PREDICTIONS
    if not pred.is_file():
        notes.append(f"{run_dir}: no {PREDICTIONS}, so no gains curves or confusion matrix.")
        return []
    with np.load(pred) as z:
        probs, labels = z["probs"], z["labels"]
    figures = [plot_gains(probs, labels, classes, out / f"gains_{stem}.png", title)[0],
               plot_confusion(probs, labels, classes, out / f"confusion_{stem}.png", title)]
    if (Path(run_dir) / MISTAKES).is_file():
        figures.append(Path(shutil.copyfile(Path(run_dir) / MISTAKES,
                                            out / f"mistakes_{stem}.png")))
    return figures


# ------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    """The arguments of ``cnnvsdnn report`` (the CLI wires them to :func:`run`)."""
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="run directories or multirun directories (searched for "
                        "metrics.json)")
    parser.add_argument("--out", default="outputs/report", metavar="DIR",
                        help="write into DIR/<dataset>/ (default: outputs/report)")
    parser.add_argument("--experiment", action="append", default=[], metavar="NAME",
                        help="train what the experiment NAME (mnist, fashion_mnist, cifar10, "
                        "svhn, or a .py file) lacks, then report it; repeatable")
    parser.add_argument("--runs-dir", default="outputs/experiments", metavar="DIR",
                        help="where --experiment keeps its runs, DIR/<dataset>/<engine>_<model>"
                        "_seed<seed>/ (default: outputs/experiments)")
    parser.add_argument("--seeds", metavar="LIST",
                        help="comma-separated seeds for --experiment (default: the "
                        "experiment's, 0); several seeds show as mean ± sd")
    parser.add_argument("--no-train", action="store_true",
                        help="with --experiment: report its finished runs, train nothing")


def run(ns) -> int:
    """``cnnvsdnn report``: see the module docstring."""
    if not ns.run_dirs and not ns.experiment:
        raise ConfigError("give run directories (RUN_DIR...) or --experiment NAME; see "
                          "`cnnvsdnn report --help`")
    seeds = None
    if ns.seeds:
        try:
            seeds = [int(s) for s in ns.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {ns.seeds!r} is not a comma-separated list of "
                              f"integers, e.g. --seeds 0,1,2") from None
    check_output_dir(ns.out)
    extra = find_runs(ns.run_dirs) if ns.run_dirs else []
    if ns.run_dirs and not extra:
        raise ConfigError(f"no finished runs (metrics.json) under {', '.join(ns.run_dirs)}; "
                          f"train some first (`cnnvsdnn train`) or point at run directories")
    failures = []
    for name in ns.experiment:
        exp = load_experiment(name)
        done, notes, failed = prepare_runs(exp, Path(ns.runs_dir), seeds, train=not ns.no_train)
        failures += failed
        mine = [d for d in extra if read_metrics(d)["dataset"] == exp.dataset]
        extra = [d for d in extra if d not in mine]
        runs = list(dict.fromkeys(done + mine))
        if not runs:
            print(f"report: skipping {exp.dataset}, no finished runs to report:\n" +
                  "\n".join(f"  {n}" for n in notes), file=sys.stderr, flush=True)
            continue
        build_report(runs, Path(ns.out), exp, notes)
    if extra:
        build_report(extra, Path(ns.out))
    if failures:
        raise CnnvsdnnError(f"{len(failures)} training run(s) failed: {'; '.join(failures)}; "
                            f"the tables show the others")
    return 0
