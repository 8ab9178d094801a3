"""`cnnvsdnn bench` runs every engine it is asked for and writes the JSON rows of issue #3."""

from __future__ import annotations

import json

from tests.conftest import run_cli

try:
    import torch  # noqa: F401

    ENGINES = ["numba", "torch", "numpy"]
except ImportError:
    ENGINES = ["numba", "numpy"]


def test_bench_writes_rows_for_each_engine(tmp_path, data_env):
    out = tmp_path / "bench.json"
    res = run_cli(["bench", "--models", "dnn,cnn", "--inputs", "28x28x1", "--threads", "1",
                   "--steps", "2", "--repeats", "1", "--engines", ",".join(ENGINES),
                   "--json", str(out)], data_env)
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())
    assert {(r["engine"], r["model"]) for r in rows} == {(e, m) for e in ENGINES
                                                          for m in ("dnn", "cnn")}
    for r in rows:
        assert set(r) == {"engine", "model", "input", "threads", "ms_per_step",
                          "eval_images_per_s"}
        assert r["input"] == "28x28x1" and r["threads"] == 1
        assert r["ms_per_step"] > 0 and r["eval_images_per_s"] > 0
    assert "numpy/numba" in res.stdout and "JIT compile" in res.stdout


def test_bench_rejects_unknown_names(data_env):
    for args in (["--models", "foo"], ["--inputs", "7x7x7"], ["--engines", "jax"]):
        res = run_cli(["bench", *args], data_env)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_a_failing_engine_process_is_one_line_not_a_traceback(capfd):
    """Each engine is timed in a process of its own; when one fails, the parent says which."""
    import pytest

    from cnnvsdnn.bench import _Worker
    from cnnvsdnn.errors import CnnvsdnnError

    w = _Worker("numba")
    try:
        with pytest.raises(CnnvsdnnError, match="numba benchmark process stopped"):
            w.call(op="setup", layers=[{"type": "bogus"}], input="28x28x1", threads=1,
                   batch_size=8)
    finally:
        w.close()
    err = capfd.readouterr().err
    assert "unknown type 'bogus'" in err and "Traceback" not in err
