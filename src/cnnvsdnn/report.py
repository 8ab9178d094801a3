"""``cnnvsdnn report``: the study's tables and figures from finished runs, beside its values.

Two ways in:

- ``report RUN_DIR… [--out DIR]`` reads every ``metrics.json`` under the given directories (a
  run directory or a multirun sweep) and writes, per dataset, into ``DIR/<dataset>/``:
  the accuracy table (the study's IV, VI, VIII) and the per-class table (V, VII, IX) as
  Markdown, CSV and LaTeX, ``report.md`` with both, one training figure per run (figures 8-16)
  and a per-class F1 figure. Each of our columns stands beside the published value and the
  difference; several seeds of one column show as mean ± sd (sample sd).
- ``report --experiment mnist`` runs the experiment ``experiments/mnist.py`` first: it trains
  (``cnnvsdnn train`` subprocesses, progress shown) the runs the tables need that are not
  finished yet in ``--runs-dir``, resumes an interrupted one, reuses a finished one with the
  same config, and skips a dataset that cannot be had or a Keras column without Keras.

An experiment file is plain data (see ``experiments/mnist.py``): ``DATASET``, ``RUNS`` (column
label -> ``cnnvsdnn train`` overrides), ``SEEDS``, ``TABLES`` (the study's table numbers),
``PUBLISHED`` and ``NOTES``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cnnvsdnn.errors import CnnvsdnnError, ConfigError, DataError
from cnnvsdnn.train import run_state

__all__ = ["Experiment", "add_arguments", "build_report", "experiments_dir", "find_runs",
           "load_experiment", "prepare_runs", "run"]

SPLITS = (("train", "Training"), ("dev", "Development"), ("test", "Test"))
DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
                  "svhn": "SVHN"}
NA = "n/a"


# ------------------------------------------------------------------------------ experiments
@dataclass
class Experiment:
    """One dataset's runs (column label -> train overrides) and the study's values for them."""

    name: str
    path: Path
    dataset: str
    runs: dict[str, list[str]]
    seeds: list[int] = field(default_factory=lambda: [0])
    tables: dict | None = None
    published: dict | None = None
    notes: list[str] = field(default_factory=list)

    def column_of(self, metrics: dict) -> str | None:
        """The column label whose runs have this metrics.json's model and engine."""
        key = _run_key(metrics.get("model"), metrics.get("engine"), metrics.get("protocol"))
        for label, overrides in self.runs.items():
            if _run_key(*_model_engine(overrides)) == key:
                return label
        return None


def experiments_dir() -> Path | None:
    """Where the experiment files are: inside an installed wheel, else the checkout's."""
    here = Path(__file__).resolve()
    for d in (here.parent / "experiments", here.parents[2] / "experiments"):
        if (d / "mnist.py").is_file():
            return d
    return None


