"""``cnnvsdnn summarize`` on a real sweep (tests/test_sweep.py's joblib sweep), checked against
numbers computed here directly from the runs' metrics.json with numpy and scipy."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cnnvsdnn.analysis import summarize as S
from cnnvsdnn.errors import ConfigError
from tests.conftest import run_cli
from tests.test_sweep import MODELS, SEEDS, joblib_sweep


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory, data_dir) -> Path:
    return joblib_sweep(tmp_path_factory, data_dir)


def _by_hand(sweep_dir: Path, split: str = "test") -> dict:
    """{(model, metric): [value per seed 0, 1, 2]} straight from the files."""
    out = {}
    for model in MODELS:
        for seed in SEEDS:
            m = json.loads((sweep_dir / f"numba_{model}_seed{seed}" / "metrics.json").read_text())
            for metric in ("accuracy", "f1_weighted", "ar_weighted"):
                out.setdefault((model, metric), []).append(m["splits"][split][metric])
    return out


def _interval(x):
    x = np.asarray(x)
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return x.mean() - half, x.mean() + half


def test_summarize_json_matches_the_hand_computation(sweep_dir, data_env, tmp_path):
    res = run_cli(["summarize", str(sweep_dir), "--json", str(tmp_path / "s.json"),
                   "--out", str(tmp_path / "out")], data_env)
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    hand = _by_hand(sweep_dir)
    groups = {g["model"]: g for g in s["groups"]}
    assert set(groups) == set(MODELS) and s["split"] == "test"
    for (model, metric), values in hand.items():
        g = groups[model]
        assert (g["dataset"], g["engine"], g["seeds"]) == ("mnist", "numba", list(SEEDS))
        got = g[metric]
        assert got["n"] == 3
        assert got["mean"] == pytest.approx(np.mean(values), abs=1e-12)
        assert got["sd"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert (got["ci_low"], got["ci_high"]) == pytest.approx(_interval(values), abs=1e-12)

    pairs = {p["metric"]: p for p in s["pairs"]}
    assert set(pairs) == {"accuracy", "f1_weighted", "ar_weighted"}
    for metric, p in pairs.items():
        dnn, cnn = np.array(hand[("dnn", metric)]), np.array(hand[("cnn", metric)])
        d = cnn - dnn  # the default pair dnn,cnn reports CNN - DNN
        assert (p["a"], p["b"], p["seeds"]) == ("dnn", "cnn", list(SEEDS))
        assert p["diff"]["mean"] == pytest.approx(d.mean(), abs=1e-12)
        assert p["diff"]["sd"] == pytest.approx(d.std(ddof=1), abs=1e-12)
        assert (p["diff"]["ci_low"], p["diff"]["ci_high"]) == pytest.approx(_interval(d),
                                                                            abs=1e-12)
        ref = stats.ttest_rel(cnn, dnn)
        assert p["t"] == pytest.approx(ref.statistic, nan_ok=True)
        assert p["p_ttest"] == pytest.approx(ref.pvalue, nan_ok=True)
        assert p["b_better"] == int(np.sum(cnn > dnn))

    # the same numbers in the files a user opens, and on the terminal
    out = tmp_path / "out"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    acc = next(r for r in rows if (r["model"], r["metric"]) == ("cnn", "accuracy"))
    assert float(acc["mean"]) == pytest.approx(np.mean(hand[("cnn", "accuracy")]))
    prow = next(r for r in csv.DictReader((out / "paired.csv").open())
                if r["metric"] == "accuracy")
    assert float(prow["mean_diff"]) == pytest.approx(pairs["accuracy"]["diff"]["mean"])
    md = (out / "summary.md").read_text()
    cnn_acc = hand[("cnn", "accuracy")]
    assert f"{np.mean(cnn_acc):.4f} ± {np.std(cnn_acc, ddof=1):.4f}" in md
    assert "cnn − dnn" in md and "cnn − dnn" in res.stdout
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pair_option_and_split(sweep_dir, tmp_path):
    runs = S.load_runs([sweep_dir])
    s = S.summarize(runs, split="dev", pairs=S.parse_pairs(["cnn,dnn"]))
    hand = _by_hand(sweep_dir, "dev")
    p = next(p for p in s.pairs if p.metric == "accuracy")
    d = np.array(hand[("dnn", "accuracy")]) - np.array(hand[("cnn", "accuracy")])
    assert (p.a, p.b) == ("cnn", "dnn") and p.diff.mean == pytest.approx(d.mean())
    assert S.summarize(runs, pairs=S.parse_pairs(["none"])).pairs == []
    assert S.summarize(runs, pairs=[("dnn", "cnn32")]).missing_pairs == ["cnn32 − dnn"]
    with pytest.raises(ConfigError, match="two different models"):
        S.parse_pairs(["cnn"])


def test_runs_with_another_setting_are_a_separate_variant(sweep_dir, tmp_path, capsys):
    """A sweep over optimizer.lr must not mix the learning rates; a repeated run counts once."""
    root = tmp_path / "runs"
    for model in MODELS:
        for seed in SEEDS:
            src = sweep_dir / f"numba_{model}_seed{seed}"
            shutil.copytree(src, root / f"{model}_{seed}")
            lr = root / f"{model}_{seed}_lr"
            shutil.copytree(src, lr)
            cfg = (lr / "config.yaml").read_text()
            (lr / "config.yaml").write_text(cfg.replace("lr: 0.001", "lr: 0.01"))
    shutil.copytree(sweep_dir / "numba_cnn_seed0", root / "again")
    runs = S.load_runs([root])
    assert "repeats" in capsys.readouterr().err
    s = S.summarize(runs)
    assert sorted((g.model, g.variant, len(g.seeds)) for g in s.groups) == [
        ("cnn", "optimizer.lr=0.001", 3), ("cnn", "optimizer.lr=0.01", 3),
        ("dnn", "optimizer.lr=0.001", 3), ("dnn", "optimizer.lr=0.01", 3)]
    assert len(s.pairs) == 6  # 3 metrics x 2 learning rates, each paired within its variant


def test_describe_matches_scipy():
    x = [0.97, 0.975, 0.971, 0.98, 0.969]
    s = S.describe(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((lo, hi))
    one = S.describe([0.5])
    assert one.n == 1 and math.isnan(one.sd) and one.ci() == "n/a" and one.pm() == "0.5000"


def test_no_runs_is_one_line_and_exit_2(data_env, tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (["summarize", str(tmp_path / "empty")], ["summarize", str(tmp_path / "nope")],
                 ["summarize", str(tmp_path / "empty"), "--pair", "cnn"]):
        res = run_cli(args, data_env)
        assert res.returncode == 2, res.stderr
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("cnnvsdnn: error: ")
    assert not (tmp_path / "empty" / "summary").exists()


def test_corrupt_metrics_is_a_data_error(tmp_path):
    from cnnvsdnn.errors import DataError

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text('{"dataset": "mnist"')
    with pytest.raises(DataError, match="metrics.json"):
        S.load_runs([tmp_path])
