"""Sweeps through Hydra's launcher plugins: joblib (two loky workers) and submitit (local), with
the engine threads divided among parallel jobs; the SLURM preset; the ablation's reuse of runs.

The joblib sweep is shared with tests/test_summarize.py (one sweep per test session)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numba
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from cnnvsdnn.analysis import ablation
from cnnvsdnn.cli import main
from cnnvsdnn.config import conf_dir, register_schemas
from cnnvsdnn.errors import ConfigError
from cnnvsdnn.run import cpus as parallel
from tests.conftest import TINY, run_cli

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

MODELS, SEEDS = ("dnn", "cnn"), (0, 1, 2)
# TINY, but shorter (so that seeds differ: 30 steps learn the synthetic digits perfectly) and
# asking for 2 engine threads: two parallel jobs on this machine must get fewer.
SWEEP_ARGS = [a for a in TINY if not a.startswith(("engine.threads", "train.steps",
                                                    "train.eval_every"))]
SWEEP_ARGS += ["train.steps=10", "train.eval_every=5", "engine.threads=2"]
ABLATION_SUBDIR = "${engine.name}_${model.name}_seed${seed}"  # experiments/ablation.py's layout
_SWEEP: dict = {}


def cli_env(data_dir: Path) -> dict:
    env = dict(os.environ, CNNVSDNN_DATA_DIR=str(data_dir))
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def joblib_sweep(tmp_path_factory, data_dir) -> Path:
    """Once per session: dnn,cnn x seeds 0,1,2 on synthetic MNIST with 2 joblib workers, laid
    out as experiments/ablation.py lays out its runs (<root>/mnist/<engine>_<model>_seed<n>)."""
    if "dir" not in _SWEEP:
        root = tmp_path_factory.mktemp("sweeps")
        res = run_cli(["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                       f"model={','.join(MODELS)}", f"seed={','.join(map(str, SEEDS))}",
                       *SWEEP_ARGS, f"hydra.sweep.dir={root / 'mnist'}",
                       f"hydra.sweep.subdir={ABLATION_SUBDIR}"], cli_env(data_dir))
        _SWEEP.update(dir=root / "mnist", result=res)
    res = _SWEEP["result"]
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    return _SWEEP["dir"]


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory, data_dir) -> Path:
    return joblib_sweep(tmp_path_factory, data_dir)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_joblib_sweep_runs_every_point_with_divided_threads(sweep_dir):
    runs = {(m, s): sweep_dir / f"numba_{m}_seed{s}" for m in MODELS for s in SEEDS}
    for (model, seed), d in runs.items():
        m = _metrics(d)
        assert (m["model"], m["seed"]) == (model, seed)
        # 2 jobs at once on this machine: each gets at most half the CPUs, not the 2 asked for
        assert m["threads"] == max(1, min(2, parallel.available_cpus() // 2))
        hydra_yaml = (d / ".hydra" / "hydra.yaml").read_text()
        assert "JoblibLauncher" in hydra_yaml and "n_jobs: 2" in hydra_yaml
    assert len({json.dumps(_metrics(d)["splits"]) for d in runs.values()}) == len(runs)


def test_joblib_result_equals_a_sequential_run(sweep_dir, data_env, tmp_path):
    """A run in a loky worker gives the numbers the same config gives in a plain run."""
    threads = _metrics(sweep_dir / "numba_cnn_seed1")["threads"]
    args = [a for a in SWEEP_ARGS if not a.startswith("engine.threads")]
    res = run_cli(["train", "model=cnn", "seed=1", *args, f"engine.threads={threads}",
                   f"hydra.run.dir={tmp_path / 'plain'}"], data_env)
    assert res.returncode == 0, res.stderr
    assert _metrics(tmp_path / "plain")["splits"] == _metrics(sweep_dir / "numba_cnn_seed1")[
        "splits"]


def test_submitit_local_sweep_gives_each_job_its_cpus(data_env, tmp_path):
    out = tmp_path / "multirun"
    res = run_cli(["train", "-m", "hydra/launcher=submitit_local",
                   "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5",
                   "model=dnn", "seed=3", *SWEEP_ARGS, f"hydra.sweep.dir={out}"], data_env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    [run] = [f.parent for f in out.glob("*/metrics.json")]
    m = _metrics(run)
    assert (m["model"], m["seed"], m["steps"]) == ("dnn", 3, 10)
    assert m["threads"] == 1  # cpus_per_task=1, although engine.threads=2
    assert list((out / ".submitit").glob("*/*_result.pkl"))  # the job went through submitit


# --------------------------------------------------------------------- effective_threads
@pytest.fixture()
def hydra_job(monkeypatch):
    """Set HydraConfig as a launcher sets it in a job; a machine of 8 CPUs."""
    monkeypatch.setattr(parallel, "available_cpus", lambda: 8)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 8)

    def start(*overrides):
        register_schemas()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield start
    HydraConfig.instance().cfg = None
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("overrides, expected", [
    (["engine.threads=2"], 2),  # basic launcher: one job at a time
    (["engine.threads=0"], 8),  # 0 = all cores
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "engine.threads=0"], 4),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "engine.threads=2"], 2),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "engine.threads=2"], 2),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=8", "engine.threads=2"], 1),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=-1", "engine.threads=2"], 1),  # all CPUs
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=-3", "engine.threads=0"], 1),  # 6 jobs
    (["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=3", "engine.threads=0"], 3),
])
def test_effective_threads_divides_the_cpus(hydra_job, overrides, expected):
    assert parallel.effective_threads(hydra_job(*overrides)) == expected


def test_effective_threads_outside_hydra_and_within_numba_limit(monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.setattr(parallel, "available_cpus", lambda: 8)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 3)  # as loky sets it in a worker
    cfg = OmegaConf.create({"engine": {"threads": 0}})
    assert parallel.effective_threads(cfg) == 3
    cfg.engine.threads = 2
    assert parallel.effective_threads(cfg) == 2


def test_slurm_preset_sets_the_submitit_slurm_launcher(hydra_job):
    cfg = hydra_job("hydra/launcher=slurm", "hydra.launcher.partition=cpu")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.cpus_per_task, launcher.timeout_min) == ("cpu", 2, 120)
    assert parallel.effective_threads(cfg) == 2  # a job uses the cores it asked SLURM for


# --------------------------------------------------------------------------- the ablation
def _plan(*args):
    """The ablation's plan as {state: [(model, seed, run_dir)]}."""
    states = {"done": [], "resume": [], "new": []}
    for p in ablation.points(*args):
        states[p.state].append((p.label, p.seed, p.run_dir))
    return states


