"""Datasets: find or fetch the official files, verify them, decode them to uint8 arrays, cache.

``load_splits(dataset)`` is all the training loop needs; ``dataset_info(dataset)`` what config
validation needs; ``fetch``, ``verify``, ``list_status``, ``export`` and ``show`` do the work
of the ``cnnvsdnn data`` commands. ``dataset`` is a built-in name or a dataset config node
(``cfg.dataset``: ``name``, and for the user's own ``folder`` or ``npz`` its ``path``, ``size``,
``test_fraction``). Where files come from is in :mod:`cnnvsdnn.data.sources`, how they are
decoded in :mod:`cnnvsdnn.data.readers`, what each dataset is in
:mod:`cnnvsdnn.data.registry`, the decoded cache in :mod:`cnnvsdnn.data.cache`, the user's
folders and .npz files in :mod:`cnnvsdnn.data.custom` and :mod:`cnnvsdnn.data.folders`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import CnnvsdnnError, ConfigError, DataError
from ..evaluation.figures import plot_image_grid
from ..safe_io import atomic_write
from ..ui import counting, warn
from . import cache, custom, folders, readers, sources
from .display import print_fetched, print_status, print_verify
from .registry import DATASETS, DatasetInfo

__all__ = ["DATASETS", "DatasetInfo", "Dataset", "Splits", "data_dir", "load_dataset",
           "load_splits", "dev_split", "fetch", "verify", "list_status", "export", "show",
           "DataError"]


@dataclass
class Dataset:
    """A decoded dataset: images uint8 (N,H,W,C), labels uint8 (N,), and where it came from."""

    name: str
    info: DatasetInfo
    train_X: np.ndarray
    train_y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    source: str


def data_dir() -> Path:
    """The data cache: ``$CNNVSDNN_DATA_DIR``, else ``~/.cache/cnnvsdnn``."""
    return Path(os.environ.get("CNNVSDNN_DATA_DIR") or "~/.cache/cnnvsdnn").expanduser()


def dataset_info(dataset: str | Mapping) -> DatasetInfo:
    """A built-in dataset's info from the table; a user's folder or .npz's from its cache
    (decoded into it the first time)."""
    opts = custom.options(dataset) if isinstance(dataset, Mapping) else None
    if opts is not None:
        return custom.describe(opts, data_dir())
    name = str(dataset["name"]) if isinstance(dataset, Mapping) else dataset
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; choose one of "
                          f"{', '.join([*DATASETS, *custom.KINDS])}") from None


def _cache_usable(manifest: dict, ddir: Path, info: DatasetInfo, verify: bool) -> bool:
    """The cache stands for the current raw files: none changed, no new user file appeared,
    and it was built from checked files if checking is asked for."""
    if verify and not manifest.get("verified"):
        return False
    if not cache.inputs_unchanged(manifest):
        return False
    recorded = {p for p, _, _ in manifest.get("inputs", [])}
    return all(str(p.resolve()) in recorded for p in sources.user_files(ddir, info))


def load_dataset(dataset: str | Mapping, verify: bool = True, mirror: str | None = None,
                 progress: bool = True) -> Dataset:
    """The dataset (a built-in name or a dataset config node), fetched if missing, verified,
    and cached as ``.npy`` arrays.

    A second call reads the cache (each array checked by sha256; a damaged one is rebuilt,
    never used). ``verify=False`` accepts files whose checksum differs (user-made copies) with a
    warning. ``mirror`` is a base URL tried before the official hosts (default
    ``$CNNVSDNN_MIRROR``). Raises DataError (one line) when no source works or a file is bad.
    """
    opts = custom.options(dataset) if isinstance(dataset, Mapping) else None
    if opts is not None:
        info, arrays, source = custom.load(opts, data_dir(), progress)
        return Dataset(opts.kind, info, **arrays, source=source)
    name = str(dataset["name"]) if isinstance(dataset, Mapping) else dataset
    info = dataset_info(name)
    ddir = data_dir() / name
    manifest = cache.read_manifest(ddir)
    if manifest is not None and _cache_usable(manifest, ddir, info, verify):
        arrays, why = cache.load(ddir, manifest)
        if arrays is not None:
            return Dataset(name, info, **arrays, source=manifest["source"])
        warn(f"{name}: {why}; decoding the raw files again")
        cache.clear(ddir)
    arrays, source, inputs, checked = sources.obtain(info, ddir, verify, mirror, progress)
    for split in ("train", "test"):
        X, y = arrays[f"{split}_X"], arrays[f"{split}_y"]
        if X.shape[1:] != info.shape or X.dtype != np.uint8 or y.shape != (len(X),):
            raise DataError(f"{name}: decoded {split} images {X.dtype} {X.shape}, expected uint8 "
                            f"(N,{','.join(map(str, info.shape))}); delete {ddir} and fetch again")
    try:
        cache.save(ddir, arrays, source, inputs, verified=checked)
    except CnnvsdnnError as e:
        warn(f"{name}: the decoded arrays were not cached ({e}); the next load decodes again")
    return Dataset(name, info, **arrays, source=source)


def dev_split(n: int, dev_size: int = 5000, mode: str = "random",
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, dev_idx) of an official training set of ``n`` images, both sorted int64.

    ``random``: the dev set is ``np.random.default_rng(seed).permutation(n)[:dev_size]`` (what the
    study describes); ``last``: the last ``dev_size`` images in file order (what its code did).
    """
    if not 0 <= dev_size < n:
        raise ConfigError(f"train.dev_size={dev_size} must be at least 0 and less than the {n} "
                          "training images")
    if mode == "random":
        dev = np.sort(np.random.default_rng(seed).permutation(n)[:dev_size])
    elif mode == "last":
        dev = np.arange(n - dev_size, n)
    else:
        raise ConfigError(f"train.dev_split={mode!r} is not one of random, last")
    mask = np.ones(n, bool)
    mask[dev] = False
    return np.flatnonzero(mask).astype(np.int64), dev.astype(np.int64)


