"""`cnnvsdnn bench` runs every engine it is asked for, from a trained state, and writes the JSON
rows of issue #3; `--e2e` times whole runs of `cnnvsdnn train` and the plain peer scripts."""

from __future__ import annotations

import json
import re
import statistics
import time
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.conftest import run_cli

PEERS = [e for e, mod in (("torch_fused", "torch"), ("jax", "jax")) if find_spec(mod)]
ENGINES = ["numba", *PEERS, "numpy"]


def test_bench_writes_rows_for_each_engine(tmp_path, data_env):
    out = tmp_path / "bench.json"
    res = run_cli(["bench", "--models", "dnn,cnn", "--inputs", "28x28x1", "--threads", "1",
                   "--steps", "2", "--repeats", "1", "--warmup", "0", "--pretrain", "5",
                   "--no-verify", "--engines", ",".join(ENGINES), "--json", str(out)], data_env)
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())
    assert {(r["engine"], r["model"]) for r in rows} == {(e, m) for e in ENGINES
                                                          for m in ("dnn", "cnn")}
    for r in rows:
        assert set(r) == {"engine", "model", "input", "threads", "ms_per_step",
                          "eval_images_per_s"}
        assert r["input"] == "28x28x1" and r["threads"] == 1
        assert r["ms_per_step"] > 0 and r["eval_images_per_s"] > 0
    assert "trained dnn 28x28x1 5 steps" in res.stdout  # every engine starts from that state
    assert "best / ours" in res.stdout and "compile or cache load" in res.stdout
    assert "threading layer, BLAS" in res.stdout  # which layer and BLAS ours ran on
    assert "host steal" in res.stdout  # how busy the machine was, per row
    if Path("/proc/stat").exists():  # ... and over the whole run, where the system counts it
        assert re.search(r"the host took \d+\.\d % of this machine's CPU time during the bench",
                         res.stdout)
        assert res.stdout.count("host steal while these were timed: ") == 2  # once per cell


@pytest.mark.skipif(not PEERS, reason="no peer installed: pip install 'cnnvsdnn[bench]'")
def test_bench_e2e_times_train_and_the_plain_scripts(tmp_path, data_env):
    out = tmp_path / "e2e.json"
    res = run_cli(["bench", "--models", "dnn", "--inputs", "28x28x1", "--threads", "1",
                   "--e2e-only", "--e2e-steps", "200", "--e2e-repeats", "1", "--no-verify",
                   "--dev-size", "200", "--engines", ",".join(["numba", *PEERS]),
                   "--json", str(out)], data_env)
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())
    assert {r["engine"] for r in rows} == {"numba", *PEERS}
    for r in rows:
        assert r["steps"] == 200 and r["loop_ms_per_step"] > 0 and r["process_s"] > 0
        assert r["runs"]["loop_ms_per_step"] == [r["loop_ms_per_step"]]  # each run's figure
    for r in rows:  # the host's share of each run's CPU time, where the system counts it
        assert len(r["host_steal"]) == 1
        if Path("/proc/stat").exists():
            assert 0 <= r["host_steal"][0] <= 1
    ours = next(r for r in rows if r["engine"] == "numba")
    # the steps alone, timed inside the same loop, and what follows the loop
    assert 0 < ours["step_ms_in_loop"] < ours["loop_ms_per_step"]
    assert ours["loop_over_steps"] == pytest.approx(
        ours["loop_ms_per_step"] / ours["step_ms_in_loop"], rel=1e-3)  # one run
    assert 0 < ours["results_s"] < ours["process_s"]
    assert "whole training runs" in res.stdout and "loop / step" in res.stdout  # all headers


def test_e2e_table_gives_the_median_of_each_runs_own_loop_over_steps(capsys):
    """Loop / step compares a run's loop with the steps timed inside that same loop: the
    table's figure is the median of the runs' ratios, not the ratio of the two medians (which
    may come from two runs on a machine that changed between them)."""
    from rich.console import Console

    from cnnvsdnn.bench.e2e import print_table

    loop, steps = [1.0, 2.0, 1.6], [0.8, 1.9, 1.2]  # own ratios 1.25, 1.05, 1.33
    runs = {"loop_ms_per_step": loop, "step_ms_in_loop": steps,
            "loop_over_steps": [a / b for a, b in zip(loop, steps)],
            "process_s": [5.0, 6.0, 7.0], "results_s": [1.0, 1.0, 1.0]}
    row = {"engine": "numba", "model": "dnn", "input": "28x28x1", "threads": 2, "steps": 100,
           **{k: statistics.median(v) for k, v in runs.items()}, "runs": runs,
           "host_steal": [0.0, 0.0, 0.0]}
    print_table(Console(width=320), [row], [])
    cells = [c.strip() for c in capsys.readouterr().out.split("│")]
    assert "1.250" in cells  # the median run's own ratio
    assert "1.333" not in cells  # median loop 1.6 / median steps 1.2, from two runs


