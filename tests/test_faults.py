"""The fault catalogue: damaged files, concurrent processes, foreign directories, signals outside
the training loop, a full disk, bad environment variables and arguments. Each case runs the
real command and expects one line on stderr (no traceback), the right exit code, and every file
that was there before left as it was."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY, run_cli

QUIET = [*TINY, "progress=false"]
# A run long enough to be interrupted, with checkpoints every 50 steps.
LONG = [*QUIET, "train.steps=400", "train.eval_every=100", "train.checkpoint_every=50"]


def one_line(res, code: int, *words: str) -> str:
    assert res.returncode == code, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines()
             if ln.startswith("cnnvsdnn: error:")]
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (but our lock file) and its sha256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def _cmd() -> list[str]:
    exe = Path(sys.executable).with_name("cnnvsdnn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cnnvsdnn"]


def _popen(args, env, **kw) -> subprocess.Popen:
    return subprocess.Popen(_cmd() + args, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, proc, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), proc.stderr.read() if proc.poll() is not None else "timeout"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """A finished tiny run and an interrupted one (SIGTERM after its first checkpoint)."""
    root = tmp_path_factory.mktemp("faults")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["CNNVSDNN_DATA_DIR"] = str(data_dir)
    res = run_cli(["train", *QUIET, f"hydra.run.dir={root / 'finished'}"], env)
    assert res.returncode == 0, res.stderr
    proc = _popen(["train", *LONG, f"hydra.run.dir={root / 'interrupted'}"], env)
    _wait_for(root / "interrupted" / "checkpoint.npz", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    return {"root": root, "env": env, "finished": root / "finished",
            "interrupted": root / "interrupted"}


def copy(runs, name, tmp_path) -> Path:
    dst = tmp_path / name
    shutil.copytree(runs[name], dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


def resume(run: Path, env, *extra, timeout=120):
    return run_cli(["train", *LONG, *extra, "train.resume=true", f"hydra.run.dir={run}"], env,
                   timeout=timeout)


# --------------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("damage", ["truncate", "scramble"])
def test_damaged_log_fails_fast_on_resume_and_report(runs, tmp_path, damage):
    """A truncated log hung resume and report inside HDF5, deaf to Ctrl-C."""
    for name in ("interrupted", "finished"):
        run = copy(runs, name, tmp_path)
        log = run / "log.h5"
        if damage == "truncate":
            os.truncate(log, log.stat().st_size // 3)
        else:
            with open(log, "r+b") as f:  # an object header: its checksum fails
                f.seek(100)
                f.write(b"\xff" * 64)
        before = snapshot(run)
        started = time.monotonic()
        if name == "interrupted":
            one_line(resume(run, runs["env"], timeout=60), 2, "log.h5", "not a readable")
        else:  # the tables need no log; the figure of that run is left out, with a note
            res = run_cli(["report", str(run), "--out", str(tmp_path / "out")], runs["env"],
                          timeout=60)
            assert res.returncode == 0 and "no training figure" in res.stdout, res.stderr
        assert time.monotonic() - started < 30
        assert snapshot(run) == before


def test_checkpoint_that_is_a_params_file_is_refused(runs, tmp_path):
    run = copy(runs, "interrupted", tmp_path)
    shutil.copy(runs["finished"] / "params.npz", run / "checkpoint.npz")
    before = snapshot(run)
    one_line(resume(run, runs["env"]), 2, "checkpoint.npz")
    assert snapshot(run) == before


def test_checkpoint_with_non_finite_parameters_is_not_resumed(runs, tmp_path):
    run = copy(runs, "interrupted", tmp_path)
    with np.load(run / "checkpoint.npz") as z:
        ck = {k: z[k] for k in z.files}
    ck["params"][3] = np.nan
    np.savez(run / "checkpoint.npz", **ck)
    one_line(resume(run, runs["env"]), 2, "not finite")


@pytest.mark.parametrize("order", ["out of range", "floats"])
def test_checkpoint_whose_batch_order_does_not_fit_the_data_is_refused(runs, tmp_path, order):
    """The batch order indexes the training labels when it is loaded (the labels in epoch
    order): an order from another dataset, or damaged, is a one-line error, not a traceback."""
    run = copy(runs, "interrupted", tmp_path)
    with np.load(run / "checkpoint.npz") as z:
        ck = {k: z[k] for k in z.files}
    ck["order"] = ck["order"] + 10**6 if order == "out of range" else ck["order"] + 0.5
    np.savez(run / "checkpoint.npz", **ck)

    def kept(snap):  # what a resume continues from (the config's record is rewritten)
        return {k: snap[k] for k in ("checkpoint.npz", "log.h5")}

    before = kept(snapshot(run))
    one_line(resume(run, runs["env"]), 2, "checkpoint.npz", "does not fit")
    assert kept(snapshot(run)) == before


def test_divergence_never_checkpoints_non_finite_parameters(runs, tmp_path):
    """Checkpoints every 2 steps, finiteness of the cost alone checked every step."""
    run = tmp_path / "run"
    res = run_cli(["train", *QUIET, "optimizer.lr=1e30", "train.checkpoint_every=2",
                   f"hydra.run.dir={run}"], runs["env"])
    one_line(res, 1, "diverged")
    if (run / "checkpoint.npz").exists():
        with np.load(run / "checkpoint.npz") as z:
            assert np.isfinite(z["params"]).all()


def test_resume_compares_with_the_checkpoint_not_the_editable_config(runs, tmp_path):
    run = copy(runs, "interrupted", tmp_path)
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg.replace("lr: 0.001", "lr: 0.0005"))
    one_line(resume(run, runs["env"], "optimizer.lr=0.0005"), 2, "optimizer.lr differ")
    res = resume(run, runs["env"])  # the overrides it was trained with: fine, and config.yaml
    assert res.returncode == 0, res.stderr  # tells the truth again
    assert "lr: 0.001" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("content", ['{"sha256": 5}', "[1, 2", '{"source": 3}'])
def test_damaged_cache_manifest_is_rebuilt_not_trusted(data_dir, tmp_path, content):
    cache = tmp_path / "data"
    shutil.copytree(data_dir / "mnist", cache / "mnist", ignore=shutil.ignore_patterns("decoded"))
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["CNNVSDNN_DATA_DIR"] = str(cache)
    assert run_cli(["data", "fetch", "mnist", "--no-verify"], env).returncode == 0
    (cache / "mnist" / "decoded" / "manifest.json").write_text(content)
    res = run_cli(["train", *QUIET, f"hydra.run.dir={tmp_path / 'run'}"], env)
    assert res.returncode == 0, res.stderr
    assert json.loads((cache / "mnist" / "decoded" / "manifest.json").read_text())["sha256"]


# --------------------------------------------------------------------------- one writer only
def test_second_process_on_a_running_directory_is_refused(runs, tmp_path):
    run = tmp_path / "run"
    # long enough to be running through every attempt below, then stopped by SIGTERM
    endless = [o for o in LONG if not o.startswith("train.steps=")] + ["train.steps=1000000"]
    first = _popen(["train", *endless, f"hydra.run.dir={run}"], runs["env"])
    _wait_for(run / "log.h5", first)
    hydra = snapshot(run / ".hydra")
    for extra in ([], ["train.resume=true"], ["seed=3"]):
        res = run_cli(["train", *endless, *extra, f"hydra.run.dir={run}"], runs["env"])
        one_line(res, 2, "in use by another cnnvsdnn process")
    assert first.poll() is None  # the refusals were made while it ran
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=300) == 143, first.stderr.read()
    assert snapshot(run / ".hydra") == hydra
    assert "seed: 0" in (run / "config.yaml").read_text()
    with np.load(run / "checkpoint.npz") as ckpt:  # the first run's own checkpoint
        assert "seed: 0" in str(ckpt["config"])


def test_second_sweep_into_a_running_sweep_directory_is_refused(runs, tmp_path):
    sweep = tmp_path / "sweep"
    endless = [o for o in LONG if not o.startswith("train.steps=")] + ["train.steps=1000000"]
    first = _popen(["train", "-m", *endless, "seed=0,1", f"hydra.sweep.dir={sweep}"],
                   runs["env"])
    _wait_for(sweep / "multirun.yaml", first)
    res = run_cli(["train", "-m", *endless, "seed=0,1", f"hydra.sweep.dir={sweep}"], runs["env"])
    assert first.poll() is None  # refused while the first sweep ran
    one_line(res, 2, "in use")
    first.kill()
    first.wait()


# --------------------------------------------------------------------------- never a foreign dir
def test_every_file_a_run_writes_is_known_as_a_runs(runs):
    """A name missing from run/files.py's list would make a finished run look foreign."""
    from cnnvsdnn.run.files import foreign_files

    assert foreign_files(runs["finished"]) == []
    assert foreign_files(runs["interrupted"]) == []


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_a_folder_of_the_users_files_is_never_written(runs, tmp_path, mode):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my own config\n")
    (mine / "tables.md").write_text("my own notes\n")
    before = snapshot(mine)
    args = ["train", *QUIET, "hydra.run.dir=."] if mode == "run" else \
        ["train", "-m", *QUIET, "seed=0,1", "hydra.sweep.dir=."]
    res = run_cli(args, runs["env"], cwd=mine)
    one_line(res, 2, "not a cnnvsdnn run")
    assert snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == [
        "config.yaml", "tables.md"]


