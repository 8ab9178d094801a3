"""The user's own images: folders of PNG/JPEG written by Pillow and .npz files in tmp dirs,
decoded into the cache (which notices edits), every bad input as a one-line error, and the
command end to end: train on a folder and an .npz, figures, `predict`, `data export` folders."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from PIL import Image

import cnnvsdnn.data as data
from cnnvsdnn.analysis.report import build_report
from cnnvsdnn.config import compose_config, config_diff
from cnnvsdnn.data import custom, folders
from cnnvsdnn.errors import ConfigError, DataError
from cnnvsdnn.run.predict import predict_images, print_predictions
from tests.conftest import N_TEST, N_TRAIN, run_cli
from tests.test_errors import _one_line

CLASSES = ("cat", "dog", "eel")
# a tiny run on a 3-class folder of 8×8 images
SMALL = ["train.steps=30", "train.eval_every=10", "train.dev_size=9", "train.batch_size=16",
         "engine.threads=1"]


def _pixels(i: int, label: int, size=(8, 8), channels=1) -> np.ndarray:
    """A learnable image: noise and a bright block at the class's own place."""
    rng = np.random.default_rng(i)
    a = rng.integers(0, 60, (*size, channels), dtype=np.uint8)
    a[label * 2:label * 2 + 3, 1:4] = 220
    return a


