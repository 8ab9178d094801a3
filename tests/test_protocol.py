"""The study's protocol (``protocol=study``) and each of its switches alone: the CIFAR-10
decoding the study's code did, the development split, Adam's ε sign, the batch filling; the
config group, the variants a report trains, and the reuse of runs made before the keys existed.
"""

from __future__ import annotations

import json
import pickle
import tarfile

import numpy as np
import pytest
from omegaconf import OmegaConf

from cnnvsdnn import data
from cnnvsdnn.analysis import protocol as P
from cnnvsdnn.config import SAME_RESULT, compose_config, config_diff, with_defaults
from cnnvsdnn.config.compose import flat_config
from cnnvsdnn.engines.numba import Adam
from cnnvsdnn.engines.numpy_twin import adam_step
from cnnvsdnn.errors import ConfigError
from cnnvsdnn.run.batches import BatchOrder
from cnnvsdnn.run.files import CONFIG, METRICS, run_state
from cnnvsdnn.run.schedule import init_scheme, schedule
from tests.synthetic import CIFAR10_TARBALL, write_cifar10


# --- the config group ---------------------------------------------------------------------------
def _flat(overrides):
    cfg = compose_config(overrides)
    return flat_config(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


STUDY = {"train.dev_split": "last", "train.last_batch": "same_epoch",
         "optimizer.eps_sign": "minus", "data.cifar10_decode": "study"}


def test_protocol_study_sets_every_switch_and_each_can_be_set_alone():
    corrected, study = _flat([]), _flat(["protocol=study"])
    assert corrected["protocol.name"] == "corrected" and study["protocol.name"] == "study"
    changed = {k for k in study if study[k] != corrected[k]} - {"protocol.name"}
    assert changed == set(STUDY)
    assert {k: study[k] for k in STUDY} == STUDY
    for key, value in STUDY.items():  # each alone, on the corrected protocol ...
        alone = _flat([f"{key}={value}"])
        assert {k for k in alone if alone[k] != corrected[k]} == {key}
        # ... and the study's protocol without it
        without = _flat(["protocol=study", f"{key}={corrected[key]}"])
        assert {k for k in without if without[k] != study[k]} == {key}


@pytest.mark.parametrize("key, bad", [("optimizer.eps_sign", "both"),
                                      ("train.last_batch", "wrap"),
                                      ("data.cifar10_decode", "hwc"),
                                      ("model.init", "xavier")])
def test_bad_switch_values_are_config_errors(key, bad):
    with pytest.raises(ConfigError, match=key.rsplit(".", 1)[1]):
        compose_config([f"{key}={bad}"])


@pytest.mark.parametrize("overrides, keys", [
    (["dataset=mnist"], {"train.dev_split", "train.last_batch", "optimizer.eps_sign"}),
    (["dataset=cifar10"], set(STUDY)),
    (["dataset=mnist", "engine=keras"], {"train.dev_split"}),  # Keras's fit: its own batches, Adam
    (["dataset=cifar10", "engine=keras"], {"train.dev_split", "data.cifar10_decode"}),
    (["dataset=mnist", "engine=keras", "engine.protocol=ours"],
     {"train.dev_split", "train.last_batch", "optimizer.eps_sign"}),
])
def test_switches_are_the_differences_a_run_uses(overrides, keys):
    assert {s.key for s in P.switches(overrides)} == keys


def test_variants_are_canonical_and_their_overrides_give_them_back():
    for over in (["dataset=mnist"], ["dataset=cifar10"], ["dataset=mnist", "engine=keras"]):
        sw = P.switches(over)
        variants = P.planned_variants(["corrected", "study"], ["add", "remove"], sw)
        assert variants[:2] == ["corrected", "study"] and len(set(variants)) == len(variants)
        # one per switch and design, except with one switch: corrected + it *is* the study's
        assert len(variants) == (2 + 2 * len(sw) if len(sw) > 1 else 2)
        for v in variants:
            flat = with_defaults(_flat([*over, *P.variant_overrides(v, sw)]))
            assert P.variant_of(flat, sw) == v
    sw = P.switches(["dataset=mnist"])
    assert P.planned_variants(["corrected", "study"], ["remove"], sw) == [
        "corrected", "study", "study-eps_sign", "study-dev_split", "study-last_batch"]
    assert P.variant_overrides("corrected+eps_sign", sw) == ["optimizer.eps_sign=minus"]


# --- runs made before the keys existed are reused ---------------------------------------------
OLD_NUMBA = """\
dataset: {name: mnist, steps: 2000}
model:
  name: dnn
  layers: [{type: flatten}, {type: dense, units: 10}]
optimizer: {name: adam, lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1.0e-08}
engine: {name: numba, threads: 2, protocol: study, epochs: null, fit_batch_size: 32}
train: {steps: 2000, batch_size: 128, eval_every: 100, dev_size: 5000, dev_split: random,
        eval_chunk: 1000, resume: false, checkpoint_every: 500, save_params: true}
data: {verify: true, mirror: null}
seed: 0
progress: true
"""


def _now(overrides):
    over = ["model=dnn", "model.layers=[{type: flatten}, {type: dense, units: 10}]", *overrides]
    return OmegaConf.to_yaml(compose_config(over), resolve=True)


def test_a_run_from_before_the_protocol_keys_is_the_corrected_protocol(tmp_path):
    assert config_diff(OLD_NUMBA, _now([]), SAME_RESULT) == []
    assert config_diff(OLD_NUMBA, _now(["protocol=study"]), SAME_RESULT) == [
        "optimizer.eps_sign", "train.dev_split", "train.last_batch"]
    assert config_diff(OLD_NUMBA, _now(["model.init=torch"]), SAME_RESULT) == ["model.init"]
    # keys the run does not use: the decoding of another dataset, another engine's batch size
    assert config_diff(OLD_NUMBA, _now(["data.cifar10_decode=study",
                                        "engine.fit_batch_size=7"]), SAME_RESULT) == []
    # the planner reuses such a finished run, and refuses it for the study's protocol
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG).write_text(OLD_NUMBA)
    split = {"accuracy": 0.9, "f1_weighted": 0.9, "ar_weighted": 0.9, "f1": [0.9] * 10}
    (run / METRICS).write_text(json.dumps({"dataset": "mnist", "model": "dnn", "seed": 0,
                                           "engine": "numba", "engine_revision": 1,
                                           "splits": dict.fromkeys(("train", "dev", "test"),
                                                                   split)}))
    assert run_state(run, _now([]), {"numba": 1}) == "done"
    with pytest.raises(ConfigError, match="optimizer.eps_sign, train.dev_split, "
                                          "train.last_batch differ"):
        run_state(run, _now(["protocol=study"]), {"numba": 1})


