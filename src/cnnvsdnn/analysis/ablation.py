"""The study's section 5.10 ablation in our engine: what each change to its CNN is worth.

    cnnvsdnn ablation mnist [--seeds 0,1,2,3,4] [-- TRAIN_OVERRIDES...]

(``make ablation-mnist``). The study tried these changes only in Keras, one run each; here every
variant is trained with several seeds and compared with the study's CNN seed by seed:

- filters 3 (``cnn``), 8, 16, 32 (``cnn8`` ... ``cnn32``);
- a 2×2 max-pooling after the conv layer (``cnn_pool``);
- a second conv layer, with pooling (``cnn_deep``);
- ELU instead of ReLU (``cnn_elu``).

Runs live in ``--runs-dir/<dataset>/<engine>_<model>_seed<seed>/`` (default
``outputs/sweeps``). A finished run with the same config is reused, an interrupted one is
resumed, the rest are trained as Hydra multiruns into that directory, so
``-- hydra/launcher=joblib hydra.launcher.n_jobs=2`` runs them in parallel (engine threads are
divided among the jobs). The table (``ablation.md``, ``.csv``) and the figure
(``ablation.png``) go to ``--out/<dataset>/`` (default ``outputs/ablation``), with the full
``cnnvsdnn summarize`` output beside them. A dataset that cannot be had is skipped (exit 0).

The same machinery compares any models over seeds, e.g. the study's question, DNN against CNN:

    cnnvsdnn ablation mnist --models dnn,cnn --baseline dnn --out outputs/seeds
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..evaluation.stats import fmt_p
from ..evaluation.tables import markdown_table, print_rows, write_csv
from ..run.files import PARAMS
from ..safe_io import check_output_dir, write_text
from . import summarize as S
from .plan import Point, plan, train_sweep, unavailable

BASELINE = "cnn"
# model config -> what it changes in the study's CNN (conf/model/<name>.yaml has the layers)
VARIANTS = {
    "cnn": "the study's CNN: conv 3 filters 3×3, ReLU, no pooling",
    "cnn8": "8 filters",
    "cnn16": "16 filters",
    "cnn32": "32 filters",
    "cnn_pool": "+ max-pool 2×2 after the conv",
    "cnn_deep": "conv 5@5×5, pool, conv 3@3×3, pool",
    "cnn_elu": "ELU instead of ReLU",
}
OTHERS = {"dnn": "the study's dense net: 128-128-64, ReLU", "dnn_elu": "the dense net with ELU"}
SUBDIR = "${engine.name}_${model.name}_seed${seed}"


def points(dataset: str, models: list[str], seeds: list[int], runs_dir: Path,
           overrides: list[str]) -> list[Point]:
    """The ablation's runs: RUNS_DIR/<engine>_<model>_seed<seed>, each with its state."""
    out = []
    engine = dict(o.split("=", 1) for o in overrides if "=" in o).get("engine", "numba")
    for model in models:
        for seed in seeds:
            args = [f"dataset={dataset}", f"model={model}", f"seed={seed}", *overrides]
            out.append(Point(model, dataset, args, seed,
                             runs_dir / f"{engine}_{model}_seed{seed}"))
    return plan(out)


def _say(message: str) -> None:
    print(f"ablation: {message}", flush=True)


def _n_params(run_dir: Path) -> int | None:
    try:
        with np.load(run_dir / PARAMS) as f:
            return int(f["params"].size)
    except (OSError, KeyError, ValueError):
        return None


def ablation_rows(summary, dataset: str, models: list[str], run_dirs: dict,
                  baseline: str = BASELINE) -> list[list[str]]:
    """The ablation table as strings (header first): one row per model of one engine."""
    head = ["model", "change", "params", "seeds", "test accuracy", f"Δ vs {baseline} [95% CI]",
            "paired t p", "better", "F1 (weighted)", "AR (weighted)", "s/run"]
    rows = [head]
    groups = {g.model: g for g in summary.groups if g.dataset == dataset}
    pairs = {p.b: p for p in summary.pairs if p.metric == "accuracy" and p.a == baseline}
    for m in models:
        g = groups.get(m)
        if g is None:
            continue
        p = pairs.get(m)
        delta = (f"{p.diff.mean:+.4f} {p.diff.ci(sign=True)}" if p else "—")
        rows.append([m, VARIANTS.get(m) or OTHERS.get(m, ""), f"{_n_params(run_dirs[m]) or 'n/a'}",
                     str(len(g.seeds)), g.stats["accuracy"].pm(), delta,
                     fmt_p(p.p_ttest) if p else "—", f"{p.b_better}/{p.diff.n}" if p else "—",
                     g.stats["f1_weighted"].pm(), g.stats["ar_weighted"].pm(),
                     f"{g.seconds.mean:.0f}" if g.seconds else "n/a"])
    return rows


