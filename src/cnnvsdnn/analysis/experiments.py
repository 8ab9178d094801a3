"""Experiment files (``experiments/<dataset>.py``): which runs each of the study's tables
needs and the values the study published.

An experiment file is plain data (see ``experiments/mnist.py``): ``DATASET``, ``RUNS`` (column
label -> ``cnnvsdnn train`` overrides), ``SEEDS``, ``TABLES`` (the study's table numbers),
``PUBLISHED`` and ``NOTES``; optionally

- ``PROTOCOLS``: the protocols (``conf/protocol/``) each column is trained under, shown side by
  side (default ``["corrected"]``);
- ``ATTRIBUTION``: how the report's "why they differ" section measures each switch of the
  study's protocol alone, paired over seeds: ``"add"`` (corrected + the switch against
  corrected), ``"remove"`` (study against study without the switch), both, or none (default);
- ``EXPLAINED``: {column: {split: why}} for published values no run can reproduce (a misprint).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

ATTRIBUTION_DESIGNS = ("add", "remove")  # corrected + switch; study − switch


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
    protocols: list[str] = field(default_factory=lambda: ["corrected"])
    attribution: list[str] = field(default_factory=list)
    explained: dict = field(default_factory=dict)

    def column_of(self, metrics: dict) -> str | None:
        """The column label whose runs have this metrics.json's model and engine."""
        key = run_key(metrics.get("model"), metrics.get("engine"), metrics.get("protocol"))
        for label, overrides in self.runs.items():
            if run_key(*model_engine(overrides)) == key:
                return label
        return None


def experiments_dir() -> Path | None:
    """Where the experiment files are: inside an installed wheel, else the checkout's."""
    package = Path(__file__).resolve().parent.parent
    for d in (package / "experiments", package.parents[1] / "experiments"):
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
            known = sorted(p.stem for p in d.glob("*.py") if p.stem not in ("__init__",
                                                                            "ablation")) \
                if d else []
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
    protocols = [str(p) for p in ns.get("PROTOCOLS", ["corrected"])]
    attribution = [str(a) for a in ns.get("ATTRIBUTION", [])]
    bad = [a for a in attribution if a not in ATTRIBUTION_DESIGNS]
    if bad or (attribution and not {"corrected", "study"} <= set(protocols)):
        raise ConfigError(f"experiment {path}: ATTRIBUTION takes "
                          f"{' and '.join(map(repr, ATTRIBUTION_DESIGNS))} and needs "
                          f"PROTOCOLS = ['corrected', 'study']")
    return Experiment(name=path.stem, path=path, dataset=str(ns["DATASET"]), runs=runs,
                      seeds=[int(s) for s in ns.get("SEEDS", [0])], tables=ns.get("TABLES"),
                      published=ns.get("PUBLISHED"), notes=list(ns.get("NOTES", [])),
                      protocols=protocols, attribution=attribution,
                      explained=dict(ns.get("EXPLAINED") or {}))


def default_experiment(dataset: str) -> Experiment | None:
    """The shipped experiment of a dataset, if there is one."""
    d = experiments_dir()
    return load_experiment(dataset) if d and (d / f"{dataset}.py").is_file() else None


def model_engine(overrides: list[str]) -> tuple[str, str, str | None]:
    """(model, engine, keras protocol) that a list of train overrides selects."""
    opts = dict(o.split("=", 1) for o in overrides if "=" in o)
    return opts.get("model", "cnn"), opts.get("engine", "numba"), opts.get("engine.protocol")


def run_key(model, engine, protocol) -> tuple:
    engine = engine or "numba"
    return (model, engine, (protocol or "study") if engine == "keras" else None)


def default_label(metrics: dict) -> str:
    """A column label for a run no experiment names: DNN, CNN, Keras, "Keras dnn (ours)"."""
    model, engine, protocol = run_key(metrics.get("model"), metrics.get("engine"),
                                      metrics.get("protocol"))
    if engine == "numba":
        return model.upper()
    name = engine.capitalize() if model == "cnn" else f"{engine.capitalize()} {model}"
    return name if protocol in (None, "study") else f"{name} ({protocol})"