def load_experiment(name: str | Path) -> Experiment:
    """``mnist`` (a file of ``experiments/``) or a path to an experiment ``.py`` file."""
    path = Path(name)
    if path.suffix != ".py":
        d = experiments_dir()
        path = d / f"{name}.py" if d else Path("experiments") / f"{name}.py"
        if not path.is_file():
            known = sorted(p.stem for p in d.glob("*.py") if p.stem != "__init__") if d else []
            raise ConfigError(f"unknown experiment {str(name)!r}; choose one of "
                              f"{', '.join(known) or '(none found)'} or give a .py file")
    if not path.is_file():
        raise ConfigError(f"experiment file {path} does not exist; give an existing .py file")
    spec = importlib.util.spec_from_file_location(f"cnnvsdnn_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as ex:  # a user's file: say which and why, in one line
        raise ConfigError(f"cannot load experiment {path}: {type(ex).__name__}: {ex}") from None
    ns = vars(module)
    missing = [k for k in ("DATASET", "RUNS") if k not in ns]
    if missing:
        raise ConfigError(f"experiment {path} lacks {', '.join(missing)}; see "
                          f"experiments/mnist.py for the layout")
    runs = {str(k): [str(o) for o in v] for k, v in ns["RUNS"].items()}
    return Experiment(name=path.stem, path=path, dataset=str(ns["DATASET"]), runs=runs,
                      seeds=[int(s) for s in ns.get("SEEDS", [0])], tables=ns.get("TABLES"),
                      published=ns.get("PUBLISHED"), notes=list(ns.get("NOTES", [])))


def _default_experiment(dataset: str) -> Experiment | None:
    d = experiments_dir()
    return load_experiment(dataset) if d and (d / f"{dataset}.py").is_file() else None


def _model_engine(overrides: list[str]) -> tuple[str, str, str | None]:
    """(model, engine, keras protocol) that a list of train overrides selects."""
    opts = dict(o.split("=", 1) for o in overrides if "=" in o)
    return opts.get("model", "cnn"), opts.get("engine", "numba"), opts.get("engine.protocol")


def _run_key(model, engine, protocol) -> tuple:
    engine = engine or "numba"
    return (model, engine, (protocol or "study") if engine == "keras" else None)


def _default_label(metrics: dict) -> str:
    model, engine, protocol = _run_key(metrics.get("model"), metrics.get("engine"),
                                       metrics.get("protocol"))
    if engine == "numba":
        return model.upper()
    name = engine.capitalize() if model == "cnn" else f"{engine.capitalize()} {model}"
    return name if protocol in (None, "study") else f"{name} ({protocol})"


# ------------------------------------------------------------------------------ training
def _keras_missing() -> str | None:
    for mod in ("keras", "tensorflow"):
        if importlib.util.find_spec(mod) is None:
            return mod
    return None


def _run_dir_name(dataset_dir: Path, overrides: list[str], seed: int, taken: set) -> Path:
    model, engine, protocol = _model_engine(overrides)
    stem = f"{engine}_{model}" + (f"_{protocol}" if protocol not in (None, "study") else "")
    d = dataset_dir / f"{stem}_seed{seed}"
    if d in taken:
        raise ConfigError(f"two columns of the experiment would train into {d} (same model and "
                          f"engine); give them different models or engines")
    taken.add(d)
    return d


def _hydra_value(path: Path) -> str:
    s = str(path)
    return s if re.fullmatch(r"[\w/.\-]+", s) else "'" + s.replace("'", "\\'") + "'"


def prepare_runs(exp: Experiment, runs_dir: Path, seeds: list[int] | None = None,
                 train: bool = True) -> tuple[list[Path], list[str], list[str]]:
    """Train what the experiment lacks (see the module docstring).

    Returns (finished run directories, notes for the report, failures)."""
    from omegaconf import OmegaConf

    from cnnvsdnn.cli import compose_config

    seeds = exp.seeds if seeds is None else seeds
    runs_dir = Path(runs_dir).resolve() / exp.dataset
    done: list[Path] = []
    todo: list[tuple[str, int, list[str], Path, str]] = []
    notes: list[str] = []
    taken: set = set()
    first_cfg = None
    for label, overrides in exp.runs.items():
        _, engine, _ = _model_engine(overrides)
        if engine == "keras" and (mod := _keras_missing()):
            notes.append(f"{label}: not trained, `{mod}` is not installed (pip install "
                         f"'cnnvsdnn[reference]'); the column shows {NA}.")
            continue
        for seed in seeds:
            args = [f"dataset={exp.dataset}", *overrides, f"seed={seed}"]
            try:
                cfg = compose_config(args)
            except ConfigError as ex:
                if engine != "keras":
                    raise ConfigError(f"experiment {exp.path}, column {label}: {ex}") from None
                notes.append(f"{label}: not trained ({ex}); the column shows {NA}.")
                break
            run_dir = _run_dir_name(runs_dir, overrides, seed, taken)
            state = run_state(run_dir, OmegaConf.to_yaml(cfg, resolve=True))
            if state == "done":
                print(f"report: {exp.dataset} {label} seed {seed}: reusing {run_dir}", flush=True)
                done.append(run_dir)
            elif train:
                todo.append((label, seed, args, run_dir, state))
                first_cfg = cfg if first_cfg is None else first_cfg
            else:
                notes.append(f"{label} seed {seed}: no finished run in {run_dir} (--no-train).")
    if todo:
        try:  # a dataset that cannot be had is skipped, not a failure
            from cnnvsdnn.data import load_dataset

            load_dataset(exp.dataset, verify=first_cfg.data.verify, mirror=first_cfg.data.mirror,
                         progress=first_cfg.progress)
        except DataError as ex:
            notes.append(f"{len(todo)} run(s) not trained: {exp.dataset} cannot be had ({ex})")
            todo = []
    failures = []
    for i, (label, seed, args, run_dir, state) in enumerate(todo, 1):
        if state == "resume" and _model_engine(args)[1] == "keras":
            # Keras runs keep no checkpoint: an interrupted one starts again from scratch
            print(f"report: {run_dir} is an interrupted Keras run, which cannot be resumed; "
                  f"removing it and training again", flush=True)
            shutil.rmtree(run_dir)
            state = "new"
        verb = "resuming" if state == "resume" else "training"
        print(f"report: [{i}/{len(todo)}] {verb} {exp.dataset} {label} seed {seed} in {run_dir}",
              flush=True)
        cmd = [sys.executable, "-m", "cnnvsdnn", "train", *args,
               f"hydra.run.dir={_hydra_value(run_dir)}"]
        if state == "resume":
            cmd.append("train.resume=true")
        rc = _run_child(cmd)
        if rc in (130, 143):
            raise _Interrupted(f"interrupted while {verb} {run_dir}; run the same command again "
                               f"to resume it", rc)
        if rc != 0:
            failures.append(f"{exp.dataset} {label} seed {seed} (exit {rc}, see {run_dir})")
            notes.append(f"{label} seed {seed}: training failed (exit {rc}).")
        else:
            done.append(run_dir)
    return done, notes, failures


def _run_child(cmd: list[str]) -> int:
    """Run a training subprocess (its progress shows on our terminal). On Ctrl-C the child
    gets the SIGINT too, finishes its step and saves a checkpoint; we wait for that instead
    of killing it (which ``subprocess.run`` would do after 0.25 s)."""
    proc = subprocess.Popen(cmd)
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        return proc.wait()
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, old)