def write_ablation(dataset: str, models: list[str], run_dirs: list[Path], out: Path,
                   baseline: str = BASELINE):
    runs = S.load_runs(run_dirs)
    summary = S.summarize(runs, pairs=[(baseline, m) for m in models if m != baseline],
                          roots=[str(out)])
    files = S.write_outputs(summary, out)
    any_run = {r.model: r.path for r in runs}
    rows = ablation_rows(summary, dataset, models, any_run, baseline)
    seeds = sorted({len(g.seeds) for g in summary.groups})
    title = (f"Ablation of the study's CNN on {dataset} (section 5.10, our engine)"
             if baseline == BASELINE else f"{', '.join(models)} on {dataset}")
    md = [f"# {title}", "",
          f"Test split; mean ± sample sd over {'/'.join(map(str, seeds))} seeds. Δ is the "
          f"paired difference to `{baseline}` (same seeds), with its 95% t interval, the paired "
          f"t-test p and the seeds where the variant is better. s/run: wall time per run.", "",
          markdown_table(rows)]
    write_text(out / "ablation.md", "\n".join(md))
    write_csv(out / "ablation.csv", rows[0], rows[1:])
    S.figure(summary, out / "ablation.png", title=f"{title}: mean, 95% t interval; dots: seeds")
    print_rows(f"{title}, test split", rows)
    return [out / "ablation.md", out / "ablation.csv", out / "ablation.png", *files], rows


def _seeds(text: str) -> list[int]:
    try:
        out = []
        for part in text.split(","):
            a, _, b = part.partition("-")
            out += list(range(int(a), int(b) + 1)) if b else [int(a)]
        return out
    except ValueError:
        raise ConfigError(f"--seeds {text!r} is not like 0,1,2 or 0-4") from None


def add_arguments(ap) -> None:
    """The arguments of ``cnnvsdnn ablation`` (the CLI wires them to :func:`run`)."""
    ap.add_argument("dataset", nargs="?", default="mnist")
    ap.add_argument("--seeds", default="0-4", help="e.g. 0,1,2 or 0-4 (default 0-4)")
    ap.add_argument("--models", default=",".join(VARIANTS),
                    help=f"model configs (default {','.join(VARIANTS)})")
    ap.add_argument("--baseline", default=BASELINE,
                    help=f"the model the others are compared with (default {BASELINE})")
    ap.add_argument("--runs-dir", default="outputs/sweeps", type=Path,
                    help="runs go to RUNS_DIR/<dataset>/ (default outputs/sweeps)")
    ap.add_argument("--out", default="outputs/ablation", type=Path,
                    help="tables and figure go to OUT/<dataset>/ (default outputs/ablation)")
    ap.add_argument("--no-train", action="store_true", help="only tabulate finished runs")
    # `-- OVERRIDES...` (cnnvsdnn train overrides for every run) is split off by the CLI


def run(ns) -> int:
    """``cnnvsdnn ablation``: see the module docstring."""
    models = [m for m in ns.models.split(",") if m]
    seeds = _seeds(ns.seeds)
    overrides = list(getattr(ns, "overrides", []))
    check_output_dir(ns.out)
    runs_dir = (ns.runs_dir / ns.dataset).resolve()
    planned = points(ns.dataset, models, seeds, runs_dir, overrides)
    todo = [p for p in planned if p.state != "done"]
    _say(f"{ns.dataset}: {len(planned) - len(todo)} finished runs reused, {len(todo)} to "
         f"train")
    if todo and not ns.no_train:
        if why := unavailable(todo[0].overrides):  # fetch or fail before any run
            print(f"ablation: skipping {ns.dataset}: {why}", file=sys.stderr)
            return 0
        train_sweep(todo, runs_dir, SUBDIR, overrides, say=_say)
        planned = points(ns.dataset, models, seeds, runs_dir, overrides)
    done = [p.run_dir for p in planned if p.state == "done"]
    if not done:
        raise ConfigError(f"no finished ablation runs for {ns.dataset} in {runs_dir}")
    files, rows = write_ablation(ns.dataset, models, done, ns.out / ns.dataset, ns.baseline)
    print(f"ablation: wrote {', '.join(map(str, files))}")
    if len(done) < len(models) * len(seeds):
        print(f"ablation: {len(models) * len(seeds) - len(done)} runs still missing",
              file=sys.stderr)
    return 0
