"""The data ``cnnvsdnn bench`` trains on: the study's dataset for each input shape.

28x28x1 is MNIST (fetched like ``train`` does). 32x32x3 is CIFAR-10 when its official file or
decoded cache is in the data folder; otherwise -- no dataset host may be reachable -- a stand-in
written in CIFAR-10's official format into ``<data folder>/bench-cifar10-standin/``: MNIST's
digits (train: first 50,000; test: 10,000), padded to 32x32, each drawn in a random colour on a
random-coloured noisy background, labelled by the digit. Real image structure, so training
behaves like training (losses fall, some weights stop learning), unlike random pixels. It is
read with ``data.verify=false`` (its checksum is not CIFAR-10's), and the bench says it used it.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ..data import DATASETS, data_dir, load_dataset
from ..data.cache import read_manifest

INPUT_DATASETS = {"28x28x1": "mnist", "32x32x3": "cifar10"}
STANDIN = "bench-cifar10-standin"
_TARBALL = "cifar-10-python.tar.gz"


class BenchData:
    """Which dataset an input shape trains on, and the environment and overrides that read it."""

    def __init__(self, inp: str, verify: bool = True):
        self.input, self.dataset = inp, INPUT_DATASETS[inp]
        self.env: dict[str, str] = {}
        self.verify, self.note = verify, ""
        if self.dataset == "cifar10" and not _have_cifar10():
            root = data_dir() / STANDIN
            if not (root / "cifar10" / _TARBALL).exists():
                write_cifar10_standin(root / "cifar10")
            self.env = {"CNNVSDNN_DATA_DIR": str(root)}
            self.verify = False
            self.note = ("CIFAR-10 is not in the data folder: 32x32x3 runs train on a stand-in "
                         "in its format (MNIST digits coloured on noise, 32x32x3)")

    def overrides(self) -> list[str]:
        """``cnnvsdnn train`` overrides that read this dataset."""
        return [f"dataset={self.dataset}", *([] if self.verify else ["data.verify=false"])]

    def load(self):
        """The decoded dataset (``data.load_dataset``), from this data's folder."""
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            return load_dataset(self.dataset, verify=self.verify, progress=False)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _have_cifar10() -> bool:
    d = data_dir() / "cifar10"
    return (d / _TARBALL).exists() or read_manifest(d) is not None


def write_cifar10_standin(folder: Path, seed: int = 0) -> Path:
    """``cifar-10-python.tar.gz`` (official layout: five training batches and a test batch of
    pickled channel-planar rows) holding MNIST digits in colour; see the module's docstring."""
    mnist = load_dataset("mnist", progress=False)
    rng = np.random.default_rng(seed)

    def colour(X):  # (N, 28, 28, 1) -> (N, 32, 32, 3) uint8
        d = np.pad(X[..., 0], ((0, 0), (2, 2), (2, 2))).astype(np.float32)[..., None] / 255
        fg = rng.uniform(0.4, 1.0, (len(X), 1, 1, 3)).astype(np.float32)
        bg = rng.uniform(0.0, 0.5, (len(X), 1, 1, 3)).astype(np.float32)
        noise = rng.uniform(-0.1, 0.1, (len(X), 32, 32, 3)).astype(np.float32)
        img = np.clip(bg * (1 - d) + fg * d + noise, 0, 1)
        return np.rint(img * 255).astype(np.uint8)

    def batch(X, y, label):
        rows = np.ascontiguousarray(X.transpose(0, 3, 1, 2).reshape(len(X), 3072))
        return pickle.dumps({b"batch_label": label.encode(), b"labels": [int(v) for v in y],
                             b"data": rows,
                             b"filenames": [f"standin_{i}.png".encode() for i in range(len(y))]},
                            protocol=2)

    members = {}
    for i in range(5):
        sl = slice(10000 * i, 10000 * (i + 1))
        members[f"data_batch_{i + 1}"] = batch(colour(mnist.train_X[sl]), mnist.train_y[sl],
                                               f"training batch {i + 1} of 5")
    members["test_batch"] = batch(colour(mnist.test_X[:10000]), mnist.test_y[:10000],
                                  "testing batch 1 of 1")
    members["batches.meta"] = pickle.dumps(
        {b"num_cases_per_batch": 10000,
         b"label_names": [c.encode() for c in DATASETS["cifar10"].classes],
         b"num_vis": 3072}, protocol=2)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (_TARBALL + ".part")
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(folder / _TARBALL)
    return folder / _TARBALL