class _Interrupted(CnnvsdnnError):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code


# ------------------------------------------------------------------------------ reading runs
def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories (holding metrics.json) at or under each path, in a stable order."""
    from cnnvsdnn.train import METRICS

    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ConfigError(f"{p} does not exist; give run directories or multirun "
                              f"directories that hold metrics.json files")
        if (p / METRICS).is_file():
            found[p.resolve()] = None
        for m in sorted(p.rglob(METRICS)) if p.is_dir() else []:
            found[m.parent.resolve()] = None
    return list(found)


def _read_metrics(run_dir: Path) -> dict:
    from cnnvsdnn.train import METRICS

    try:
        m = json.loads((run_dir / METRICS).read_text())
        m["splits"]["test"]["f1"]  # noqa: B018 -- the keys the tables need
    except (OSError, ValueError, KeyError, TypeError) as ex:
        raise ConfigError(f"{run_dir / METRICS} is not a run's metrics file ({ex}); remove it "
                          f"or rerun that run") from None
    return m


@dataclass
class Stat:
    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        n = len(values)
        mean = math.fsum(values) / n
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return cls(mean, sd, n)


# ------------------------------------------------------------------------------ tables
@dataclass
class Table:
    """Rows of (row labels, one (ours, published) cell per group); rendered three ways."""

    title: str
    keys: list[str]  # names of the row-label columns, e.g. ["Split"] or ["Class", "Count"]
    groups: list[tuple[str, str]]  # (metric, column label), e.g. ("F1", "DNN")
    rows: list[tuple[list[str], list[tuple[Stat | None, float | None]]]]

    def _group_name(self, metric: str, label: str) -> str:
        return label if len({m for m, _ in self.groups}) == 1 else f"{metric} {label}"

    def markdown(self) -> str:
        head = list(self.keys)
        for metric, label in self.groups:
            head += [self._group_name(metric, label), "study", "Δ"]
        lines = [f"**{self.title}**", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(self.keys) + "---:|" * 3 * len(self.groups)]
        for labels, cells in self.rows:
            out = list(labels)
            for ours, pub in cells:
                out += [_fmt_ours(ours), _fmt(pub), _fmt_diff(ours, pub)]
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
                            _num(ours and ours.sd if ours and ours.n > 1 else None),
                            ours.n if ours else 0, _num(pub), _num(diff)])
        return buf.getvalue()

    def latex(self) -> str:
        """A booktabs ``table`` (\\usepackage{booktabs})."""
        nk, ng = len(self.keys), len(self.groups)
        spec = "l" * nk + " rrr" * ng
        names = [_tex(self._group_name(m, lab)) for m, lab in self.groups]
        top = " & ".join([""] * nk + [f"\\multicolumn{{3}}{{c}}{{{g}}}" for g in names])
        rules = " ".join(f"\\cmidrule(lr){{{nk + 1 + 3 * i}-{nk + 3 + 3 * i}}}"
                         for i in range(ng))
        sub = " & ".join([*map(_tex, self.keys)] + ["ours & study & $\\Delta$"] * ng)
        lines = ["% needs \\usepackage{booktabs}", "\\begin{table}[htbp]", "\\centering",
                 "\\small", f"\\caption{{{_tex(self.title)}}}", f"\\begin{{tabular}}{{{spec}}}",
                 "\\toprule", f"{top} \\\\", rules, f"{sub} \\\\", "\\midrule"]
        for labels, cells in self.rows:
            out = [_tex(x) for x in labels]
            for ours, pub in cells:
                out += [_fmt_ours(ours, tex=True), _fmt(pub), _fmt_diff(ours, pub, tex=True)]
            lines.append(" & ".join(out) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    return NA if x is None else f"{x:.4f}"


def _fmt_ours(s: Stat | None, tex: bool = False) -> str:
    if s is None:
        return NA
    if s.n == 1:
        return f"{s.mean:.4f}"
    return f"{s.mean:.4f} $\\pm$ {s.sd:.4f}" if tex else f"{s.mean:.4f} ± {s.sd:.4f}"


def _fmt_diff(s: Stat | None, pub: float | None, tex: bool = False) -> str:
    if s is None or pub is None:
        return NA
    d = f"{round(s.mean - pub, 4) or 0.0:+.4f}"  # no "-0.0000"
    return d.replace("-", "$-$") if tex else d


def _num(x) -> str:
    return "" if x is None else repr(float(x))


def _tex(s: str) -> str:
    return re.sub(r"([_&%#$])", r"\\\1", s).replace("±", "$\\pm$")


def _published(exp: Experiment | None, key: str, label: str, index=None) -> float | None:
    """A published value, or None when the study has none (another dataset or column)."""
    pub = (exp.published or {}) if exp else {}
    try:
        v = pub[key][label]
        return float(v if index is None else v[index])
    except (KeyError, IndexError, TypeError):
        return None


def accuracy_table(title: str, labels: list[str], runs: dict[str, list[dict]],
                   exp: Experiment | None) -> Table:
    rows = []
    for split, name in SPLITS:
        cells = []
        for label in labels:
            ms = runs.get(label, [])
            ours = Stat.of([m["splits"][split]["accuracy"] for m in ms]) if ms else None
            pub = (_published(exp, "accuracy", label, split))
            cells.append((ours, pub))
        rows.append(([name], cells))
    return Table(title, ["Split"], [("accuracy", lab) for lab in labels], rows)


def class_table(title: str, labels: list[str], runs: dict[str, list[dict]],
                exp: Experiment | None, classes: list[str], counts: list[int], n: int) -> Table:
    groups = [(metric, lab) for metric in ("F1", "AR") for lab in labels]
    rows = []
    for i, cls in enumerate(classes + ["Weighted average"]):
        cells = []
        for metric, label in groups:
            key = metric.lower()
            ms = runs.get(label, [])
            if i < len(classes):
                vals, pub = [m["splits"]["test"][key][i] for m in ms], _published(exp, key,
                                                                                    label, i)
            else:
                vals = [m["splits"]["test"][f"{key}_weighted"] for m in ms]
                pub = _published(exp, f"{key}_weighted", label)
            cells.append((Stat.of(vals) if vals else None, pub))
        rows.append(([cls, str(counts[i] if i < len(classes) else n)], cells))
    return Table(title, ["Class", "Count"], groups, rows)


# ------------------------------------------------------------------------------ the report
def build_report(run_dirs: list[Path], out_dir: Path, experiment: Experiment | None = None,
                 notes: list[str] | None = None) -> dict[str, Path]:
    """Write the tables and figures of every dataset in ``run_dirs``; returns dataset -> dir."""
    from cnnvsdnn.data import DATASETS

    if not run_dirs:
        raise ConfigError("no finished runs (metrics.json) found; train some first "
                          "(`cnnvsdnn train`), or use `cnnvsdnn report --experiment mnist`")
    by_dataset: dict[str, list[tuple[Path, dict]]] = {}
    for d in run_dirs:
        m = _read_metrics(d)
        by_dataset.setdefault(m["dataset"], []).append((d, m))
    written = {}
    for dataset, runs in by_dataset.items():
        exp = experiment if experiment and experiment.dataset == dataset else \
            _default_experiment(dataset)
        info = DATASETS.get(dataset)
        classes = list(info.classes) if info else [str(i) for i in
                                                   range(len(runs[0][1]["splits"]["test"]["f1"]))]
        written[dataset] = _write_dataset(dataset, runs, Path(out_dir) / dataset, exp, classes,
                                          list(notes or []))
    return written


def _write_dataset(dataset: str, runs: list[tuple[Path, dict]], out: Path,
                   exp: Experiment | None, classes: list[str], notes: list[str]) -> Path:
    from cnnvsdnn.plots import plot_f1_comparison, plot_training
    from cnnvsdnn.runlog import read_log

    out.mkdir(parents=True, exist_ok=True)
    name = DATASET_TITLES.get(dataset, dataset)
    grouped: dict[str, list[tuple[Path, dict]]] = {}
    for d, m in sorted(runs, key=lambda r: (r[1].get("seed", 0), str(r[0]))):
        label = (exp.column_of(m) if exp else None) or _default_label(m)
        grouped.setdefault(label, []).append((d, m))
    labels = list(exp.runs) if exp else []
    labels += [lab for lab in grouped if lab not in labels]
    metrics = {lab: [m for _, m in grouped.get(lab, [])] for lab in labels}

    tables = (exp.tables or {}) if exp else {}
    t_acc = f"Table {tables['accuracy']} ({name})" if "accuracy" in tables else name
    t_cls = f"Table {tables['classes']} ({name})" if "classes" in tables else name
    first = next(m for ms in metrics.values() for m in ms)
    test = first["splits"]["test"]
    acc = accuracy_table(f"{t_acc}: accuracy on the training, development and test splits",
                         labels, metrics, exp)
    cls = class_table(f"{t_cls}: test set per class, F1 score and area ratio (AR), weighted "
                      f"averages last", labels, metrics, exp, classes, test["count"], test["n"])
    for table, stem in ((acc, "accuracy"), (cls, "per_class")):
        (out / f"{stem}.md").write_text(table.markdown())
        (out / f"{stem}.csv").write_text(table.csv())
        (out / f"{stem}.tex").write_text(table.latex())

    # figures 8-16: one per run; then per-class F1 of every column with runs
    figures = []
    for label in labels:
        for d, m in grouped.get(label, []):
            png = out / f"training_{m.get('engine', 'numba')}_{m['model']}_seed{m['seed']}.png"
            if png in figures:  # two runs of one model and seed (e.g. other steps)
                png = png.with_name(f"{png.stem}_{d.name}.png")
            if (d / "log.h5").is_file():
                steps = f", {m['steps']} steps" if m.get("steps") else ""
                plot_training(read_log(d / "log.h5"), png,
                              f"{name}, {label}: {m['engine']} {m['model']}, seed {m['seed']}"
                              f"{steps}")
                figures.append(png)
            else:
                notes.append(f"{d}: no log.h5, so no training figure.")
    f1 = {lab: [Stat.of(list(v)).mean for v in zip(*(m["splits"]["test"]["f1"] for m in ms))]
          for lab, ms in metrics.items() if ms}
    f1_png = plot_f1_comparison(f1, classes, out / "f1_per_class.png",
                                f"{name}: per-class F1 on the test set")
    figures.append(f1_png)

    # notes: what the numbers are, where they come from, what is missing
    pub_count = (exp.published or {}).get("count") if exp else None
    if pub_count and list(pub_count) != list(test["count"]):
        notes.append(f"Our test counts {test['count']} differ from the study's {pub_count}.")
    for label, ms in metrics.items():
        if not ms and not any(n.startswith(f"{label}:") for n in notes):
            notes.append(f"{label}: no finished run; shown as {NA}.")
        elif len(ms) > 1:
            seeds = [m["seed"] for m in ms]
            notes.append(f"{label}: mean ± sd (sample sd) over {len(ms)} runs, seeds {seeds}.")
            if len(set(seeds)) < len(seeds):
                notes.append(f"{label}: several runs share a seed; they are averaged anyway.")
        if len({m.get("steps") for m in ms}) > 1:
            notes.append(f"{label}: the runs differ in steps {sorted({m['steps'] for m in ms})}.")
    if exp and not exp.published:
        notes.append("No published values for this dataset: the study columns show n/a.")
    notes += (exp.notes if exp else [])
    run_lines = [f"- {lab}: " + ", ".join(f"`{d}` ({m['steps']} steps)" for d, m in grouped[lab])
                 for lab in labels if grouped.get(lab)]
    fig_lines = [f"![{p.stem}]({p.name})" for p in figures]
    report = (f"# {name}: the study's tables beside ours\n\n"
              "Ours, the study's published value (study) and the difference (Δ = ours − "
              "study).\n\n" + acc.markdown() + "\n" + cls.markdown() + "\n" +
              ("## Notes\n\n" + "\n".join(f"- {n}" for n in dict.fromkeys(notes)) + "\n\n"
               if notes else "") +
              "## Runs\n\n" + "\n".join(run_lines) + "\n\n## Figures\n\n" +
              "\n\n".join(fig_lines) + "\n")
    (out / "report.md").write_text(report)
    print(f"\n{acc.markdown()}\n{cls.markdown()}")
    for n in dict.fromkeys(notes):
        print(f"note: {n}")
    print(f"report: wrote {out}/ (report.md, accuracy and per_class .md/.csv/.tex, "
          f"{len(figures)} figures)", flush=True)
    return out


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
    extra = find_runs(ns.run_dirs) if ns.run_dirs else []
    if ns.run_dirs and not extra:
        raise ConfigError(f"no finished runs (metrics.json) under {', '.join(ns.run_dirs)}; "
                          f"train some first (`cnnvsdnn train`) or point at run directories")
    failures = []
    for name in ns.experiment:
        exp = load_experiment(name)
        done, notes, failed = prepare_runs(exp, Path(ns.runs_dir), seeds, train=not ns.no_train)
        failures += failed
        mine = [d for d in extra if _read_metrics(d)["dataset"] == exp.dataset]
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