def test_ablation_reuses_finished_runs_and_resumes_interrupted_ones(sweep_dir, data_env,
                                                                    tmp_path):
    states = _plan("mnist", ["cnn", "dnn"], [0, 1, 2, 3], sweep_dir, SWEEP_ARGS)
    assert sorted((m, s) for m, s, _ in states["done"]) == [(m, s) for m in ("cnn", "dnn")
                                                             for s in SEEDS]
    assert [(m, s) for m, s, _ in states["new"]] == [("cnn", 3), ("dnn", 3)]
    # thread count and progress do not make a run different; another step count does
    assert len(_plan("mnist", ["cnn"], [0], sweep_dir,
                       [*SWEEP_ARGS, "engine.threads=1", "progress=true"])["done"]) == 1
    with pytest.raises(ConfigError, match="train.steps differ"):
        _plan("mnist", ["cnn"], [0], sweep_dir, [*SWEEP_ARGS, "train.steps=20"])
    # an interrupted run (log and config, no metrics) is resumed, not retrained
    broken = tmp_path / "mnist" / "numba_cnn_seed0"
    broken.mkdir(parents=True)
    for f in ("config.yaml", "log.h5"):
        (broken / f).write_bytes((sweep_dir / "numba_cnn_seed0" / f).read_bytes())
    assert _plan("mnist", ["cnn"], [0], tmp_path / "mnist", SWEEP_ARGS)["resume"]


def test_ablation_table_from_finished_runs(sweep_dir, data_env, tmp_path):
    rc = main(["ablation", "mnist", "--models", "cnn,dnn", "--seeds", "0-2", "--no-train",
                  "--runs-dir", str(sweep_dir.parent), "--out", str(tmp_path), "--",
                  *SWEEP_ARGS])
    assert rc == 0
    out = tmp_path / "mnist"
    table = (out / "ablation.md").read_text()
    acc = {m: [_metrics(sweep_dir / f"numba_{m}_seed{s}")["splits"]["test"]["accuracy"]
               for s in SEEDS] for m in ("cnn", "dnn")}
    diff = sum(d - c for c, d in zip(acc["cnn"], acc["dnn"])) / len(SEEDS)
    assert "| dnn | " in table and f"{diff:+.4f}" in table
    assert (out / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "summary.csv").is_file()