@pytest.mark.parametrize("override, words", [
    ("hydra.run.dir=", "hydra.run.dir is empty"),
    ("hydra.run.dir='unclosed", "cannot parse the override"),
    ("hydra.run.dir=a,b", "one directory"),
    ("hydra.run.dir=out/${nokey}", "Interpolation key 'nokey' not found"),
    ("hydra.job.chdir=maybe", "not a valid bool"),
    ("hydra/launcher=nosuch", "unknown hydra/launcher 'nosuch'"),
])
def test_odd_hydra_overrides(runs, tmp_path, override, words):
    res = run_cli(["train", *QUIET, override], runs["env"], cwd=tmp_path)
    one_line(res, 2, words)
    assert list(tmp_path.iterdir()) == []


def test_refused_sweep_rewrites_no_record(runs, tmp_path):
    """A sweep re-run into its directory with another config is refused before Hydra writes."""
    sweep = tmp_path / "sweep"
    res = run_cli(["train", "-m", *QUIET, "seed=0,1", f"hydra.sweep.dir={sweep}"], runs["env"])
    assert res.returncode == 0, res.stderr
    before = snapshot(sweep)
    res = run_cli(["train", "-m", *QUIET, "seed=0,1", "optimizer.lr=0.01",
                   f"hydra.sweep.dir={sweep}"], runs["env"])
    one_line(res, 2, "already holds a finished run")
    assert snapshot(sweep) == before


