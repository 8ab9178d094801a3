"""Sweeps on a real SLURM cluster through ``hydra/launcher=slurm``, with what can go wrong there.

Runs only inside a cluster (``SLURM_CONF`` set): ``make test-cluster``, that is
``tests/cluster/cluster.sh run -- python -m pytest -s tests/cluster``, which starts a throw-away
single-node cluster with accounting and stops it afterwards. About 3 minutes; the sweeps below
run at the same time as far as they can, because SLURM's time limit costs a minute or more:

- a 4-point sweep whose 2 svhn points cannot have their data: 2 error lines (each with its job
  id), the mnist points done, every job in sacct; the same command again is refused before
  anything is queued;
- a point cancelled with ``scancel`` while it trains: it saves its checkpoint and is reported
  ``cancelled``; the sweep resumed with ``train.resume=true`` keeps the finished point without
  a job and continues the cancelled one to its end;
- a point that reaches its 1-minute time limit: SLURM's SIGUSR2 stops it after a step with its
  checkpoint saved (``timed out``); resumed, it ends with bit for bit the parameters of an
  uninterrupted run of the same config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnnvsdnn.run.log import read_log
from tests.conftest import TINY

pytestmark = pytest.mark.skipif(
    not os.environ.get("SLURM_CONF") or shutil.which("sbatch") is None,
    reason="needs a SLURM cluster: make test-cluster (tests/cluster/cluster.sh run -- pytest ...)")

OFFLINE = "http://127.0.0.1:9"  # a proxy nobody listens on: no dataset host can be reached
SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
# One thread, so that a resumed run is bit for bit an uninterrupted one.
ARGS = [*TINY, "progress=false"]
LONG = [a for a in ARGS if not a.startswith(("train.steps", "train.eval_every"))]
TIMEOUT_LOOP_S = 60  # the timed-out run's training loop: longer than SIGUSR2 can take to come


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("cnnvsdnn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cnnvsdnn"]


class Command:
    """A ``cnnvsdnn`` command running in the background; its output goes to files (a pipe
    could fill up while we wait for something else)."""

    def __init__(self, args: list[str], env: dict, where: Path, name: str):
        self.args, self.started, self.ended = args, time.monotonic(), None
        self.out, self.err = where / f"{name}.out", where / f"{name}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(cli() + args, env=env, stdout=out, stderr=err)
        self._watch = threading.Thread(target=self._wait, daemon=True)
        self._watch.start()

    def _wait(self) -> None:
        self.proc.wait()
        self.ended = time.monotonic()  # when it ended, not when we looked

    def wait(self, timeout: float = 600) -> subprocess.CompletedProcess:
        self._watch.join(timeout)
        assert self.ended is not None, f"{self.args} still runs after {timeout} s"
        res = subprocess.CompletedProcess(self.args, self.proc.returncode, self.out.read_text(),
                                          self.err.read_text())
        res.seconds = self.ended - self.started
        return res


def run(args: list[str], env: dict, where: Path, name: str) -> subprocess.CompletedProcess:
    return Command(args, env, where, name).wait()


def show(title: str, res: subprocess.CompletedProcess) -> None:
    """What a user would see: the error lines, the table, the exit code (for the CI log)."""
    print(f"\n===== {title}: exit {res.returncode} after {res.seconds:.0f} s")
    for line in res.stderr.splitlines():
        if line.startswith("cnnvsdnn: error:"):
            print(line)
    for line in res.stdout.splitlines():
        if not line.startswith("[") and "│   │" not in line:  # Hydra's log lines; wrapped cells
            print(line)


def errors(res) -> list[str]:
    assert "Traceback" not in res.stderr, res.stderr
    return [ln for ln in res.stderr.splitlines() if ln.startswith("cnnvsdnn: error:")]


def points(sweep: Path) -> list[dict]:
    return json.loads((sweep / "sweep.json").read_text())["points"]


def sacct(job: str) -> str:
    """The job's (or array task's) state and exit code as sacct has them, e.g. 'COMPLETED 0:0'."""
    deadline = time.monotonic() + 30  # slurmdbd learns of a job's end a moment later
    while True:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID,State,ExitCode"],
                             capture_output=True, text=True).stdout
        rows = [r.split("|") for r in out.splitlines() if r.split("|")[0] == job]
        state = " ".join(rows[0][1:]) if rows else ""
        if state and not state.startswith(("RUNNING", "PENDING", "COMPLETING")):
            return state
        if time.monotonic() > deadline:
            return state or "unknown"
        time.sleep(0.5)


def params(run_dir: Path) -> np.ndarray:
    with np.load(run_dir / "params.npz") as z:
        return z["params"]


# ------------------------------------------------------------------------------ the setup
@pytest.fixture(scope="module")
def env(data_dir) -> dict:
    e = dict(os.environ, CNNVSDNN_DATA_DIR=str(data_dir), http_proxy=OFFLINE,
             https_proxy=OFFLINE, no_proxy="")
    e.pop("HYDRA_FULL_ERROR", None)
    return e


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slurm")


@pytest.fixture(scope="module")
def started(env, work) -> dict:
    """Measure this machine's speed, then start what takes long: the 4-point sweep, the sweep
    that will time out and the uninterrupted run it is compared with."""
    # seconds per step of this machine, from a short local run of the same model, before the
    # others start (measured beside them it came out 3-4x slow: the timed run could then end
    # before SIGUSR2 came)
    probe = run(["train", "model=dnn", *LONG, "train.steps=2000", "train.eval_every=500",
                 f"hydra.run.dir={work / 'probe'}"], env, work, "probe")
    assert probe.returncode == 0, probe.stderr
    out = {"failing": Command(["train", "-m", "dataset=mnist,svhn", "model=dnn,cnn", *ARGS,
                               *SLURM, f"hydra.sweep.dir={work / 'failing'}"],
                              env, work, "failing")}
    per_step = json.loads((work / "probe" / "metrics.json").read_text())["seconds"][
        "train_loop"] / 2000
    steps = int(min(max(TIMEOUT_LOOP_S / per_step, 5000), 500000)) // 100 * 100
    print(f"\nthis machine: {per_step * 1000:.2f} ms per step; the timed-out run has {steps}")
    out["per_step"], out["steps"] = per_step, steps
    timed = ["model=dnn", *LONG, f"train.steps={steps}", "train.eval_every=100",
             "train.checkpoint_every=1000000"]  # no periodic checkpoint: only the signal's
    out["timeout_args"] = ["train", "-m", *timed, *SLURM, f"hydra.sweep.dir={work / 'timeout'}"]
    # SLURM sends SIGUSR2 when <= 45 s of the 1-minute limit remain, at its first 30-s check
    # after that: 15-45 s after the start, once the run trains (start-up under this test's
    # load takes seconds: a signal before the loop stops the run with nothing to save)
    out["timeout"] = Command([*out["timeout_args"], "hydra.launcher.timeout_min=1",
                              "hydra.launcher.signal_delay_s=45"], env, work, "timeout")
    out["reference"] = Command(["train", *timed, f"hydra.run.dir={work / 'reference'}"], env,
                               work, "reference")
    return out


# ------------------------------------------------------------------------------ the checks
def test_failing_points_are_one_line_each_and_the_others_complete(started, env, work):
    res = started["failing"].wait()
    show("sweep dataset=mnist,svhn model=dnn,cnn (svhn cannot be had)", res)
    sweep = work / "failing"
    pts = points(sweep)
    assert res.returncode == 1, res.stdout + res.stderr
    assert [p["state"] for p in pts] == ["done", "done", "failed", "failed"]
    lines = errors(res)
    assert len(lines) == 2
    for p, line in zip(pts[2:], lines):
        assert f"job {p['job_id']}) failed: svhn: cannot get" in line
    array = pts[0]["job_id"].split("_")[0]
    assert all(p["job_id"] == f"{array}_{p['num']}" for p in pts)  # one array job
    for p in pts[:2]:
        assert json.loads((Path(p["run_dir"]) / "metrics.json").read_text())["dataset"] == "mnist"
    # the jobs ran to their end and reported their point's failure: sacct says COMPLETED
    states = {p["job_id"]: sacct(p["job_id"]) for p in pts}
    print(f"sacct: {states}")
    assert set(states.values()) == {"COMPLETED 0:0"}
    name = subprocess.run(["sacct", "-n", "-X", "-P", "-j", array, "-o", "JobName"],
                          capture_output=True, text=True).stdout.split()
    assert set(name) == {"cnnvsdnn"}

    summary = run(["summarize", str(sweep), "--pair", "none"], env, work, "summarize")
    print("\n".join(ln for ln in summary.stderr.splitlines() if "no result" in ln))
    assert summary.returncode == 0
    assert sum("no result, left out" in ln for ln in summary.stderr.splitlines()) == 2

    jobs_before = subprocess.run(["sacct", "-n", "-X", "-o", "JobID"], capture_output=True,
                                 text=True).stdout
    again = run(started["failing"].args, env, work, "failing-again")
    show("the same sweep again, without train.resume=true", again)
    assert again.returncode == 2 and "already hold a run" in again.stderr
    assert subprocess.run(["sacct", "-n", "-X", "-o", "JobID"], capture_output=True,
                          text=True).stdout == jobs_before  # nothing was queued


def test_cancelled_point_is_reported_and_the_resumed_sweep_finishes_it(started, env, work):
    sweep = work / "cancel"
    steps = int(max(12 / started["per_step"], 3000)) // 100 * 100  # about 12 s of training
    args = ["train", "-m", "model=dnn", *LONG, f"train.steps=200,{steps}",
            "train.eval_every=100", "train.checkpoint_every=100", *SLURM,
            f"hydra.sweep.dir={sweep}"]
    cmd = Command(args, env, work, "cancel")
    long_run = sweep / "1_mnist_dnn_numba_seed0"
    deadline = time.monotonic() + 300
    while not (long_run / "checkpoint.npz").exists():
        assert time.monotonic() < deadline and cmd.proc.poll() is None, cmd.err.read_text()
        time.sleep(0.1)
    job = points(sweep)[1]["job_id"]
    subprocess.run(["scancel", job], check=True)
    res = cmd.wait()
    show(f"sweep train.steps=200,{steps}; scancel {job} once it trains", res)
    pts = points(sweep)
    assert res.returncode == 1
    assert [p["state"] for p in pts] == ["done", "cancelled"]
    [line] = errors(res)
    assert f"job {job}) cancelled: stopped by SIGTERM; its checkpoint at step" in line
    assert sacct(job).startswith("CANCELLED")
    stopped = int(read_log(long_run / "log.h5")["train"]["step"][-1])
    assert 100 <= stopped < steps and not (long_run / "metrics.json").exists()

    finished = Path(pts[0]["run_dir"]) / "metrics.json"
    stamp = finished.stat().st_mtime_ns
    res = run([*args, "train.resume=true"], env, work, "cancel-resume")
    show("the same sweep plus train.resume=true", res)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "done (kept)" in res.stdout and finished.stat().st_mtime_ns == stamp
    pts = points(sweep)
    assert [p["state"] for p in pts] == ["done", "done"] and pts[0]["kept"]
    assert pts[1]["job_id"] != job  # a new job for the resumed point only
    assert list(read_log(long_run / "log.h5")["train"]["step"]) == list(range(1, steps + 1))


def test_timed_out_point_saves_its_checkpoint_and_resumes_bit_identically(started, env, work):
    res = started["timeout"].wait()
    show("a point with a 1-minute time limit", res)
    sweep = work / "timeout"
    [p] = points(sweep)
    run_dir = Path(p["run_dir"])
    assert res.returncode == 1, res.stdout + res.stderr
    assert p["state"] == "timed out"
    [line] = errors(res)
    assert "timed out: stopped by SIGUSR2 (the time limit is near); its checkpoint at step" in line
    assert "train.resume=true" in res.stdout  # the command that continues the sweep
    with np.load(run_dir / "checkpoint.npz") as z:
        saved = int(z["step"])
    logged = read_log(run_dir / "log.h5")["train"]["step"]
    assert list(logged) == list(range(1, saved + 1))  # the log holds every step up to it
    assert 0 < saved < started["steps"]
    assert not (run_dir / "metrics.json").exists()
    print(f"sacct: {p['job_id']}: {sacct(p['job_id'])}; checkpoint at step {saved}")

    res = run([*started["timeout_args"], "train.resume=true", "hydra.launcher.timeout_min=5"],
              env, work, "timeout-resume")
    show("the same sweep plus train.resume=true (and a 5-minute limit)", res)
    assert res.returncode == 0, res.stdout + res.stderr
    ref = started["reference"].wait()
    assert ref.returncode == 0, ref.stderr
    np.testing.assert_array_equal(params(run_dir), params(work / "reference"))
    total = read_log(run_dir / "log.h5")["train"]["step"]
    assert list(total) == list(range(1, total.size + 1))
    print(f"resumed from step {saved}: parameters bit for bit those of the uninterrupted run "
          f"({params(run_dir).size} values), log steps 1..{total.size} complete")
