"""``cnnvsdnn report``: the study's tables from tiny real runs (trained by the real command on
synthetic MNIST), beside the published values; reuse, resume, mean ± sd, and the errors."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cnnvsdnn import data
from cnnvsdnn.analysis.experiments import load_experiment
from tests.conftest import TINY, run_cli

PUBLISHED = load_experiment("mnist").published
PNG = b"\x89PNG\r\n\x1a\n"


def _report(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """The report command in its own process, as a user (or make) runs it."""
    return run_cli(["report", *map(str, args)], env)


def _experiment(path: Path, dataset="mnist", steps=30, runs=("DNN", "CNN")) -> Path:
    """A tiny experiment file: the study's MNIST columns and values, a few training steps."""
    tiny = [o for o in TINY if not o.startswith(("train.steps", "train.figures"))] + \
        [f"train.steps={steps}"]  # and the runs' figures, as a user's (the report copies one)
    columns = {r: ["model=" + r.lower(), *tiny] for r in runs}
    path.write_text(
        f"DATASET = {dataset!r}\n"
        f"TABLES = {{'accuracy': 'VI', 'classes': 'VII'}}\n"
        f"RUNS = {columns!r}\n"
        f"PUBLISHED = {PUBLISHED!r}\n"
        f"NOTES = ['a tiny experiment']\n")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data_dir):
    """Train the tiny experiment's two runs and report them, once for the module."""
    root = tmp_path_factory.mktemp("report")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["CNNVSDNN_DATA_DIR"] = str(data_dir)
    exp = _experiment(root / "tiny.py")
    args = ["--experiment", exp, "--runs-dir", root / "runs", "--out", root / "report"]
    res = _report(args, env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    runs = {label: root / "runs" / "mnist" / f"numba_{m}_seed0"
            for label, m in (("DNN", "dnn"), ("CNN", "cnn"))}
    metrics = {label: json.loads((d / "metrics.json").read_text()) for label, d in runs.items()}
    return {"root": root, "env": env, "args": args, "res": res, "runs": runs,
            "metrics": metrics, "out": root / "report" / "mnist", "exp": exp}


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_experiment_trains_its_runs_and_writes_every_file(tiny):
    out = tiny["out"]
    assert "training mnist DNN seed 0" in tiny["res"].stdout
    assert "training mnist CNN seed 0" in tiny["res"].stdout
    for stem in ("accuracy", "per_class"):
        for ext in ("md", "csv", "tex"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    for png in ("training_numba_dnn_seed0", "training_numba_cnn_seed0", "f1_per_class",
                "gains_numba_cnn_seed0", "confusion_numba_dnn_seed0", "mistakes_numba_cnn_seed0"):
        assert (out / f"{png}.png").read_bytes()[:8] == PNG, png
    text = (out / "report.md").read_text()
    assert "Table VI (MNIST)" in text and "Table VII (MNIST)" in text
    assert "a tiny experiment" in text and "![f1_per_class](f1_per_class.png)" in text
    for d in tiny["runs"].values():
        assert str(d) in text
    assert (tiny["metrics"]["DNN"]["model"], tiny["metrics"]["CNN"]["model"]) == ("dnn", "cnn")


def test_accuracy_table_is_ours_beside_the_published_values(tiny):
    out, metrics = tiny["out"], tiny["metrics"]
    rows = _rows(out / "accuracy.csv")
    assert [(r["split"], r["model"]) for r in rows] == [
        (s, m) for s in ("Training", "Development", "Test") for m in ("DNN", "CNN")]
    md = (out / "accuracy.md").read_text()
    tex = (out / "accuracy.tex").read_text()
    for split, name in (("train", "Training"), ("dev", "Development"), ("test", "Test")):
        cells = []
        for model in ("DNN", "CNN"):
            row = next(r for r in rows if r["split"] == name and r["model"] == model)
            ours = metrics[model]["splits"][split]["accuracy"]
            pub = PUBLISHED["accuracy"][model][split]
            assert float(row["ours"]) == ours and float(row["study"]) == pub
            assert float(row["difference"]) == pytest.approx(ours - pub, abs=1e-12)
            assert row["runs"] == "1" and row["ours_sd"] == ""
            cells.append(f"{ours:.4f} | {pub:.4f} | {ours - pub:+.4f}")
        assert f"| {name} | {' | '.join(cells)} |" in md
        ours = metrics["DNN"]["splits"][split]["accuracy"]
        assert f"{name} & {ours:.4f} & {PUBLISHED['accuracy']['DNN'][split]:.4f} & " in tex
    assert "\\begin{tabular}{l rrr rrr}" in tex and "$\\Delta$" in tex


def test_per_class_table_is_ours_beside_the_published_values(tiny):
    out, metrics = tiny["out"], tiny["metrics"]
    rows = _rows(out / "per_class.csv")
    assert len(rows) == 11 * 2 * 2  # classes + weighted average, F1 and AR, DNN and CNN
    test = metrics["CNN"]["splits"]["test"]
    for row in rows:
        m = metrics[row["model"]]["splits"]["test"]
        key = row["metric"].lower()
        if row["class"] == "Weighted average":
            ours, pub = m[f"{key}_weighted"], PUBLISHED[f"{key}_weighted"][row["model"]]
            assert row["count"] == str(test["n"])
        else:
            i = int(row["class"])
            ours, pub = m[key][i], PUBLISHED[key][row["model"]][i]
            assert row["count"] == str(test["count"][i])
        assert float(row["ours"]) == ours and float(row["study"]) == pub
        assert float(row["difference"]) == pytest.approx(ours - pub, abs=1e-12)
    md = (out / "per_class.md").read_text()
    f1 = [f"{test['f1'][7]:.4f}", f"{PUBLISHED['f1']['CNN'][7]:.4f}",
          f"{test['f1'][7] - PUBLISHED['f1']['CNN'][7]:+.4f}"]
    assert " | ".join(f1) in next(ln for ln in md.splitlines() if ln.startswith("| 7 |"))
    # the synthetic test set's counts are not the study's: the report says so
    assert "differ from the study's" in (out / "report.md").read_text()


def test_second_report_trains_nothing(tiny):
    files = [d / f for d in tiny["runs"].values() for f in ("metrics.json", "log.h5")]
    before = [f.stat().st_mtime_ns for f in files]
    res = _report(tiny["args"], tiny["env"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("reusing") == 2 and "training mnist" not in res.stdout
    assert [f.stat().st_mtime_ns for f in files] == before


def test_unfinished_run_is_resumed_to_the_same_numbers(tiny, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(tiny["root"] / "runs", runs)
    (runs / "mnist" / "numba_cnn_seed0" / "metrics.json").unlink()  # as if killed at the end
    dnn = runs / "mnist" / "numba_dnn_seed0" / "metrics.json"
    dnn_mtime = dnn.stat().st_mtime_ns
    res = _report(["--experiment", tiny["exp"], "--runs-dir", runs, "--out", tmp_path / "out"],
                  tiny["env"])
    assert res.returncode == 0, res.stderr
    assert "resuming mnist CNN seed 0" in res.stdout and "reusing" in res.stdout
    again = json.loads((runs / "mnist" / "numba_cnn_seed0" / "metrics.json").read_text())
    assert again["splits"] == tiny["metrics"]["CNN"]["splits"]
    assert dnn.stat().st_mtime_ns == dnn_mtime


def test_run_with_another_config_is_refused_not_overwritten(tiny, tmp_path):
    exp = _experiment(tmp_path / "tiny40.py", steps=40)
    res = _report(["--experiment", exp, "--runs-dir", tiny["root"] / "runs", "--out",
                   tmp_path / "out"], tiny["env"])
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnvsdnn: error: "), res.stderr
    assert "another config (train.steps differ)" in lines[0]
    assert tiny["metrics"]["DNN"]["steps"] == 30 and not (tmp_path / "out").exists()



def test_run_of_another_engine_revision_is_refused_not_reused(tiny, tmp_path):
    """A finished numba run made by an engine that computes differently is never reused."""
    from cnnvsdnn.engines.numba import REVISION

    runs = tmp_path / "runs"
    shutil.copytree(tiny["root"] / "runs", runs)
    f = runs / "mnist" / "numba_dnn_seed0" / "metrics.json"
    m = json.loads(f.read_text())
    assert m["engine_revision"] == REVISION  # finished runs record it
    del m["engine_revision"]  # as written before revisions were recorded
    f.write_text(json.dumps(m))
    res = _report(["--experiment", tiny["exp"], "--runs-dir", runs, "--out", tmp_path / "out"],
                  tiny["env"])
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnvsdnn: error: "), res.stderr
    assert f"engine revision 1, this cnnvsdnn's is {REVISION}" in lines[0]
    assert json.loads(f.read_text()) == m and not (tmp_path / "out").exists()


def test_multirun_dir_gives_mean_and_sd_over_seeds(tiny, tmp_path):
    """A sweep of two DNN seeds (the second one's numbers shifted) and no CNN or Keras run."""
    sweep = tmp_path / "multirun"
    shutil.copytree(tiny["runs"]["DNN"], sweep / "0_mnist_dnn_seed0")
    shutil.copytree(tiny["runs"]["DNN"], sweep / "1_mnist_dnn_seed1")
    m1 = json.loads((sweep / "1_mnist_dnn_seed1" / "metrics.json").read_text())
    m1["seed"] = 1
    for split in m1["splits"].values():
        split["accuracy"] -= 0.05
    (sweep / "1_mnist_dnn_seed1" / "metrics.json").write_text(json.dumps(m1))
    res = _report([sweep, "--out", tmp_path / "out"], tiny["env"])
    assert res.returncode == 0, res.stderr

    out = tmp_path / "out" / "mnist"
    acc = [tiny["metrics"]["DNN"]["splits"]["test"]["accuracy"], m1["splits"]["test"]["accuracy"]]
    mean, sd = float(np.mean(acc)), float(np.std(acc, ddof=1))
    assert math.isclose(sd, 0.05 / math.sqrt(2))
    test = next(ln for ln in (out / "accuracy.md").read_text().splitlines()
                if ln.startswith("| Test |"))
    # columns of the study (mnist experiment), each under the corrected protocol and the
    # study's: DNN (corrected) as mean ± sd; no study-protocol, CNN or Keras runs
    assert test == (f"| Test | {mean:.4f} ± {sd:.4f} | n/a | 0.9772 | {mean - 0.9772:+.4f} | "
                    f"n/a | n/a | n/a | 0.9806 | n/a | n/a | n/a | n/a | 0.9795 | n/a | n/a |")
    row = next(r for r in _rows(out / "accuracy.csv") if r["split"] == "Test"
               and r["model"] == "DNN" and r["protocol"] == "corrected")
    assert row["runs"] == "2" and float(row["ours_sd"]) == pytest.approx(sd)
    assert f"{mean:.4f} $\\pm$ {sd:.4f}" in (out / "accuracy.tex").read_text()
    assert "DNN (corrected): mean ± sd (sample sd) over 2 runs, seeds [0, 1]" in (
        out / "report.md").read_text()
    assert {p.name for p in out.glob("training_*.png")} == {
        "training_numba_dnn_seed0.png", "training_numba_dnn_seed1.png"}


@pytest.mark.parametrize("make_dir", [lambda p: p.mkdir(), lambda p: None],
                         ids=["empty_dir", "missing_path"])
def test_no_runs_is_one_line_and_exit_2(tmp_path, data_env, make_dir):
    empty = tmp_path / "empty"
    make_dir(empty)
    res = _report([empty, "--out", tmp_path / "out"], data_env)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnvsdnn: error: "), res.stderr
    assert str(empty) in lines[0]
    assert not (tmp_path / "out").exists()


def test_dataset_that_cannot_be_had_is_skipped(tmp_path, monkeypatch, capsys):
    """No CIFAR-10 files and no host to fetch them from: a message, exit 0, nothing trained."""
    import dataclasses

    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNVSDNN_MIRROR", raising=False)
    monkeypatch.setitem(data.DATASETS, "cifar10",
                        dataclasses.replace(data.DATASETS["cifar10"], urls=[]))
    exp = _experiment(tmp_path / "c10.py", dataset="cifar10")
    from cnnvsdnn.cli import main

    rc = main(["report", "--experiment", str(exp), "--runs-dir", str(tmp_path / "runs"),
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0
    assert "skipping cifar10, no finished runs" in err
    assert "2 run(s) not trained: cifar10 cannot be had (cifar10: cannot get" in err
    assert not list((tmp_path / "runs").rglob("metrics.json"))
    assert not (tmp_path / "out").exists()