def test_a_keras_run_with_the_old_batch_size_is_not_reused():
    old = OLD_NUMBA.replace("name: numba", "name: keras")
    assert config_diff(old, _now(["engine=keras"]), SAME_RESULT) == ["engine.fit_batch_size"]
    assert config_diff(old, _now(["engine=keras", "engine.fit_batch_size=32"]),
                       SAME_RESULT) == []


# --- the CIFAR-10 decoding ------------------------------------------------------------------
def _official_rows(tarball):
    """Each split's rows (N, 3072) straight from the tarball's pickles, as the study read them."""
    rows = {}
    with tarfile.open(tarball) as tar:
        for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]),
                             ("test", ["test_batch"])):
            parts = [pickle.loads(tar.extractfile(f"cifar-10-batches-py/{n}").read(),
                                  encoding="bytes")[b"data"] for n in names]
            rows[split] = np.concatenate(parts)
    return rows


def test_study_decoding_gives_exactly_the_pixels_of_the_studys_reshape(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(tmp_path))
    written = write_cifar10(tmp_path / "cifar10", n_train=600, n_test=120, seed=3)
    rows = _official_rows(tmp_path / "cifar10" / CIFAR10_TARBALL)
    # what the study's load_cifar10 fed its networks (NCHW, before /255), as NHWC
    study = {s: rows[s].reshape(-1, 32, 32, 3).transpose(0, 3, 1, 2).transpose(0, 2, 3, 1)
             for s in rows}
    got = data.load_splits("cifar10", dev_size=100, dev_mode="last", verify=False,
                           progress=False, cifar10_decode="study")
    np.testing.assert_array_equal(got.train[0], study["train"][:500])
    np.testing.assert_array_equal(got.dev[0], study["train"][500:])
    np.testing.assert_array_equal(got.test[0], study["test"])
    np.testing.assert_array_equal(got.train[1], written["train_y"][:500])
    # pixel (h, w, c) is byte 96h + 3w + c of the row
    n, h, w, c = 7, 12, 5, 2
    assert got.test[0][n, h, w, c] == rows["test"][n, 96 * h + 3 * w + c]
    # the official decoding is untouched (and the study's is not the official one)
    planar = data.load_splits("cifar10", dev_size=100, dev_mode="last", verify=False,
                              progress=False)
    np.testing.assert_array_equal(planar.test[0], written["test_X"])
    np.testing.assert_array_equal(planar.test[0],
                                  rows["test"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert not np.array_equal(planar.test[0], got.test[0])
    again = data.load_splits("cifar10", dev_size=100, dev_mode="last", verify=False,
                             progress=False, cifar10_decode="study")
    np.testing.assert_array_equal(again.test[0], got.test[0])


def test_study_decoding_leaves_other_datasets_alone(data_env):
    a = data.load_splits("mnist", dev_size=200, verify=False, progress=False)
    b = data.load_splits("mnist", dev_size=200, verify=False, progress=False,
                         cifar10_decode="study")
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0])