# --------------------------------------------------------------------------- signals
def test_sigterm_before_the_loop_is_one_line(runs, tmp_path):
    run = tmp_path / "run"
    proc = _popen(["train", *QUIET, f"hydra.run.dir={run}"], runs["env"])
    _wait_for(run / "config.yaml", proc)  # the run started; the loop has not
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the whole tiny run beat the signal; nothing to check
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("cnnvsdnn: error:")


def test_sigterm_while_results_are_written_leaves_a_complete_run(runs, tmp_path):
    run = tmp_path / "run"
    # with the figures, as a user's run: the final writes take seconds
    proc = _popen(["train", *QUIET, "train.figures=true", f"hydra.run.dir={run}"], runs["env"])
    _wait_for(run / "predictions_test.npz", proc)  # the final writes have begun
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 143 and "complete" in err.strip().splitlines()[-1], err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 30
    assert run_cli(["report", str(run), "--out", str(tmp_path / "rep")],
                   runs["env"]).returncode == 0


# --------------------------------------------------------------------------- a full disk
def _small_files(limit: int):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return preexec


def test_full_disk_leaves_no_partial_or_temporary_file(runs, tmp_path):
    """Writes past RLIMIT_FSIZE fail with EFBIG, as on a full disk (Python ignores SIGXFSZ)."""
    run = tmp_path / "run"
    res = subprocess.run(_cmd() + ["train", *QUIET, f"hydra.run.dir={run}"], env=runs["env"],
                         capture_output=True, text=True, timeout=300,
                         preexec_fn=_small_files(600_000))  # the 2 MB checkpoint cannot be had
    one_line(res, 1, "checkpoint.npz")
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
    out = tmp_path / "test.npz"
    res = subprocess.run(_cmd() + ["data", "export", "mnist", "test", str(out), "--no-verify"],
                         env=runs["env"], capture_output=True, text=True, timeout=120,
                         preexec_fn=_small_files(50_000))
    one_line(res, 1, str(out))
    assert list(tmp_path.glob("*test.npz*")) == []


