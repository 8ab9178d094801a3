"""Sweeps through Hydra's launcher plugins: joblib (two loky workers) and submitit (local), with
the engine threads divided among parallel jobs; the SLURM preset; the ablation's reuse of runs.

The joblib sweep is shared with tests/test_summarize.py (one sweep per test session)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numba
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from cnnvsdnn.analysis import ablation
from cnnvsdnn.cli import main
from cnnvsdnn.cli import sweep as sweep_cli
from cnnvsdnn.cli.train import _precheck as precheck
from cnnvsdnn.config import conf_dir, register_schemas
from cnnvsdnn.errors import ConfigError
from cnnvsdnn.run import cpus as parallel
from cnnvsdnn.run.log import read_log
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
    """...and a point that fails in its job is a line and a state, not the end of the sweep."""
    out = tmp_path / "multirun"
    res = run_cli(["train", "-m", "hydra/launcher=submitit_local",
                   "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5",
                   "dataset=svhn,mnist", "model=dnn", "seed=3", *SWEEP_ARGS,
                   f"hydra.sweep.dir={out}"], offline(data_env))
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr
    [error] = _error_lines(res)
    job = json.loads((out / "sweep.json").read_text())["points"][0]["job_id"]
    assert f"point 0 (dataset=svhn, job {job}) failed: svhn: cannot get" in error
    [run] = [f.parent for f in out.glob("*/metrics.json")]
    m = _metrics(run)
    assert (m["model"], m["seed"], m["steps"]) == ("dnn", 3, 10)
    assert m["threads"] == 1  # cpus_per_task=1, although engine.threads=2
    assert len(list((out / ".submitit").glob("*/*_result.pkl"))) == 2  # both went through submitit


# ------------------------------------------------------------------ failures and resumes
OFFLINE_PROXY = "http://127.0.0.1:9"  # nothing listens there: a dataset host cannot be reached


def offline(env: dict) -> dict:
    """No dataset host reachable: svhn (not in the synthetic cache) cannot be had."""
    return dict(env, http_proxy=OFFLINE_PROXY, https_proxy=OFFLINE_PROXY, no_proxy="")


def _error_lines(res) -> list[str]:
    assert "Traceback" not in res.stderr, res.stderr
    return [ln for ln in res.stderr.splitlines() if ln.startswith("cnnvsdnn: error:")]


def _states(sweep: Path) -> list[str]:
    return [p["state"] for p in json.loads((sweep / "sweep.json").read_text())["points"]]


def test_failed_point_is_one_line_the_others_complete_and_the_sweep_resumes(data_env, tmp_path,
                                                                            capsys):
    """Basic launcher: the first point fails (its dataset cannot be had), the second still runs;
    one error line, a table, exit 1. Re-running with train.resume=true keeps the finished point
    (not even launched) and tries the failed one again; without it, nothing is touched."""
    env = offline(data_env)
    sweep = tmp_path / "sweep"
    args = ["train", "-m", "dataset=svhn,mnist", *SWEEP_ARGS, f"hydra.sweep.dir={sweep}"]
    res = run_cli(args, env)
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr
    [error] = _error_lines(res)
    assert error.startswith("cnnvsdnn: error: point 0 (dataset=svhn) failed: svhn: cannot get")
    done = sweep / "1_mnist_cnn_numba_seed0"
    assert _metrics(done)["dataset"] == "mnist"
    assert _states(sweep) == ["failed", "done"]
    for word in ("failed", "done", str(done), "train.resume=true"):
        assert word in res.stdout

    # summarize names the point that has no result
    assert main(["summarize", str(sweep), "--pair", "none"]) == 0
    err = capsys.readouterr().err
    assert "no result, left out" in err and "0_svhn_cnn_numba_seed0 (failed: svhn" in err

    stamp = (done / "metrics.json").stat().st_mtime_ns
    res = run_cli([*args, "train.resume=true"], env)
    assert res.returncode == 1 and len(_error_lines(res)) == 1
    assert "done (kept)" in res.stdout and "#1 :" not in res.stdout  # not launched again
    assert (done / "metrics.json").stat().st_mtime_ns == stamp
    assert _states(sweep) == ["failed", "done"]

    multirun = (sweep / "multirun.yaml").read_text()
    res = run_cli(args, env)  # no train.resume: refused before Hydra writes anything
    assert res.returncode == 2 and "1 of the sweep's 2 points already hold a run" in res.stderr
    assert (sweep / "multirun.yaml").read_text() == multirun
    with pytest.raises(ConfigError, match=r"sweep point 1 \(dataset=mnist\): .* another config "
                                          r"\(train.batch_size differ\)"):
        precheck([*args[2:], "train.resume=true", "train.batch_size=16"], multirun=True)


@pytest.mark.slow
def test_joblib_sweep_reports_a_failed_point(data_env, tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli(["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   "dataset=mnist,svhn", *SWEEP_ARGS, f"hydra.sweep.dir={sweep}"],
                  offline(data_env))
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr
    [error] = _error_lines(res)
    assert "point 1 (dataset=svhn) failed" in error
    assert _states(sweep) == ["done", "failed"]


@pytest.mark.slow
def test_interrupted_sweep_stops_and_resumes_where_it_stopped(data_env, tmp_path):
    """Ctrl-C in a sweep run by the command itself stops it (130) with the table; the resumed
    sweep continues the interrupted point from its checkpoint and runs the one never started."""
    sweep = tmp_path / "sweep"
    args = ["train", "-m", "model=dnn", "seed=0,1", *SWEEP_ARGS, "train.steps=2000",
            "train.eval_every=50", "train.checkpoint_every=50", "engine.threads=1",
            f"hydra.sweep.dir={sweep}"]
    exe = Path(sys.executable).with_name("cnnvsdnn")
    proc = subprocess.Popen([str(exe), *args], env=data_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = sweep / "0_mnist_dnn_numba_seed0"
    deadline = time.monotonic() + 120
    while not (first / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGINT at step" in err and "Traceback" not in err
    assert _states(sweep) == ["interrupted", "not run"]
    assert "interrupted" in out and "not run" in out
    res = run_cli([*args, "train.resume=true"], data_env)
    assert res.returncode == 0, res.stderr
    assert _states(sweep) == ["done", "done"]
    steps = read_log(first / "log.h5")["train"]["step"]
    assert list(steps) == list(range(1, 2001))


def test_precheck_refuses_points_that_share_a_run_directory(tmp_path):
    with pytest.raises(ConfigError, match="sweep points 0 and 1 would share the run directory"):
        precheck(["seed=0,1", f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=same"],
                 multirun=True)
    assert not tmp_path.joinpath("same").exists()


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
    assert (launcher.partition, launcher.cpus_per_task, launcher.timeout_min) == ("cpu", 2, 60)
    # small nodes: 2 GB covers the largest run measured (SVHN with Keras, 1.2 GB); no requeue
    assert (launcher.mem_gb, launcher.name, launcher.max_num_timeout) == (2, "cnnvsdnn", 0)
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


def test_time_limit_signal_before_the_loop_reaches_the_loop(monkeypatch):
    """In a submitit job, a SIGUSR2 that comes before ``train`` listens is sent again once it
    does, instead of going to submitit's handler, which would raise wherever the job is."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    got = []
    before = signal.getsignal(signal.SIGUSR2)
    with sweep_cli._time_limit_warning():
        os.kill(os.getpid(), signal.SIGUSR2)  # while the data load, say
        time.sleep(0.3)
        assert not got
        old = signal.signal(signal.SIGUSR2, lambda s, f: got.append(s))  # train() starts
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.signal(signal.SIGUSR2, old)  # train() returns
        os.kill(os.getpid(), signal.SIGUSR2)  # while the results are written: only noted
        time.sleep(0.3)
    assert got == [signal.SIGUSR2]
    assert signal.getsignal(signal.SIGUSR2) is before


def test_a_stopped_points_message_says_what_its_directory_holds(tmp_path):
    """How a point stopped by a signal is told (the sweep's table, the job's log): the
    checkpoint's step; a log without one; a damaged checkpoint named as such, never taken
    for an engine that cannot resume; nothing at all."""
    usr2 = signal.SIGUSR2
    assert sweep_cli._stopped_message(tmp_path, usr2) == (
        "stopped by SIGUSR2 (the time limit is near); before training started: nothing to save")
    (tmp_path / "log.h5").write_bytes(b"")
    assert "its log is saved, no checkpoint" in sweep_cli._stopped_message(tmp_path, usr2)
    (tmp_path / "checkpoint.npz").write_bytes(b"not a checkpoint")
    said = sweep_cli._stopped_message(tmp_path, signal.SIGTERM)
    assert said.startswith("stopped by SIGTERM; the checkpoint ") and "unreadable" in said