# --- the development split ------------------------------------------------------------------
def test_dev_split_last_is_the_last_images_in_file_order(data_env):
    ds = data.load_dataset("mnist", verify=False, progress=False)
    s = data.load_splits("mnist", dev_size=200, dev_mode="last", verify=False, progress=False)
    np.testing.assert_array_equal(s.dev[0], ds.train_X[-200:])
    np.testing.assert_array_equal(s.train[0], ds.train_X[:-200])
    np.testing.assert_array_equal(s.dev[1], ds.train_y[-200:])
    r = data.load_splits("mnist", dev_size=200, dev_mode="random", verify=False, progress=False)
    assert not np.array_equal(r.dev[0], s.dev[0])


# --- Adam's epsilon sign ----------------------------------------------------------------------
def test_eps_sign_minus_numba_kernel_agrees_with_the_numpy_twin():
    """Seven steps of the numba kernel (float32) against the twin (float64), both signs; a
    quarter of the weights get gradients of ~1e-9 (√v̂ < ε: the study's sign steps uphill)."""
    n = 4000
    p0 = np.zeros(n, np.float32)  # float32 holds the small updates to ~1e-7 of their size
    tiny = np.arange(n) < n // 4
    scale = np.where(tiny, 1e-9, 1.0)
    moves = {}
    for sign in ("plus", "minus"):
        opt, p = Adam(n, eps_sign=sign), p0.copy()
        q, m, v = p0.astype(np.float64), np.zeros(n), np.zeros(n)
        grads = np.random.default_rng(1)
        signs = grads.choice([-1, 1], n)  # each weight's gradient keeps its sign
        for t in range(1, 8):
            g = (grads.uniform(0.5, 1.5, n) * signs * scale).astype(np.float32)
            opt.step(p, g)
            q, m, v = adam_step(q, g.astype(np.float64), m, v, t, eps_sign=sign)
        np.testing.assert_allclose(p - p0, q - p0, rtol=1e-4, atol=1e-9)
        moves[sign] = q - p0
    diff = np.abs(moves["minus"] - moves["plus"])
    assert diff[tiny].min() > 1e-4 and diff[~tiny].max() < 1e-9  # only where √v̂ ~ ε
    # a weight steps the other way where √v̂ < ε
    assert np.all(np.sign(moves["minus"][tiny]) != np.sign(moves["plus"][tiny]))


def test_eps_sign_minus_steps_uphill_and_blows_up_near_eps():
    """A gradient below ε: the textbook step goes downhill, the study's sign uphill. A gradient
    just above ε: the study's step is ~1/(√v̂ − ε) times larger than any textbook step (≤ lr)."""
    for sign, direction in (("plus", -1.0), ("minus", 1.0)):
        p = np.zeros(1, np.float32)
        Adam(1, eps_sign=sign).step(p, np.array([1e-9], np.float32))
        assert np.sign(p[0]) == direction
        q, _, _ = adam_step(np.zeros(1), np.array([1e-9]), 0.0, 0.0, 1, eps_sign=sign)
        assert np.sign(q[0]) == direction
    p = np.zeros(1, np.float32)
    Adam(1, eps_sign="minus").step(p, np.array([1.001e-8], np.float32))
    q, _, _ = adam_step(np.zeros(1), np.array([1.001e-8]), 0.0, 0.0, 1, eps_sign="minus")
    assert q[0] == pytest.approx(-1e-3 * 1.001e-8 / 0.001e-8, rel=1e-9)  # -1.001: 1000 lr
    # float32's β2 is 0.99900001: √v̂ − ε, a difference of 1e-11, carries it as 0.7%
    assert p[0] == pytest.approx(q[0], rel=1e-2)
    plus = np.zeros(1, np.float32)
    Adam(1).step(plus, np.array([1.001e-8], np.float32))
    assert abs(plus[0]) < 1e-3 < abs(p[0]) / 500