class Splits(NamedTuple):
    """A dataset's three splits as ``(X uint8 (N,H,W,C), y int64 (N,))`` and its info."""

    info: DatasetInfo
    train: tuple
    dev: tuple
    test: tuple


def load_splits(dataset: str | Mapping, dev_size: int = 5000, dev_mode: str = "random",
                seed: int = 0, verify: bool = True, mirror: str | None = None,
                progress: bool = True, cifar10_decode: str = "planar") -> Splits:
    """The official training set split into train and dev by :func:`dev_split`, and the test
    set, with int64 labels (what the training loop needs). ``dataset``: a built-in name or
    ``cfg.dataset``. ``cifar10_decode="study"``: CIFAR-10 images as the study's code decoded
    them (:func:`readers.cifar10_study_decode`), in every split; other datasets ignore it."""
    if cifar10_decode not in readers.CIFAR10_DECODES:
        raise ConfigError(f"data.cifar10_decode={cifar10_decode!r} is not one of "
                          f"{', '.join(readers.CIFAR10_DECODES)}")
    ds = load_dataset(dataset, verify=verify, mirror=mirror, progress=progress)
    train_X, test_X = ds.train_X, ds.test_X
    if ds.info.name == "cifar10" and cifar10_decode == "study":
        train_X, test_X = readers.cifar10_study_decode(train_X), \
            readers.cifar10_study_decode(test_X)
    train_idx, dev_idx = dev_split(ds.train_y.size, dev_size, mode=dev_mode, seed=seed)
    return Splits(ds.info, (train_X[train_idx], ds.train_y[train_idx].astype(np.int64)),
                  (train_X[dev_idx], ds.train_y[dev_idx].astype(np.int64)),
                  (test_X, ds.test_y.astype(np.int64)))


def fetch(names, mirror: str | None = None, verify: bool = True) -> dict[str, str]:
    """Get each dataset into the cache (``cnnvsdnn data fetch``); prints and returns the sources.

    Raises DataError for the first dataset that cannot be had.
    """
    out = {}
    for name in names:
        ds = load_dataset(name, verify=verify, mirror=mirror, progress=True)
        out[name] = ds.source
        print_fetched(ds)
    return out