def test_e2e_repeats_short_runs_more_than_long_ones():
    """Without --e2e-repeats, a model and input repeat until ~3 minutes of runs: a 2000-step
    MNIST DNN (every engine once in ~30 s) 6 times, the minutes-long runs twice, never over 7."""
    from cnnvsdnn.bench.e2e import auto_repeats

    assert auto_repeats(30.0) == 6
    assert auto_repeats(80.0) == 2 and auto_repeats(600.0) == 2
    assert auto_repeats(1.0) == 7 and auto_repeats(0.0) == 7


def test_bench_rejects_unknown_names(data_env):
    for args in (["--models", "foo"], ["--inputs", "7x7x7"], ["--engines", "tensorflow"],
                 ["--pretrain", "-1"], ["--e2e-repeats", "0"]):
        res = run_cli(["bench", *args], data_env)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_a_failing_engine_process_is_one_line_not_a_traceback(capfd):
    """Each engine is timed in a process of its own; when one fails, the parent says which."""
    from cnnvsdnn.bench import _Worker
    from cnnvsdnn.errors import CnnvsdnnError

    w = _Worker("numba", 1)
    try:
        with pytest.raises(CnnvsdnnError, match="numba benchmark process stopped"):
            w.call(op="setup", layers=[{"type": "bogus"}], inp="28x28x1", batch_size=8)
    finally:
        w.close()
    err = capfd.readouterr().err
    assert "unknown type 'bogus'" in err and "Traceback" not in err


# /proc/stat's first lines as Linux 6.1 writes them (proc(5)): user nice system idle iowait irq
# softirq steal guest guest_nice
STAT = """cpu  1843652 0 99272 1001726 4245 0 5530 254561 0 0
cpu0 909089 0 48001 514203 2524 0 2597 128258 0 0
intr 1 2 3
"""


def test_host_steal_is_read_from_the_cpu_line_and_shared_over_the_time_between():
    from cnnvsdnn import host

    total = 1843652 + 99272 + 1001726 + 4245 + 5530 + 254561
    assert host.cpu_jiffies(STAT) == (total, 254561)
    # a kernel without the steal field, or no cpu line at all: not known, never a wrong share
    assert host.cpu_jiffies("cpu  1 2 3 4 5 6 7\n") is None
    assert host.cpu_jiffies("intr 1 2\n") is None and host.cpu_jiffies("cpu  a b\n") is None
    assert host.steal_share((1000, 100), (1400, 200)) == 0.25
    assert host.steal_share(None, (1400, 200)) is None
    assert host.steal_share((1000, 100), (1000, 100)) is None  # no time passed
    assert host.describe(0.25) == "the host took 25 % of this machine's CPU time (steal)"
    assert host.describe(None) == ""
    from cnnvsdnn.bench import steal_warning

    assert "took 20 % of its CPU time while bench ran" in steal_warning(0.2)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="no /proc/stat (not Linux)")
def test_host_counts_this_machines_cpu_time():
    from cnnvsdnn import host

    a = host.cpu_jiffies()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.2:  # 20 ticks of this CPU at 100 Hz
        pass
    b = host.cpu_jiffies()
    assert a is not None and b is not None and b[0] > a[0] and b[1] >= a[1]
    assert 0 <= host.steal_share(a, b) <= 1


def test_a_run_slowed_by_its_host_says_so_in_its_last_line(capsys, tmp_path):
    """``train``'s last line names the host's share of the loop's CPU time from 5 % on."""
    from cnnvsdnn.run.results import print_summary

    m = {"n": 10, "accuracy": 0.5, "f1_weighted": 0.5, "ar_weighted": 0.5}
    seconds = {"total": 9.0, "train_loop": 6.0}
    for share, said in ((0.2, True), (0.01, False), (None, False)):
        print_summary("t", {"test": m}, seconds, tmp_path, share)
        out = capsys.readouterr().out
        assert "training loop 6.0 s" in out
        assert ("slowed: the host took 20 % of this machine's CPU time (steal)" in out) == said
