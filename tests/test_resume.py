"""Never lose a run: SIGTERM/SIGINT/SIGUSR2 stop cleanly, kill -9 leaves a readable log, and a
resumed run ends with bit-for-bit the parameters of an uninterrupted one (1 thread)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnvsdnn.run.log import read_log
from tests.conftest import TINY

STEPS = 800
# Long enough (a few seconds) to be interrupted at a random moment; checkpoints every 50 steps.
LONG = [*TINY, f"train.steps={STEPS}", "train.eval_every=100", "train.checkpoint_every=50",
        "train.batch_size=128", "model=cnn", "progress=false"]


def _cmd():
    exe = Path(sys.executable).with_name("cnnvsdnn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cnnvsdnn"]


def _start(run_dir: Path, env: dict, *extra) -> subprocess.Popen:
    return subprocess.Popen(_cmd() + ["train", *LONG, *extra, f"hydra.run.dir={run_dir}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(run_dir: Path, proc: subprocess.Popen, at_least: int, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if read_log(run_dir / "log.h5")["train"]["step"].size >= at_least:
                return
        except Exception:  # not created yet
            pass
        time.sleep(0.02)


def _params(run_dir: Path) -> np.ndarray:
    with np.load(run_dir / "params.npz") as z:
        return z["params"]


def _check_log_complete(run_dir: Path) -> None:
    log = read_log(run_dir / "log.h5")
    assert list(log["train"]["step"]) == list(range(1, STEPS + 1))  # no duplicate, none missing
    assert list(log["dev"]["step"]) == list(range(100, STEPS + 1, 100))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    env = dict(os.environ, CNNVSDNN_DATA_DIR=str(data_dir))
    run = tmp_path_factory.mktemp("ref") / "run"
    res = subprocess.run(_cmd() + ["train", *LONG, f"hydra.run.dir={run}"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return _params(run), run


# SIGUSR2: what SLURM sends ahead of a time limit (conf/hydra/launcher/slurm.yaml)
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                      (signal.SIGUSR2, 140)])
def test_signal_saves_and_resume_is_bit_identical(tmp_path, data_env, reference, sig, code):
    run = tmp_path / "run"
    proc = _start(run, data_env)
    _wait_for_steps(run, proc, 200)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert "train.resume=true" in last and str(run) in last
    log = read_log(run / "log.h5")
    stopped = int(log["train"]["step"][-1])
    assert 200 <= stopped < STEPS and list(log["train"]["step"]) == list(range(1, stopped + 1))
    assert not (run / "metrics.json").exists()

    other = subprocess.run(_cmd() + ["train", *LONG, "seed=5", "train.resume=true",
                                     f"hydra.run.dir={run}"],
                           env=data_env, capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "different config (seed differ)" in other.stderr
    res = subprocess.run(_cmd() + ["train", *LONG, "train.resume=true", f"hydra.run.dir={run}"],
                         env=data_env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(_params(run), reference[0])
    _check_log_complete(run)


def test_signal_during_the_evaluation_stops_at_the_step_it_saved(tmp_path, data_env):
    """A signal lands anywhere in a step: here while the dev split is evaluated, which takes
    most of each step. The step the run says it stopped at is the checkpoint's and the log's
    last (a signal read after the step decided not to save would stop without a checkpoint)."""
    args = [*TINY, "train.steps=1000000", "train.eval_every=1", "train.dev_size=1000",
            "train.checkpoint_every=1000000", "model=dnn", "progress=false"]
    for n in range(2):
        run = tmp_path / f"run{n}"
        proc = subprocess.Popen(_cmd() + ["train", *args, f"hydra.run.dir={run}"], env=data_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_steps(run, proc, 500)  # the log's first write: the loop runs
        time.sleep(0.05 + 0.1 * n)
        proc.send_signal(signal.SIGUSR2)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 140, err
        said = int(err.split(" at step ")[1].split()[0])
        with np.load(run / "checkpoint.npz") as z:
            assert int(z["step"]) == said, err
        log = read_log(run / "log.h5")
        assert int(log["train"]["step"][-1]) == said and int(log["dev"]["step"][-1]) == said


def _kill_and_resume(tmp_path, env, reference, rng) -> None:
    run = tmp_path / f"run{rng.random():.6f}"
    proc = _start(run, env)
    _wait_for_steps(run, proc, 1)
    time.sleep(rng.uniform(0, 1.0))  # a random instant of the run, final writes included
    proc.kill()
    proc.wait()
    if (run / "log.h5").exists():
        read_log(run / "log.h5")  # always readable
    if (run / "metrics.json").exists():  # it finished before the kill: nothing to resume
        np.testing.assert_array_equal(_params(run), reference[0])
        return
    res = subprocess.run(_cmd() + ["train", *LONG, "train.resume=true", f"hydra.run.dir={run}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(_params(run), reference[0])
    _check_log_complete(run)


def test_kill_9_then_resume_is_bit_identical(tmp_path, data_env, reference):
    rng = random.Random(1)
    for _ in range(2):
        _kill_and_resume(tmp_path, data_env, reference, rng)


@pytest.mark.slow
def test_kill_9_at_ten_random_moments(tmp_path, data_env, reference):
    rng = random.Random(2)
    for _ in range(10):
        _kill_and_resume(tmp_path, data_env, reference, rng)


def _interrupt_anywhere(tmp_path, env, reference, rng, duration) -> str:
    """Start a run, kill -9 or SIGTERM it at a random moment of its whole life (start-up and
    final writes included), then: the directory resumes bit-identically or says in one line
    why it cannot, and `report` on it answers within seconds (a table, or one line)."""
    run = tmp_path / f"run{rng.random():.6f}"
    sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
    proc = _start(run, env)
    time.sleep(rng.uniform(0, duration))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    if proc.returncode not in (0, -9):  # a signal we handle: one line, 128 + N
        assert proc.returncode == 128 + sig, err
        assert err.strip().splitlines()[-1].startswith("cnnvsdnn: error: "), err
    started = time.monotonic()
    rep = subprocess.run(_cmd() + ["report", str(run), "--out", str(run.parent / "rep")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30 and "Traceback" not in rep.stderr, rep.stderr
    if (run / "metrics.json").exists():
        assert rep.returncode == 0, rep.stderr
        np.testing.assert_array_equal(_params(run), reference[0])
        return "finished"
    assert rep.returncode == 2 and len(rep.stderr.strip().splitlines()) == 1, rep.stderr
    res = subprocess.run(_cmd() + ["train", *LONG, "train.resume=true", f"hydra.run.dir={run}"],
                         env=env, capture_output=True, text=True, timeout=300)
    if res.returncode == 0:
        np.testing.assert_array_equal(_params(run), reference[0])
        _check_log_complete(run)
        return "resumed"
    lines = res.stderr.strip().splitlines()  # it cannot: one line that says why
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "no run to resume" in lines[0], lines[0]  # killed before its log existed
    return "refused"


@pytest.mark.slow
def test_kill_9_and_sigterm_at_twenty_random_moments(tmp_path, data_env, reference):
    t0 = time.monotonic()
    res = subprocess.run(_cmd() + ["train", *LONG, f"hydra.run.dir={tmp_path / 'timed'}"],
                         env=data_env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    duration = time.monotonic() - t0  # the whole life of a run, start-up to final writes
    rng = random.Random(3)
    outcomes = [_interrupt_anywhere(tmp_path, data_env, reference, rng, duration)
                for _ in range(20)]
    print("outcomes:", {o: outcomes.count(o) for o in set(outcomes)})


def test_finished_run_is_not_resumed(data_env, reference):
    res = subprocess.run(_cmd() + ["train", *LONG, "train.resume=true",
                                   f"hydra.run.dir={reference[1]}"],
                         env=data_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "already holds a finished run" in res.stderr


def test_resume_without_a_run_is_refused(tmp_path, data_env):
    res = subprocess.run(_cmd() + ["train", *LONG, "train.resume=true",
                                   f"hydra.run.dir={tmp_path / 'nothing'}"],
                         env=data_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "holds no run to resume" in res.stderr


def test_checkpoint_of_another_engine_revision_is_not_resumed(tmp_path, data_env):
    """Resuming would mix two engines' numbers: refused, one line, nothing touched."""
    from cnnvsdnn.engines.numba import REVISION

    run = tmp_path / "run"
    short = [*TINY, "train.steps=100", "train.eval_every=50", "train.checkpoint_every=50",
             "progress=false", f"hydra.run.dir={run}"]
    res = subprocess.run(_cmd() + ["train", *short], env=data_env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (run / "metrics.json").unlink()  # as if killed after its last checkpoint
    with np.load(run / "checkpoint.npz") as z:
        ck = {k: z[k] for k in z.files}
    assert int(ck["engine_revision"]) == REVISION  # checkpoints record it
    del ck["engine_revision"]  # as written before revisions were recorded
    np.savez(run / "checkpoint.npz", **ck)
    log_bytes = (run / "log.h5").read_bytes()
    res = subprocess.run(_cmd() + ["train", *short, "train.resume=true"], env=data_env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("cnnvsdnn: error: ") and "Traceback" not in res.stderr
    assert f"engine revision 1, this cnnvsdnn's is {REVISION}" in lines[-1]
    assert (run / "log.h5").read_bytes() == log_bytes and not (run / "metrics.json").exists()
