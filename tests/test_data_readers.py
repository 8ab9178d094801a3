"""The decoders, on files written in the exact official formats (tests/synthetic.py)."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile

import numpy as np
import pytest
import scipy.io

from cnnvsdnn.data import readers
from cnnvsdnn.errors import DataError
from tests.synthetic import idx_bytes, write_cifar10, write_mnist, write_svhn


def _idx_paths(d, gz=True):
    suffix = ".gz" if gz else ""
    return {"train_X": d / f"train-images-idx3-ubyte{suffix}",
            "train_y": d / f"train-labels-idx1-ubyte{suffix}",
            "test_X": d / f"t10k-images-idx3-ubyte{suffix}",
            "test_y": d / f"t10k-labels-idx1-ubyte{suffix}"}


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    want = write_mnist(tmp_path, n_train=50, n_test=20, seed=1, gz=gz)
    got = readers.read_idx(_idx_paths(tmp_path, gz), (28, 28, 1))
    for key in want:
        assert got[key].dtype == np.uint8
        np.testing.assert_array_equal(got[key], want[key])
    assert got["train_X"].shape == (50, 28, 28, 1)


def test_idx_header_is_big_endian(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    assert data[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28])
    assert readers.parse_idx(data, "x").shape == (3, 28, 28)


@pytest.mark.parametrize("data, match", [
    (b"\x00\x00\x09\x01" + (3).to_bytes(4, "big") + b"abc", "element type"),
    (b"PK\x03\x04 not an idx file", "no IDX magic"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    (idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-5], "need 3136 bytes"),
    (idx_bytes(np.zeros((4, 28, 28), np.uint8)) + b"x", "need 3136 bytes"),
])
def test_bad_idx_is_a_data_error(data, match):
    with pytest.raises(DataError, match=match):
        readers.parse_idx(data, "f")


def test_idx_images_and_labels_must_agree(tmp_path):
    write_mnist(tmp_path, n_train=30, n_test=10)
    p = _idx_paths(tmp_path)
    p["train_y"].write_bytes(gzip.compress(idx_bytes(np.zeros(29, np.uint8))))
    with pytest.raises(DataError, match="labels for 30 images"):
        readers.read_idx(p, (28, 28, 1))
    p["train_y"].write_bytes(gzip.compress(idx_bytes(np.full(30, 10, np.uint8))))
    with pytest.raises(DataError, match="labels outside 0..9"):
        readers.read_idx(p, (28, 28, 1))
    p["train_X"].write_bytes(gzip.compress(idx_bytes(np.zeros((30, 32, 32), np.uint8))))
    with pytest.raises(DataError, match=r"shape \(32, 32\)"):
        readers.read_idx(p, (28, 28, 1))


def test_truncated_gzip_is_a_data_error(tmp_path):
    write_mnist(tmp_path, n_train=30, n_test=10)
    p = _idx_paths(tmp_path)
    p["test_X"].write_bytes(p["test_X"].read_bytes()[:-100])
    with pytest.raises(DataError, match="broken gzip"):
        readers.read_idx(p, (28, 28, 1))


def test_cifar10_rows_are_channel_planar(tmp_path):
    # Image i: R = row index, G = column index, B = 200 + i. Decoding a row as (32,32,3) (the
    # study's bug) would mix the three planes and fail every one of these checks.
    n = 10
    X = np.zeros((n, 32, 32, 3), np.uint8)
    X[..., 0] = np.arange(32)[None, :, None]
    X[..., 1] = np.arange(32)[None, None, :]
    X[..., 2] = (200 + np.arange(n))[:, None, None]
    want = write_cifar10(tmp_path, n_test=7, train_X=X)
    # The tarball holds rows 1024 R, 1024 G, 1024 B: check the raw bytes too.
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz") as tar:
        batch = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_1"), encoding="bytes")
    row = batch[b"data"][0]
    assert row.shape == (3072,)
    np.testing.assert_array_equal(row[:1024].reshape(32, 32), X[0, :, :, 0])
    assert set(row[2048:]) == {200}
    got = readers.read_cifar10(tmp_path / "cifar-10-python.tar.gz")
    assert got["train_X"].shape == (n, 32, 32, 3)
    np.testing.assert_array_equal(got["train_X"], X)
    assert got["train_X"][3, 5, 7].tolist() == [5, 7, 203]
    np.testing.assert_array_equal(got["train_y"], want["train_y"])
    np.testing.assert_array_equal(got["test_X"], want["test_X"])
    np.testing.assert_array_equal(got["test_y"], want["test_y"])


def _tarball(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_cifar10_structure_errors(tmp_path):
    p = tmp_path / "cifar-10-python.tar.gz"
    p.write_bytes(b"not a tarball at all")
    with pytest.raises(DataError, match="not a readable tar.gz"):
        readers.read_cifar10(p)
    _tarball(p, {"data_batch_1": b""})
    with pytest.raises(DataError, match="data_batch_2 missing"):
        readers.read_cifar10(p)
    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    members = {f"data_batch_{i}": pickle.dumps(good, 2) for i in range(1, 6)}
    members["test_batch"] = pickle.dumps({b"data": np.zeros((2, 1024), np.uint8),
                                          b"labels": [0, 1]}, 2)
    _tarball(p, members)
    with pytest.raises(DataError, match=r"expected uint8 \(N,3072\)"):
        readers.read_cifar10(p)


def test_pickles_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(DataError, match="forbidden global builtins.print"):
        readers.safe_unpickle(pickle.dumps({b"data": Evil()}), "f", "bytes")


def test_svhn_transposes_and_maps_10_to_0(tmp_path):
    want = write_svhn(tmp_path, n_train=30, n_test=12, seed=2)
    raw = scipy.io.loadmat(tmp_path / "train_32x32.mat")
    assert raw["X"].shape == (32, 32, 3, 30) and raw["y"].shape == (30, 1)
    assert raw["y"][0, 0] == 10  # the first image is a 0, stored as 10
    got = readers.read_svhn({"train": tmp_path / "train_32x32.mat",
                             "test": tmp_path / "test_32x32.mat"})
    assert got["train_y"][0] == 0 and 10 not in got["train_y"]
    np.testing.assert_array_equal(got["train_X"][4], raw["X"][:, :, :, 4])
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


def test_svhn_wrong_format(tmp_path):
    p = tmp_path / "train_32x32.mat"
    p.write_bytes(b"MATLAB 5.0 MAT-file, but then nothing sensible" + bytes(100))
    with pytest.raises(DataError, match="not a readable MATLAB v5 file"):
        readers.read_svhn_mat(p)
    scipy.io.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.float64), "y": np.ones((2, 1))})
    with pytest.raises(DataError, match="X is float64"):
        readers.read_svhn_mat(p)


def test_mnist_pickle_is_converted_exactly():
    rng = np.random.default_rng(0)
    parts = []
    for n in (5, 3, 4):
        u = rng.integers(0, 256, size=(n, 784)).astype(np.uint8)
        parts.append((u.astype(np.float32) / 256, rng.integers(0, 10, n)))
    got = readers.read_mnist_pickle(gzip.compress(pickle.dumps(tuple(parts), 2)), "f")
    assert got["train_X"].shape == (8, 28, 28, 1) and got["test_X"].shape == (4, 28, 28, 1)
    want = np.concatenate([np.rint(parts[0][0] * 256), np.rint(parts[1][0] * 256)])
    np.testing.assert_array_equal(got["train_X"].reshape(8, 784), want)
    np.testing.assert_array_equal(got["test_y"], parts[2][1])
    bad = [(parts[0][0] + np.float32(0.001), parts[0][1]), parts[1], parts[2]]
    with pytest.raises(DataError, match="not uint8/256"):
        readers.read_mnist_pickle(gzip.compress(pickle.dumps(tuple(bad), 2)), "f")