def test_eps_sign_reaches_the_engines_through_the_schedule():
    for over, sign in (([], "plus"), (["protocol=study"], "minus"),
                       (["optimizer.eps_sign=minus"], "minus")):
        assert schedule(compose_config(over), 1000).adam.eps_sign == sign
        assert schedule(compose_config(over), 1000).adam.signed_eps == (
            1e-8 if sign == "plus" else -1e-8)


# --- the batch filling ------------------------------------------------------------------------
def _old_batch_order(n, b, rng):
    """The corrected protocol's batch order as it was before the study's filling existed."""
    order, pos = rng.permutation(n), 0
    while True:
        if pos + b <= n:
            pos += b
            yield order[pos - b:pos]
            continue
        head = order[pos:]
        order = rng.permutation(n)
        pos = b - head.size
        yield np.concatenate([head, order[:pos]])


@pytest.mark.parametrize("n, b", [(10, 4), (12, 4), (55, 8), (7, 7)])
def test_same_epoch_fills_the_last_batch_from_the_same_epochs_order(n, b):
    batches = BatchOrder(n, b, np.random.default_rng(1), last="same_epoch")
    per_epoch = -(-n // b)
    firsts = []
    for _ in range(3):
        epoch = [next(batches) for _ in range(per_epoch)]
        assert all(len(x) == b for x in epoch)
        flat = np.concatenate(epoch)
        np.testing.assert_array_equal(np.sort(flat[:n]), np.arange(n))  # one pass ...
        np.testing.assert_array_equal(flat[n:], flat[:per_epoch * b - n])  # ... then its start
        firsts.append(flat[:n])
    assert not np.array_equal(firsts[0], firsts[1])  # each epoch its own order
    # the corrected protocol (next_epoch) draws exactly what it drew before
    new = BatchOrder(n, b, np.random.default_rng(1))
    old = _old_batch_order(n, b, np.random.default_rng(1))
    for _ in range(5 * per_epoch):
        np.testing.assert_array_equal(next(new), next(old))


@pytest.mark.parametrize("last", ["next_epoch", "same_epoch", "smaller"])
def test_batch_labels_are_the_labels_of_the_batch(last):
    """The loop takes each batch's labels from the epoch's labels put in order once (a slice,
    not a gather over the training set): the same labels, batch for batch, across epoch ends,
    and after a checkpoint's state is loaded; the indices are those the order draws alone."""
    labels = np.random.default_rng(2).integers(0, 10, 23)
    a = BatchOrder(23, 5, np.random.default_rng(3), last=last, labels=labels)
    plain = BatchOrder(23, 5, np.random.default_rng(3), last=last)
    for _ in range(12):
        idx, y = a.next_with_labels()
        np.testing.assert_array_equal(idx, next(plain))
        np.testing.assert_array_equal(y, labels[idx])
    b = BatchOrder(23, 5, np.random.default_rng(99), last=last, labels=labels)
    b.load(**{k: (v.copy() if k == "order" else v) for k, v in a.state().items()})
    for _ in range(12):
        (ia, ya), (ib, yb) = a.next_with_labels(), b.next_with_labels()
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(yb, labels[ib])


def test_same_epoch_order_resumes_from_its_state():
    a = BatchOrder(50, 16, np.random.default_rng(4), last="same_epoch")
    for _ in range(5):
        next(a)
    b = BatchOrder(50, 16, np.random.default_rng(99), last="same_epoch")
    b.load(**{"order": a.state()["order"].copy(), "pos": a.state()["pos"],
              "rng_state": a.state()["rng_state"]})
    for _ in range(9):
        np.testing.assert_array_equal(next(a), next(b))


# --- init -----------------------------------------------------------------------------------
def test_init_default_is_he_normal_except_under_keras_fit():
    assert init_scheme(compose_config([])) == "he_normal"
    assert init_scheme(compose_config(["engine=keras"])) == "glorot_uniform"
    assert init_scheme(compose_config(["engine=keras", "engine.protocol=ours"])) == "he_normal"
    for scheme in ("he_normal", "glorot_uniform", "torch"):
        for over in ([], ["engine=keras"], ["engine=keras", "engine.protocol=ours"]):
            cfg = compose_config([*over, f"model.init={scheme}"])
            assert init_scheme(cfg) == schedule(cfg, 1000).init == scheme


# --- the Keras column -------------------------------------------------------------------------
def test_keras_fit_batch_size_is_the_studys_128():
    plan = schedule(compose_config(["engine=keras"]), 55000)
    assert plan.batch_size == 128 and plan.info["batch_size"] == 128
    assert plan.steps == 10 * 430 and plan.last_batch == "smaller"  # 429 batches of 128 + 88
    assert schedule(compose_config(["engine=keras", "engine.fit_batch_size=32"]),
                    55000).batch_size == 32


def test_fit_reported_training_accuracy_is_the_last_epochs_weighted_running_mean(tmp_path):
    """What Keras's fit reports as an epoch's accuracy (the study's Keras "Training" value):
    the mean of that epoch's batch accuracies weighted by batch size (its last batch is
    smaller)."""
    from cnnvsdnn.run.log import RunLog

    n, b, epochs = 1000, 128, 3
    per_epoch = -(-n // b)  # 8 batches: 7 of 128 and one of 104
    acc = np.random.default_rng(0).random(epochs * per_epoch)
    with RunLog(tmp_path / "log.h5", "x: 1") as log:
        log.append_train(np.arange(1, acc.size + 1), np.zeros(acc.size), acc)
    metrics = {"engine": "keras", "protocol": "study", "batch_size": b,
               "splits": {"train": {"n": n}}}
    last = acc[-per_epoch:]
    want = (last[:-1].sum() * b + last[-1] * (n - 7 * b)) / n
    assert P.fit_reported_train_accuracy(tmp_path, metrics) == pytest.approx(want, abs=1e-6)
    assert P.fit_reported_train_accuracy(tmp_path, {**metrics, "engine": "numba"}) is None


# --- the experiments and a run on synthetic CIFAR-10 ---------------------------------------
@pytest.mark.parametrize("name, n_switches", [("mnist", 3), ("fashion_mnist", 3),
                                              ("cifar10", 4), ("svhn", 3)])
def test_shipped_experiments_train_both_protocols_and_each_switch_alone(name, n_switches):
    from cnnvsdnn.analysis.experiments import load_experiment

    exp = load_experiment(name)
    assert exp.protocols == ["corrected", "study"] and len(exp.seeds) == 5
    sw = P.switches([f"dataset={exp.dataset}", *exp.runs["CNN"]])
    assert len(sw) == n_switches
    variants = P.planned_variants(exp.protocols, exp.attribution, sw)
    assert len(variants) == 2 + len(exp.attribution) * n_switches
    keras = P.switches([f"dataset={exp.dataset}", *exp.runs["Keras"]])
    assert {s.key for s in keras} == {"train.dev_split"} | (
        {"data.cifar10_decode"} if name == "cifar10" else set())


def test_study_protocol_run_on_synthetic_cifar10(tmp_path):
    """The whole run under protocol=study on official-format CIFAR-10 files: it records every
    switch, its development split is the last images of data_batch_5, and it finishes."""
    import os

    from tests.conftest import TINY, run_cli

    write_cifar10(tmp_path / "data" / "cifar10", n_train=600, n_test=100, seed=1)
    env = dict(os.environ, CNNVSDNN_DATA_DIR=str(tmp_path / "data"))
    env.pop("HYDRA_FULL_ERROR", None)
    run = tmp_path / "run"
    res = run_cli(["train", "dataset=cifar10", "model=cnn", "protocol=study", *TINY,
                   "progress=false", f"hydra.run.dir={run}"], env)
    assert res.returncode == 0, res.stderr
    flat = P.run_config(run)
    assert {k: flat[k] for k in STUDY} == STUDY
    m = json.loads((run / METRICS).read_text())
    assert (m["splits"]["train"]["n"], m["splits"]["dev"]["n"]) == (400, 200)
    assert P.variant_of(flat, P.switches_of_run(flat)) == "study"