def verify(names) -> bool:
    """Check raw files against their published checksums and cached arrays against their
    sha256 (``cnnvsdnn data verify``); prints one row per file, True if all are good."""
    rows = []
    for name in names:
        info = dataset_info(name)
        ddir = data_dir() / name
        manifest = cache.read_manifest(ddir)
        # The user's raw files, and those the cache was built from (e.g. a system copy).
        raw = {str(p): p for p in sources.user_files(ddir, info)}
        for path, _, _ in (manifest or {}).get("inputs", []):
            if Path(path).is_file():
                raw.setdefault(path, Path(path))
        for p in raw.values():
            fname = next(f for f in info.files if p.name in (f, f.removesuffix(".gz")))
            why = sources.check_file(name, fname, p)
            rows.append((name, str(p), "ok" if why is None else f"BAD: {why}"))
        if manifest is None:
            if not any(r[0] == name for r in rows):
                rows.append((name, str(ddir), "BAD: not fetched (run cnnvsdnn data fetch)"))
            continue
        arrays, why = cache.load(ddir, manifest)
        rows.append((name, str(cache.cache_dir(ddir)),
                     f"ok ({manifest['source']})" if arrays is not None else f"BAD: {why}"))
    print_verify(rows)
    return all(not r[2].startswith("BAD") for r in rows)


def list_status(print_table: bool = True) -> list[dict]:
    """One row per dataset (``cnnvsdnn data list``): status, source, bytes on disk, directory."""
    rows = []
    for name, info in DATASETS.items():
        ddir = data_dir() / name
        manifest = cache.read_manifest(ddir)
        raw = sources.user_files(ddir, info)
        size = sum(p.stat().st_size for p in raw) + cache.size_bytes(ddir)
        if manifest is not None:
            status, source = "cached", manifest["source"]
        elif raw:
            status, source = f"{len(raw)}/{len(info.files)} files, not decoded", ""
        else:
            status, source = "missing", ""
        rows.append({"dataset": name, "status": status, "source": source, "bytes": size,
                     "dir": str(ddir)})
    if print_table:
        print_status(rows)
    return rows


def export(name: str, split: str, out, dev_size: int = 5000, mode: str = "random",
           seed: int = 0, verify: bool = True, fmt: str | None = None) -> Path:
    """Write one decoded split to ``out``: an ``.npz`` with ``X`` uint8 (N,H,W,C), ``y`` uint8
    (N,), or a folder of class subfolders of PNG images (``out/<class>/<index>.png``, see
    :func:`folders.write_folder`), which ``dataset=folder`` reads back in the same order.

    ``fmt``: ``npz`` or ``folder``; by default ``npz`` if ``out`` ends in ``.npz``, else folder.
    ``split`` is train, dev or test; train and dev are the official training set split by
    :func:`dev_split` (``dev_size``, ``mode``, ``seed``: default the 5000 random with seed 0);
    ``full_train`` is the whole official training set.
    """
    if split not in ("train", "dev", "test", "full_train"):
        raise ConfigError(f"split {split!r} is not one of train, dev, test, full_train")
    out = Path(out)
    fmt = fmt or ("npz" if out.suffix.lower() == ".npz" else "folder")
    if fmt not in ("npz", "folder"):
        raise ConfigError(f"format {fmt!r} is not one of npz, folder")
    ds = load_dataset(name, verify=verify)
    if split == "test":
        X, y = ds.test_X, ds.test_y
    elif split == "full_train":
        X, y = ds.train_X, ds.train_y
    else:
        tr, dv = dev_split(len(ds.train_y), dev_size, mode, seed)
        idx = tr if split == "train" else dv
        X, y = ds.train_X[idx], ds.train_y[idx]
    if fmt == "folder":
        with counting(len(X), f"writing {len(X)} PNG images into {out}") as bar:
            return folders.write_folder(X, y, list(ds.info.classes), out, progress=bar)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror}); choose another path") from None
    return atomic_write(out, lambda f: np.savez(f, X=X, y=y))


def show(name: str, out_png, per_class: int = 8, seed: int = 0, verify: bool = True) -> Path:
    """A grid of ``per_class`` random training images per class (rows) as PNG, like the
    study's figures 1-3."""
    ds = load_dataset(name, verify=verify)
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(ds.info.n_classes):
        idx = np.flatnonzero(ds.train_y == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        rows.append(ds.train_X[np.asarray(pick, dtype=np.int64)])
    return plot_image_grid(rows, list(ds.info.classes), out_png,
                           f"{ds.name}: {per_class} training images per class")
