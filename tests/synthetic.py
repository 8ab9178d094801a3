"""Writers of synthetic datasets in the EXACT official file formats (SPEC section 2).

No dataset host can be reached where cnnvsdnn is tested, so the readers, the download path and
the training loop are exercised on files that are byte-for-byte laid out like the official ones
(IDX gzip, the CIFAR-10 tarball of Python pickles, SVHN MATLAB v5) but hold made-up images.
The images are learnable: each class is a bright blob at its own place (and, for colour
datasets, of its own colour) on a noisy background, so a few training steps beat chance.

Each writer returns the arrays it wrote, decoded the way cnnvsdnn must decode them:
``{"train_X": uint8 (N,H,W,C), "train_y": uint8 (N,), "test_X": ..., "test_y": ...}``.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import io
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train_X": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_X": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
CIFAR10_TARBALL = "cifar-10-python.tar.gz"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def class_images(y: np.ndarray, shape: tuple[int, int, int], rng: np.random.Generator):
    """uint8 images (N,H,W,C): a class-placed (and class-coloured) blob plus uniform noise."""
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w]
    templates = np.empty((10, h, w, c), np.uint8)
    for k in range(10):
        angle = 2 * np.pi * k / 10
        cy, cx = h / 2 + 0.3 * h * np.sin(angle), w / 2 + 0.3 * w * np.cos(angle)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.12 * h) ** 2))
        colour = np.ones(c) if c == 1 else 0.4 + 0.6 * np.array([(k >> b) & 1 for b in (0, 1, 2)])
        templates[k] = np.rint(191 * blob[..., None] * colour).astype(np.uint8)
    # uint8 sums stay <= 191 + 63: no overflow, no float copy of a 60000-image set.
    return templates[y] + rng.integers(0, 64, size=(len(y), h, w, c), dtype=np.uint8)


def idx_bytes(a: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000 08 ndim, big-endian int32 dims, data."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return struct.pack(f">I{a.ndim}I", 0x0800 | a.ndim, *a.shape) + a.tobytes()


def write_mnist(dir, n_train: int = 1200, n_test: int = 300, seed: int = 0, gz: bool = True,
                compresslevel: int = 1) -> dict[str, np.ndarray]:
    """The 4 official MNIST (or Fashion-MNIST) IDX files in ``dir``.

    ``gz=True`` writes the official ``*.gz`` names; ``gz=False`` the unpacked IDX files (the
    names without ``.gz``). Images are stored (N,28,28) as in the official files.
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        out[f"{split}_X"] = class_images(y, (28, 28, 1), rng)
        out[f"{split}_y"] = y
    for key, name in MNIST_FILES.items():
        arr = out[key][..., 0] if key.endswith("X") else out[key]
        data = idx_bytes(arr)
        if gz:
            (dir / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel, mtime=0))
        else:
            (dir / name).write_bytes(data)
    return out


def cifar10_pickle(X: np.ndarray, y: np.ndarray, label: str) -> bytes:
    """One CIFAR-10 batch as the official Python 2 pickle: bytes keys, channel-planar rows."""
    n = len(X)
    batch = {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in y],
        b"data": np.ascontiguousarray(X.transpose(0, 3, 1, 2).reshape(n, 3072)),
        b"filenames": [f"synthetic_{i}.png".encode() for i in range(n)],
    }
    return pickle.dumps(batch, protocol=2)


def write_cifar10(dir, n_train: int = 500, n_test: int = 100, seed: int = 0,
                  train_X: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``cifar-10-python.tar.gz`` in ``dir``: 5 train batches (``np.array_split``) and one test.

    ``train_X`` (N,32,32,3) uint8 replaces the generated training images (to check decoding).
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if train_X is not None:
        n_train = len(train_X)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        out[f"{split}_X"] = class_images(y, (32, 32, 3), rng)
        out[f"{split}_y"] = y
    if train_X is not None:
        out["train_X"] = np.asarray(train_X, np.uint8)
    members = {}
    parts = np.array_split(np.arange(n_train), 5)
    for i, idx in enumerate(parts, start=1):
        members[f"data_batch_{i}"] = cifar10_pickle(
            out["train_X"][idx], out["train_y"][idx], f"training batch {i} of 5")
    members["test_batch"] = cifar10_pickle(out["test_X"], out["test_y"], "testing batch 1 of 1")
    members["batches.meta"] = pickle.dumps(
        {b"num_cases_per_batch": 10000, b"label_names": [c.encode() for c in CIFAR10_CLASSES],
         b"num_vis": 3072}, protocol=2)
    members["readme.html"] = b"<meta HTTP-EQUIV='REFRESH' content='0; url=...'>\n"
    with tarfile.open(dir / CIFAR10_TARBALL, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def write_svhn(dir, n_train: int = 500, n_test: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB v5): X (32,32,3,N), y (N,1), 10 = 0."""
    import scipy.io

    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        y[:10] = np.arange(10)[: min(10, n)]  # every class, including 0 (stored as 10), shows up
        X = class_images(y, (32, 32, 3), rng)
        stored_y = np.where(y == 0, 10, y).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(dir / SVHN_FILES[split], {"X": X.transpose(1, 2, 3, 0), "y": stored_y},
                         format="5", do_compression=False)
        out[f"{split}_X"], out[f"{split}_y"] = X, y
    return out


@contextlib.contextmanager
def serve_directory(dir) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``dir``; yields its base URL (ending in '/')."""
    handler = functools.partial(_QuietHandler, directory=str(dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass
