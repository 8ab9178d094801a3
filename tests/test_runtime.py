"""`train` says which threading layer and BLAS the engine runs on (metrics.json records both),
and a run on numba's slow `workqueue` layer says so once, with the fix."""

from __future__ import annotations

import json

from tests.conftest import TINY, run_cli


def test_train_names_its_threading_layer_and_blas(tmp_path, data_env):
    res = run_cli(["train", "model=dnn", *TINY, f"hydra.run.dir={tmp_path / 'run'}"], data_env)
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["threading_layer"] in ("tbb", "omp", "workqueue") and m["blas"]
    line = [s for s in res.stdout.splitlines() if s.startswith("numba engine:")]
    assert line == [f"numba engine: 1 thread on the {m['threading_layer']} threading layer, "
                    f"BLAS {m['blas']}"]


def test_a_run_on_the_slow_fallback_layer_says_so_once(tmp_path, data_env):
    env = {**data_env, "NUMBA_THREADING_LAYER": "workqueue"}
    res = run_cli(["train", "model=dnn", *TINY, f"hydra.run.dir={tmp_path / 'run'}"], env)
    assert res.returncode == 0, res.stderr
    warnings = [s for s in res.stderr.splitlines() if "slow 'workqueue'" in s]
    assert len(warnings) == 1 and "unset NUMBA_THREADING_LAYER" in warnings[0]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["threading_layer"] == \
        "workqueue"