def _save(a: np.ndarray, path: Path, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(path, format=fmt)


def write_folder(root: Path, n: int = 60, channels: int = 1, size=(8, 8), test: int = 0,
                 suffix: str = ".png") -> np.ndarray:
    """``n`` images, image i of class i % 3 named ``<i>.png`` (so file-name order is i), in
    ``root/<class>/`` or, with ``test`` > 0, the last ``test`` in ``root/test/<class>/`` and
    the others in ``root/train/<class>/``. Returns the pixels written (n, H, W, C)."""
    X = np.stack([_pixels(i, i % 3, size, channels) for i in range(n)])
    for i in range(n):
        split = "" if not test else ("test" if i >= n - test else "train")
        _save(X[i], root / split / CLASSES[i % 3] / f"{i:03d}{suffix}")
    return X


def _opts(path, **kw):
    return {"name": kw.pop("name", "folder"), "path": str(path), "size": kw.pop("size", None),
            "test_fraction": kw.pop("test_fraction", None)}


@pytest.fixture()
def root(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(d))
    return d


# --- decoding ------------------------------------------------------------------------------

def test_folder_pixels_classes_order_and_drawn_test_split(root, tmp_path):
    X = write_folder(tmp_path / "imgs", n=60)
    y = np.arange(60) % 3
    ds = data.load_dataset(_opts(tmp_path / "imgs", test_fraction=0.25))
    assert ds.info.classes == list(CLASSES) and ds.info.shape == (8, 8, 1)
    assert ds.info.n_classes == 3 and (ds.info.n_train, ds.info.n_test) == (45, 15)
    train, test = custom.test_split(y, 3, 0.25, "x")
    assert np.bincount(y[test]).tolist() == [5, 5, 5]  # stratified: a quarter of each class
    np.testing.assert_array_equal(ds.train_X, X[train])  # PNG is lossless; file-name order
    np.testing.assert_array_equal(ds.train_y, y[train])
    np.testing.assert_array_equal(ds.test_X, X[test])
    np.testing.assert_array_equal(ds.test_y, y[test])
    # the split is drawn with a fixed seed, not the run's: every run tests on the same images
    cfg = compose_config(["dataset=folder", f"dataset.path={tmp_path / 'imgs'}", "seed=5",
                          "dataset.test_fraction=0.25", *SMALL])
    s = data.load_splits(cfg.dataset, dev_size=9, seed=5)
    np.testing.assert_array_equal(s.test[0], X[test])
    assert len(s.train[1]) + len(s.dev[1]) == 45


def test_given_test_split_colour_and_jpeg(root, tmp_path):
    X = write_folder(tmp_path / "imgs", n=30, channels=3, test=6)
    # a JPEG beside the PNGs of the test split: lossy, so only close
    a = _pixels(99, 1, channels=3)
    _save(a, tmp_path / "imgs" / "test" / "dog" / "zz.jpg", "JPEG")
    ds = data.load_dataset(_opts(tmp_path / "imgs"))
    assert ds.info.shape == (8, 8, 3) and (ds.info.n_train, ds.info.n_test) == (24, 7)
    np.testing.assert_array_equal(ds.train_X, X[:24])
    np.testing.assert_array_equal(ds.test_X[:6], X[24:])
    assert ds.test_y.tolist() == [i % 3 for i in range(24, 30)] + [1]
    assert np.abs(ds.test_X[6].astype(int) - a).mean() < 25


def test_grey_and_colour_images_make_an_rgb_folder(root, tmp_path):
    grey = _pixels(0, 0)
    colour = _pixels(1, 1, channels=3)
    _save(grey, tmp_path / "imgs" / "a" / "0.png")
    _save(colour, tmp_path / "imgs" / "b" / "1.png")
    _save(grey, tmp_path / "imgs" / "a" / "2.png")
    _save(colour, tmp_path / "imgs" / "b" / "3.png")
    ds = data.load_dataset(_opts(tmp_path / "imgs", test_fraction=0.5))
    assert ds.info.shape == (8, 8, 3)
    np.testing.assert_array_equal(ds.train_X[0], np.repeat(grey, 3, axis=2))
    np.testing.assert_array_equal(ds.train_X[1], colour)


def test_size_resizes_with_pillow_bilinear(root, tmp_path):
    write_folder(tmp_path / "imgs", n=12)
    big = _pixels(50, 2, size=(12, 10))
    _save(big, tmp_path / "imgs" / "eel" / "050.png")
    with pytest.raises(DataError, match=r"different sizes .* dataset.size") as e:
        data.load_dataset(_opts(tmp_path / "imgs"))
    assert "\n" not in str(e.value)
    ds = data.load_dataset(_opts(tmp_path / "imgs", size=[6, 7]))
    assert ds.train_X.shape[1:] == (6, 7, 1)
    want = np.asarray(Image.fromarray(big[..., 0]).resize((7, 6), Image.Resampling.BILINEAR))
    everything = np.concatenate([ds.train_X, ds.test_X])
    assert any((x[..., 0] == want).all() for x in everything)


def test_npz_with_and_without_a_test_split(root, tmp_path):
    X = np.stack([_pixels(i, i % 3) for i in range(30)])
    y = np.arange(30) % 3
    np.savez(tmp_path / "a.npz", X=X, y=y)
    ds = data.load_dataset(_opts(tmp_path / "a.npz", name="npz"))
    train, test = custom.test_split(y, 3, 0.2, "x")
    np.testing.assert_array_equal(ds.train_X, X[train])
    np.testing.assert_array_equal(ds.test_y, y[test])
    assert ds.info.classes == ["0", "1", "2"]
    np.savez(tmp_path / "b.npz", X=X[..., 0], y=y, X_test=X[:5, ..., 0], y_test=y[:5],
             classes=np.array(CLASSES))  # (N, H, W) is grey
    ds = data.load_dataset(_opts(tmp_path / "b.npz", name="npz"))
    np.testing.assert_array_equal(ds.train_X, X)
    np.testing.assert_array_equal(ds.test_X, X[:5])
    assert ds.info.classes == list(CLASSES) and ds.info.shape == (8, 8, 1)


# --- bad input: one line each ----------------------------------------------------------------

def _bad_folder(kind):
    def make(d: Path):
        if kind == "missing":
            return d / "nowhere"
        if kind == "npz-missing":
            return d / "nowhere.npz"
        if kind.startswith("npz"):
            X = np.stack([_pixels(i, i % 3) for i in range(12)])
            y = np.arange(12) % 3
            arrays = {"npz-lacks-y": {"X": X},
                      "npz-float": {"X": X / 255.0, "y": y},
                      "npz-2d": {"X": X.reshape(12, -1), "y": y},
                      "npz-negative": {"X": X, "y": y - 1},
                      "npz-float-labels": {"X": X, "y": y.astype(float)},
                      "npz-length": {"X": X, "y": y[:5]},
                      "npz-gap": {"X": X, "y": y * 2},
                      "npz-one-class": {"X": X, "y": y * 0},
                      "npz-half-test": {"X": X, "y": y, "X_test": X},
                      "npz-test-class": {"X": X, "y": y, "X_test": X, "y_test": y + 1},
                      }.get(kind)
            if arrays is None:  # not a zip at all
                (d / "x.npz").write_bytes(b"this is not an npz")
            else:
                np.savez(d / "x.npz", **arrays)
            return d / "x.npz"
        write_folder(d / "f", n=12)
        f = d / "f"
        if kind == "empty-class":
            (f / "fox").mkdir()
            (f / "fox" / "notes.txt").write_text("no images")
        elif kind == "one-class":
            shutil.rmtree(f / "dog")
            shutil.rmtree(f / "eel")
        elif kind == "unreadable":
            (f / "dog" / "999.png").write_bytes(b"not a png at all")
        elif kind == "truncated":
            p = f / "dog" / "001.png"
            p.write_bytes(p.read_bytes()[:60])
        elif kind == "mixed-sizes":
            _save(_pixels(0, 0, size=(9, 8)), f / "cat" / "100.png")
        elif kind == "sixteen-bit":
            Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(f / "cat" / "100.png")
        elif kind == "no-classes":
            for p in list(f.rglob("*.png")):
                p.rename(f / p.name)
            for c in CLASSES:
                (f / c).rmdir()
        elif kind == "test-without-train":
            (f / "test" / "cat").mkdir(parents=True)
        elif kind == "test-class-unknown":
            write_folder(d / "g", n=12, test=3)
            (d / "g" / "test" / "fox").mkdir()
            _save(_pixels(0, 0), d / "g" / "test" / "fox" / "1.png")
            return d / "g"
        return f
    return make


BAD = [  # (kind, dataset kind, words in the message)
    ("missing", "folder", "does not exist"),
    ("empty-class", "folder", "fox holds no PNG or JPEG images (only .txt files)"),
    ("one-class", "folder", "single class folder (cat)"),
    ("unreadable", "folder", "999.png is not a readable PNG or JPEG image"),
    ("truncated", "folder", "001.png is not a readable PNG or JPEG image"),
    ("mixed-sizes", "folder", "different sizes"),
    ("sixteen-bit", "folder", "16-bit"),
    ("no-classes", "folder", "no class subfolders"),
    ("test-without-train", "folder", "no train/"),
    ("test-class-unknown", "folder", "test/fox is not a class"),
    ("npz-missing", "npz", "does not exist"),
    ("npz-lacks-y", "npz", "lacks y"),
    ("npz-float", "npz", "is float64"),
    ("npz-2d", "npz", "expected uint8 (N,H,W,C)"),
    ("npz-negative", "npz", "holds -1"),
    ("npz-float-labels", "npz", "labels must be integer"),
    ("npz-length", "npz", "one label per image"),
    ("npz-gap", "npz", "class 1 of 0..4 has no images"),
    ("npz-one-class", "npz", "single class"),
    ("npz-half-test", "npz", "X_test and y_test"),
    ("npz-test-class", "npz", "y_test holds class 3"),
    ("npz-garbage", "npz", "not a readable .npz"),
]


@pytest.mark.parametrize("kind,name,words", BAD, ids=[b[0] for b in BAD])
def test_bad_data_is_a_one_line_data_error(root, tmp_path, kind, name, words):
    path = _bad_folder(kind)(tmp_path)
    with pytest.raises(DataError) as e:
        data.load_dataset(_opts(path, name=name))
    msg = str(e.value)
    assert words in msg and "\n" not in msg, msg


@pytest.mark.parametrize("overrides,words", [
    (["dataset=folder"], "dataset=folder needs dataset.path"),
    (["dataset.path=x"], "dataset.path is for dataset=folder or dataset=npz"),
    (["dataset=folder", "dataset.path=x", "dataset.test_fraction=1.5"], "between 0 and 1"),
    (["dataset=folder", "dataset.path=x", "dataset.size=[0,3]"], "between 1 and 4096"),
    (["dataset=folder", "dataset.path=x", "dataset.size=abc"], "dataset.size='abc'"),
    (["dataset=npz", "dataset.path=x", "dataset.size=8"], "dataset.size is for dataset=folder"),
])
def test_bad_dataset_keys_are_config_errors(root, overrides, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace(".", r"\.")):
        compose_config(overrides)


def test_bad_data_through_the_command(tmp_path, data_env):
    for kind, name, words in (BAD[1], BAD[11]):
        (tmp_path / kind).mkdir()
        path = _bad_folder(kind)(tmp_path / kind)
        res = run_cli(["train", f"dataset={name}", f"dataset.path={path}", *SMALL,
                       f"hydra.run.dir={tmp_path / 'run'}"], data_env)
        _one_line(res, 2, words)
        assert not (tmp_path / "run").exists()


# --- the cache ---------------------------------------------------------------------------------

def test_the_cache_notices_an_edited_folder(root, tmp_path, monkeypatch):
    f = tmp_path / "imgs"
    write_folder(f, n=30)
    decoded = []
    real = folders.decode
    monkeypatch.setattr(folders, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    opts = _opts(f, test_fraction=0.2)

    def n_images():
        ds = data.load_dataset(opts)
        return ds.info.n_train + ds.info.n_test, ds

    assert n_images()[0] == 30 and len(decoded) == 1
    assert n_images()[0] == 30 and len(decoded) == 1  # read from the cache
    for p in f.rglob("*.png"):  # touched (a copy, a checkout): the same bytes, no decoding
        os.utime(p, ns=(1, 1))
    assert n_images()[0] == 30 and len(decoded) == 1
    assert n_images()[0] == 30 and len(decoded) == 1  # and the new stamps were remembered
    _save(_pixels(30, 0), f / "cat" / "030.png")  # a file added
    assert n_images()[0] == 31 and len(decoded) == 2
    (f / "dog" / "001.png").unlink()  # a file removed
    assert n_images()[0] == 30 and len(decoded) == 3
    first = f / "cat" / "000.png"  # a file changed in place
    a = np.asarray(Image.open(first)).copy()
    a[0, 0] ^= 1
    Image.fromarray(a).save(first)
    n, ds = n_images()
    assert len(decoded) == 4
    everything = np.concatenate([ds.train_X, ds.test_X])[..., 0]
    assert any((x == a).all() for x in everything)
    # a damaged cache file is noticed and rebuilt, never used
    npy = next((root / "custom").glob("folder-*/decoded/train_X.npy"))
    npy.write_bytes(npy.read_bytes()[:-10] + b"0123456789")
    n_images()
    assert len(decoded) == 5


# --- config -----------------------------------------------------------------------------------

def test_new_dataset_keys_keep_old_run_configs_equal():
    """Runs of the built-in sets written before dataset.path/size/test_fraction existed compare
    equal to today's config (a missing key and a null one are the same), so they are still
    resumed and reused."""
    new = OmegaConf.to_yaml(compose_config([]), resolve=True)
    old = yaml.safe_load(new)
    for key in ("path", "size", "test_fraction"):
        assert old["dataset"].pop(key) is None
    assert config_diff(yaml.safe_dump(old), new) == []
    assert "dataset.path" in config_diff(new, new.replace("path: null", "path: elsewhere"))


def test_the_output_layer_has_one_unit_per_class(root, tmp_path):
    write_folder(tmp_path / "imgs", n=60)
    cfg = compose_config(["dataset=folder", f"dataset.path={tmp_path / 'imgs'}", *SMALL])
    assert OmegaConf.to_container(cfg.model.layers, resolve=True)[-1] == {"type": "dense",
                                                                          "units": 3}
    assert "units: 3" in OmegaConf.to_yaml(cfg, resolve=True)
    assert compose_config(["model=dnn"]).model.layers[-1].units == 10


# --- the command end to end ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("own")
    X = write_folder(d / "imgs", n=60, test=12)
    env = dict(os.environ, CNNVSDNN_DATA_DIR=str(d / "cache"))
    env.pop("HYDRA_FULL_ERROR", None)
    res = run_cli(["train", "dataset=folder", f"dataset.path={d / 'imgs'}", *SMALL,
                   f"hydra.run.dir={d / 'run'}"], env)
    assert res.returncode == 0, res.stderr
    return d, X, env


def test_train_on_a_folder_writes_its_classes_and_figures(folder_run):
    d, _, _ = folder_run
    run = d / "run"
    m = json.loads((run / "metrics.json").read_text())
    assert m["dataset"] == "folder" and m["data"]["classes"] == list(CLASSES)
    assert m["data"]["path"] == str(d / "imgs") and len(m["data"]["sha256"]) == 64
    assert m["splits"]["test"]["n"] == 12 and m["splits"]["dev"]["n"] == 9
    assert len(m["splits"]["test"]["ar"]) == 3
    assert "units: 3" in (run / "config.yaml").read_text()
    assert "| cat |" in (run / "tables.md").read_text()
    for png in ("gains.png", "confusion.png", "mistakes.png", "training.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_report_of_folder_runs_names_the_folder_and_its_classes(folder_run, tmp_path):
    d, _, _ = folder_run
    written = build_report([d / "run"], tmp_path / "report")
    (key, out), = written.items()
    m = json.loads((d / "run" / "metrics.json").read_text())
    assert key == f"folder-imgs-{m['data']['sha256'][:8]}" and out == tmp_path / "report" / key
    assert "| cat |" in (out / "per_class.md").read_text()
    text = (out / "report.md").read_text()
    assert f"# folder {d / 'imgs'}: the study's tables\n" in text and "| study |" not in text
    for png in ("gains", "confusion", "mistakes"):
        assert (out / f"{png}_numba_cnn_seed0.png").is_file() and f"{png}_numba" in text


def test_predict_agrees_with_the_saved_test_predictions(folder_run, capsys):
    d, X, env = folder_run
    res = run_cli(["predict", str(d / "run"), str(d / "imgs" / "test"), "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["classes"] == list(CLASSES)
    with np.load(d / "run" / "predictions_test.npz") as z:
        probs = z["probs"]
    # the test split is images 48..59 in file-name order; predict lists them by path
    by_name = {Path(p["image"]).name: p for p in out["predictions"]}
    for k, i in enumerate(range(48, 60)):
        p = by_name[f"{i:03d}.png"]
        np.testing.assert_allclose(p["probs"], probs[k], atol=1e-6)
        assert p["index"] == int(probs[k].argmax()) and p["class"] == CLASSES[p["index"]]
    print_predictions(predict_images(d / "run", [str(d / "imgs" / "test" / "dog" / "049.png")]))
    table = capsys.readouterr().out
    assert "049.png" in table and by_name["049.png"]["class"] in table


def test_predict_bad_input_is_one_line(folder_run, tmp_path, monkeypatch):
    d, _, env = folder_run
    _save(_pixels(0, 0, size=(9, 9)), tmp_path / "big.png")
    _save(_pixels(0, 0, channels=3), tmp_path / "colour.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "empty").mkdir()
    _one_line(run_cli(["predict", str(tmp_path / "empty"), "x.png"], env), 2,
              "has no params.npz")
    _one_line(run_cli(["predict", str(d / "run"), str(tmp_path / "big.png")], env), 2,
              "is 9×9 pixels")
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", env["CNNVSDNN_DATA_DIR"])
    for image, words in ((tmp_path / "colour.png", "convert it to greyscale"),
                         (tmp_path / "bad.png", "not a readable PNG or JPEG"),
                         (tmp_path / "none.png", "does not exist"),
                         (tmp_path / "empty", "holds no PNG or JPEG images")):
        with pytest.raises(DataError, match=words) as e:
            predict_images(d / "run", [str(image)])
        assert "\n" not in str(e.value)


def test_train_on_an_npz_names_its_classes(tmp_path, data_env):
    X = np.stack([_pixels(i, i % 3) for i in range(60)])
    np.savez(tmp_path / "a.npz", X=X, y=np.arange(60) % 3, classes=np.array(CLASSES))
    res = run_cli(["train", "dataset=npz", f"dataset.path={tmp_path / 'a.npz'}", "model=dnn",
                   *SMALL, f"hydra.run.dir={tmp_path / 'run'}"], data_env)
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["data"]["classes"] == list(CLASSES) and m["splits"]["test"]["n"] == 12


def test_export_as_a_folder_reads_back_as_the_same_dataset(tmp_path, data_env):
    """`data export` to folders (train/ and test/) gives back the built-in set's pixels,
    labels and order, so `dataset=folder` on it trains on the same numbers."""
    out = tmp_path / "mnist_png"
    res = run_cli(["data", "export", "mnist", "test", str(out / "test"), "--no-verify"],
                  data_env)
    assert res.returncode == 0 and "wrote" in res.stdout, res.stderr
    data.export("mnist", "full_train", out / "train", verify=False)
    assert sorted(p.name for p in (out / "test").iterdir()) == [str(i) for i in range(10)]
    mnist = data.load_dataset("mnist", verify=False)
    ds = data.load_dataset(_opts(out))
    for key in ("train_X", "train_y", "test_X", "test_y"):
        np.testing.assert_array_equal(getattr(ds, key), getattr(mnist, key))
    assert (len(ds.train_y), len(ds.test_y)) == (N_TRAIN, N_TEST)
    with pytest.raises(ConfigError, match="already exists and is not an empty folder"):
        data.export("mnist", "test", out / "test", verify=False)
    with np.load(data.export("mnist", "test", tmp_path / "t.npz", verify=False)) as z:
        assert z["X"].shape == (N_TEST, 28, 28, 1)  # .npz as before


def test_folder_names_keep_the_class_order():
    assert folders.folder_names(["airplane", "bird", "cat"]) == ["airplane", "bird", "cat"]
    assert folders.folder_names(["T-shirt/top", "Trouser", "Bag"]) == [
        "0_T-shirt-top", "1_Trouser", "2_Bag"]
    names = folders.folder_names([str(i) for i in range(12)])
    assert names == sorted(names) and names[10] == "10_10"