# --------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("override, words", [
    ("seed=-1", "seed=-1 must be >= 0"),
    ("model.layers.3.units=1000000000", "more than this machine's"),
])
def test_bad_values_are_refused_before_any_work(runs, tmp_path, override, words):
    res = run_cli(["train", *QUIET, override, f"hydra.run.dir={tmp_path / 'run'}"], runs["env"])
    one_line(res, 2, words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("var, value, words", [
    ("NUMBA_THREADING_LAYER", "foo", "NUMBA_THREADING_LAYER='foo'"),
    ("NUMBA_NUM_THREADS", "0", "NUMBA_NUM_THREADS='0'"),
    ("NUMBA_NUM_THREADS", "two", "NUMBA_NUM_THREADS='two'"),
    ("CNNVSDNN_DATA_DIR", "/etc/hostname/data", "is a file"),
    ("CNNVSDNN_MIRROR", "example.org/data", "not an http"),
    ("CNNVSDNN_BLAS", "atlas", "CNNVSDNN_BLAS='atlas' is not one of"),
])
def test_bad_environment_variables(runs, tmp_path, var, value, words):
    env = dict(runs["env"], **{var: value})
    for args in (["train", *QUIET, f"hydra.run.dir={tmp_path / 'run'}"], ["data", "list"]):
        one_line(run_cli(args, env), 2, words)
    assert not (tmp_path / "run").exists()


def test_output_paths_that_cannot_be_written(runs, tmp_path):
    env, fin = runs["env"], runs["finished"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "mine.txt").write_text("mine")
    existing = tmp_path / "mine.npz"
    existing.write_bytes(b"my data")
    cases = [
        (["data", "export", "mnist", "test", str(folder), "--no-verify"], "not an empty folder"),
        (["data", "export", "mnist", "test", str(folder), "--no-verify", "--format", "npz"],
         "is a folder"),
        (["data", "export", "mnist", "test", str(existing), "--no-verify"], "--force"),
        (["data", "export", "mnist", "test", "/etc/hostname/x.npz", "--no-verify"], "writable"),
        (["data", "show", "mnist", "--out", str(folder), "--no-verify"], "is a folder"),
        (["data", "show", "mnist", "--per-class", "0", "--no-verify"], "--per-class 0"),
        (["summarize", str(fin), "--json", str(folder)], "is a folder"),
        (["summarize", str(fin), "--out", "/etc/hostname"], "is a file"),
        (["report", str(fin), "--out", "/etc/hostname"], "is a file"),
        (["bench", "--json", str(folder), "--engines", "numpy"], "is a folder"),
    ]
    for args, words in cases:
        one_line(run_cli(args, env), 2, words)
    assert existing.read_bytes() == b"my data"
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]
