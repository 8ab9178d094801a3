"""The report under two protocols (issue: explain every published number): our corrected and
study-protocol runs side by side, the "why they differ" section computed from paired runs,
and the planner's runs for each variant (real runs of the real command on synthetic MNIST)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnvsdnn.analysis.experiments import load_experiment
from cnnvsdnn.evaluation.stats import paired
from tests.conftest import TINY, run_cli

PUBLISHED = load_experiment("mnist").published
SHORT = [a for a in TINY if not a.startswith(("train.steps", "train.eval_every"))]
SHORT += ["train.steps=10", "train.eval_every=5"]  # short enough for seeds to differ


def _env(data_dir: Path) -> dict:
    import os

    env = dict(os.environ, CNNVSDNN_DATA_DIR=str(data_dir))
    env.pop("HYDRA_FULL_ERROR", None)
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """DNN seeds 0,1 under both protocols, and the study's protocol without the dev split
    (two multiruns); the run directories renamed as the planner names them."""
    root = tmp_path_factory.mktemp("protocols")
    env = _env(data_dir)
    for name, extra in (("both", ["protocol=corrected,study"]),
                        ("without", ["protocol=study", "train.dev_split=random"])):
        res = run_cli(["train", "-m", "model=dnn", "seed=0,1", *extra, *SHORT,
                       f"hydra.sweep.dir={root / name}",
                       "hydra.sweep.subdir=${protocol.name}_seed${seed}"],
                      env)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    planned = root / "runs" / "mnist"
    planned.mkdir(parents=True)
    for seed in (0, 1):
        for src, dst in ((f"both/corrected_seed{seed}", f"numba_dnn_seed{seed}"),
                         (f"both/study_seed{seed}", f"numba_dnn_study_seed{seed}"),
                         (f"without/study_seed{seed}",
                          f"numba_dnn_study-dev_split_seed{seed}")):
            shutil.copytree(root / src, planned / dst)
    return {"root": root, "env": env, "planned": planned}


def _metrics(d: Path) -> dict:
    return json.loads((d / "metrics.json").read_text())


def test_report_of_run_dirs_puts_the_protocols_side_by_side(runs, tmp_path):
    res = run_cli(["report", str(runs["planned"]), "--out", str(tmp_path / "out")], runs["env"])
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out" / "mnist"
    md = (out / "accuracy.md").read_text()
    assert ("| Split | DNN corrected | DNN study protocol | study | Δ corrected | "
            "Δ study protocol |") in md.splitlines()[2]
    rows = list(csv.DictReader(open(out / "accuracy.csv")))
    m = {(p, s): [_metrics(runs["planned"] / f"numba_dnn{p}_seed{s}")
                  for s in (0, 1)] for p in ("", "_study") for s in ("test",)}
    for proto, suffix in (("corrected", ""), ("study protocol", "_study")):
        row = next(r for r in rows if r["split"] == "Test" and r["model"] == "DNN"
                   and r["protocol"] == proto)
        acc = [x["splits"]["test"]["accuracy"] for x in m[(suffix, "test")]]
        assert float(row["ours"]) == pytest.approx(np.mean(acc))
        assert float(row["study"]) == PUBLISHED["accuracy"]["DNN"]["test"]
        assert row["runs"] == "2"
    report = (out / "report.md").read_text()
    assert "## Why they differ" in report
    assert "training_numba_dnn_study_seed1.png" in report  # a figure per run of the tables


def test_why_section_is_the_paired_differences_of_the_runs(runs, tmp_path):
    res = run_cli(["report", str(runs["planned"]), "--out", str(tmp_path / "out")], runs["env"])
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "out" / "mnist" / "report.md").read_text().splitlines()

    def acc(stem, split):
        return [_metrics(runs["planned"] / f"{stem}_seed{s}")["splits"][split]["accuracy"]
                for s in (0, 1)]

    def cell(a, b):
        s = paired(a, b)[0]
        return f"{s.mean:+.4f} ± {s.sd:.4f}"

    total = next(ln for ln in lines if ln.startswith("| DNN | all (the study's protocol)"))
    split_row = next(ln for ln in lines if ln.startswith("| DNN | `train.dev_split`: random → "
                                                         "last | study − (study without"))
    for split in ("train", "dev", "test"):
        assert cell(acc("numba_dnn", split), acc("numba_dnn_study", split)) in total
        assert cell(acc("numba_dnn_study-dev_split", split),
                    acc("numba_dnn_study", split)) in split_row
    # switches without runs show n/a; the verdict compares the published values with the seeds
    add_row = next(ln for ln in lines if "`optimizer.eps_sign`" in ln and "corrected +" in ln)
    assert add_row.count("n/a") == 3
    test = next(ln for ln in lines if ln.startswith("| DNN | Test | 0.9772 |"))
    study = acc("numba_dnn_study", "test")
    assert f"{np.mean(study):.4f} ± {np.std(study, ddof=1):.4f}" in test


def test_planner_trains_each_variant_under_its_name_and_reuses_finished_ones(runs, tmp_path):
    exp = tmp_path / "tiny.py"
    exp.write_text(f"DATASET = 'mnist'\nSEEDS = [0, 1]\nRUNS = {{'DNN': ['model=dnn', "
                   f"*{SHORT!r}]}}\nPROTOCOLS = ['corrected', 'study']\n"
                   f"ATTRIBUTION = ['remove']\nPUBLISHED = {PUBLISHED!r}\n")
    res = run_cli(["report", "--experiment", str(exp), "--runs-dir", str(runs["root"] / "runs"),
                   "--out", str(tmp_path / "out"), "--no-train"], runs["env"])
    assert res.returncode == 0, res.stderr
    for stem in ("numba_dnn", "numba_dnn_study", "numba_dnn_study-dev_split"):
        for seed in (0, 1):
            assert f"reusing {runs['planned'] / f'{stem}_seed{seed}'}" in res.stdout
    for stem in ("numba_dnn_study-eps_sign", "numba_dnn_study-last_batch"):
        assert f"no finished run in {runs['planned'] / f'{stem}_seed0'}" in res.stdout
    assert res.stdout.count("reusing") == 6
