"""The user's own datasets: ``dataset=folder`` (class subfolders of images, see
:mod:`cnnvsdnn.data.folders`) and ``dataset=npz`` (arrays), decoded once into the same verified
cache as the built-in sets.

Unlike the built-in sets, their shape, classes and sizes are known only from the data, so
:func:`describe` gives their :class:`DatasetInfo` (what config validation and the model's
output layer need) from the cache's manifest, decoding the data the first time.

The cache of one (path, ``dataset.size``, ``dataset.test_fraction``) lives in
``<data dir>/custom/<kind>-<hash>/decoded/``. Its manifest records two fingerprints of the data:
the *listing* (every file's relative path, size and mtime: a cheap stat walk) and the
*content* (the sha256 of every file's bytes). A load whose listing matches reads the cache; one
whose listing differs hashes the content: unchanged (the files were touched, or copied or
checked out in place) it reads the cache, changed (a file added, removed or edited) it decodes
again. (An edit that keeps a file's size and mtime both is not noticed.)
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..ui import counting, warn
from . import cache, folders
from .registry import DatasetInfo

KINDS = ("folder", "npz")
DEFAULT_TEST_FRACTION = 0.2  # conf/dataset/{folder,npz}.yaml
SPLIT_SEED = 0  # the drawn test split is the same for every run and seed
FORMAT = 1  # bump when decoding changes: caches of another format are rebuilt
_MEMO: dict[tuple, DatasetInfo] = {}  # describe() of this process


@dataclass(frozen=True)
class Options:
    """What ``dataset=folder|npz`` and its keys name."""

    kind: str
    path: Path
    size: tuple[int, int] | None
    test_fraction: float

    @property
    def key(self) -> tuple:
        return (self.kind, str(self.path), self.size, self.test_fraction)


def options(dataset: Mapping) -> Options | None:
    """The checked options of a dataset config node (``cfg.dataset``); None for a built-in set.
    A one-line ConfigError for keys that make no sense."""
    name = str(dataset.get("name"))
    path, size, frac = (dataset.get(k) for k in ("path", "size", "test_fraction"))
    if name not in KINDS:
        given = [f"dataset.{k}" for k, v in (("path", path), ("size", size),
                                             ("test_fraction", frac)) if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} is for dataset=folder or dataset=npz, not "
                              f"the built-in {name}; drop it")
        return None
    if not path:
        what = "a folder of class subfolders of images" if name == "folder" else \
            "an .npz with X (N,H,W,C) uint8 and y"
        raise ConfigError(f"dataset={name} needs dataset.path=... ({what})")
    if name == "npz" and size is not None:
        raise ConfigError("dataset.size is for dataset=folder; resize the arrays of the .npz "
                          "before saving it")
    frac = DEFAULT_TEST_FRACTION if frac is None else frac
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
        raise ConfigError(f"dataset.test_fraction={frac!r} must be between 0 and 1 (the share of "
                          f"each class drawn for testing when there is no test split), e.g. 0.2")
    return Options(name, Path(str(path)).expanduser().absolute(), folders.parse_size(size),
                   float(frac))


def describe(opts: Options, root: Path) -> DatasetInfo:
    """The dataset's info: remembered in this process, else read from the cache's manifest
    when the files are those it was built from (a stat of each), else from loading the data
    (decoding it the first time). ``root`` is the data directory. (Loading checks again.)"""
    if opts.key not in _MEMO:
        _, settings, _, listed, manifest = _lookup(opts, root)
        if manifest is not None and manifest.get("settings") == settings \
                and manifest.get("listing") == listed:
            _MEMO[opts.key] = _info(opts, manifest["info"], manifest["content"])
        else:
            load(opts, root, progress=True)
    return _MEMO[opts.key]


# ------------------------------------------------------------------------------ loading
def _lookup(opts: Options, root: Path):
    """(cache directory, settings, folder listing or None, listing fingerprint, manifest)."""
    path = opts.path
    if not path.exists():
        raise DataError(f"dataset.path={path} does not exist; give the "
                        f"{'folder' if opts.kind == 'folder' else '.npz file'} of your images")
    if opts.kind == "folder":
        listing = folders.scan(path)
        stamps = listing.stamps()
    else:
        if not path.is_file():
            raise DataError(f"dataset.path={path} is not a file; give an .npz with X and y")
        st = path.stat()
        stamps, listing = [[path.name, st.st_size, st.st_mtime_ns]], None
    settings = {"format": FORMAT, "kind": opts.kind, "path": str(path), "size": opts.size,
                "test_fraction": opts.test_fraction}
    ddir = root / "custom" / f"{opts.kind}-{_sha(json.dumps(settings))[:16]}"
    return ddir, settings, listing, _sha(json.dumps(stamps)), cache.read_manifest(ddir)


def load(opts: Options, root: Path, progress: bool = True
         ) -> tuple[DatasetInfo, dict[str, np.ndarray], str]:
    """(info, arrays train_X/train_y/test_X/test_y, source) from the cache, or decoded into it.
    A one-line DataError for a missing path or bad data."""
    path = opts.path
    ddir, settings, listing, listed, manifest = _lookup(opts, root)
    content = None
    if manifest is not None and manifest.get("settings") == settings:
        if manifest.get("listing") != listed:  # touched, copied or edited: compare the bytes
            content = _content(path, listing)
        if content is None or content == manifest.get("content"):
            arrays, why = cache.load(ddir, manifest)
            if arrays is not None:
                info = _info(opts, manifest["info"], manifest["content"])
                if content is not None:  # same bytes, new stamps: remember them
                    _save(ddir, arrays, manifest["info"], settings, listed, content)
                _MEMO[opts.key] = info
                return info, arrays, f"{opts.kind} {path}"
            warn(f"{path}: {why}; decoding it again")
    if content is None:
        content = _content(path, listing)
    if opts.kind == "folder":
        arrays, classes = _decode_folder(listing, opts, progress)
    else:
        arrays, classes = _read_npz(path, opts)
    meta = {"shape": list(arrays["train_X"].shape[1:]), "classes": classes,
            "n_train": len(arrays["train_y"]), "n_test": len(arrays["test_y"])}
    _save(ddir, arrays, meta, settings, listed, content)
    info = _info(opts, meta, content)
    _MEMO[opts.key] = info
    return info, arrays, f"{opts.kind} {path}"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _content(path: Path, listing: folders.Listing | None) -> str:
    """sha256 of the data's bytes: the .npz file, or every image with its relative path,
    split and class."""
    if listing is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        return h.hexdigest()
    h = hashlib.sha256(json.dumps(listing.classes).encode())
    root = str(listing.root)
    for f in listing.files:
        h.update(f"{f.split}\0{f.label}\0{f.rel}\0".encode())
        try:
            with open(os.path.join(root, f.rel), "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
        except OSError as e:
            raise DataError(f"cannot read {listing.root / f.rel} ({e.strerror}); check the "
                            f"folder") from None
    return h.hexdigest()


def _save(ddir, arrays, meta, settings, listed, content) -> None:
    try:
        cache.save(ddir, arrays, f"{settings['kind']} {settings['path']}", [], verified=True,
                   extra={"settings": settings, "listing": listed, "content": content,
                          "info": meta})
    except OSError as e:
        warn(f"cannot cache the decoded arrays in {ddir} ({e.strerror}); the next load "
             f"decodes again")


def _info(opts: Options, meta: dict, content: str) -> DatasetInfo:
    return DatasetInfo(opts.kind, tuple(meta["shape"]), len(meta["classes"]),
                       list(meta["classes"]), meta["n_train"], meta["n_test"], [], opts.kind,
                       path=str(opts.path), sha256=content)


def _decode_folder(listing: folders.Listing, opts: Options, progress: bool):
    n = len(listing.files)
    with counting(n, f"decoding {n} images of {listing.root}", enabled=progress) as bar:
        splits = folders.decode(listing, opts.size, progress=bar)
    if "all" in splits:
        X, y = splits["all"]
        train, test = test_split(y, len(listing.classes), opts.test_fraction, listing.root)
        splits = {"train": (X[train], y[train]), "test": (X[test], y[test])}
    arrays = {"train_X": splits["train"][0], "train_y": splits["train"][1],
              "test_X": splits["test"][0], "test_y": splits["test"][1]}
    return arrays, list(listing.classes)


def test_split(y: np.ndarray, n_classes: int, fraction: float, where
               ) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices, sorted: ``round(fraction · n)`` images of each class of ``n``
    (at least one, and one left for training) drawn for testing with ``SPLIT_SEED``."""
    rng = np.random.default_rng(SPLIT_SEED)
    test = []
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        k = min(max(int(round(fraction * idx.size)), 1), idx.size - 1)
        test.append(rng.permutation(idx)[:k])
    test = np.sort(np.concatenate(test)).astype(np.int64)
    if test.size == 0:
        raise DataError(f"{where}: too few images to draw a test split (one per class); add "
                        f"images or give a test split")
    mask = np.ones(y.size, bool)
    mask[test] = False
    return np.flatnonzero(mask).astype(np.int64), test


# ------------------------------------------------------------------------------ .npz
_NPZ_HINT = ("save it with numpy.savez(path, X=images, y=labels) (X uint8 (N,H,W,C), y integer "
             "class indices 0..K-1; optionally X_test, y_test and classes)")


def _read_npz(path: Path, opts: Options):
    """Arrays of a user's .npz: ``X`` uint8 (N,H,W,C) (or (N,H,W), grey), ``y`` integers
    0..K-1 with every class present, optionally ``X_test``/``y_test`` and ``classes`` (K names).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            missing = [k for k in ("X", "y") if k not in files]
            if missing:
                raise DataError(f"{path} lacks {' and '.join(missing)} (it has "
                                f"{', '.join(sorted(files)) or 'no arrays'}); {_NPZ_HINT}")
            if ("X_test" in files) != ("y_test" in files):
                raise DataError(f"{path} has one of X_test and y_test but not the other; save "
                                f"both, or neither to draw a test split")
            arrays = {k: z[k] for k in ("X", "y", "X_test", "y_test", "classes") if k in files}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path} is not a readable .npz ({str(e).splitlines()[0]}); "
                        f"{_NPZ_HINT}") from None
    X, y = _npz_pair(path, arrays["X"], arrays["y"], "X", "y", None)
    k = int(y.max()) + 1
    missing = sorted(set(range(k)) - set(np.unique(y).tolist()))
    if missing:
        raise DataError(f"{path}: class {missing[0]} of 0..{k - 1} has no images in y; labels "
                        f"must be 0..K-1 with every class present")
    if k < 2:
        raise DataError(f"{path}: y holds a single class; a classifier needs at least two")
    if "X_test" in arrays:
        X_test, y_test = _npz_pair(path, arrays["X_test"], arrays["y_test"], "X_test", "y_test",
                                   X.shape[1:])
        if y_test.max() >= k:
            raise DataError(f"{path}: y_test holds class {int(y_test.max())}, y only 0..{k - 1};"
                            f" every test class needs training images")
    else:
        train, test = test_split(y, k, opts.test_fraction, path)
        X, y, X_test, y_test = X[train], y[train], X[test], y[test]
    classes = [str(i) for i in range(k)]
    if "classes" in arrays:
        names = arrays["classes"]
        if names.ndim != 1 or names.size != k or names.dtype.kind not in "US":
            raise DataError(f"{path}: classes must be {k} strings (one per class), got "
                            f"{names.dtype} {names.shape}")
        classes = [str(c) for c in names.tolist()]
    dtype = np.uint8 if k <= 256 else np.uint16
    return ({"train_X": X, "train_y": y.astype(dtype), "test_X": X_test,
             "test_y": y_test.astype(dtype)}, classes)


def _npz_pair(path, X, y, xname, yname, shape):
    if X.ndim == 3:
        X = X[..., None]  # (N, H, W): grey
    if X.ndim != 4 or X.dtype != np.uint8 or 0 in X.shape:
        raise DataError(f"{path}: {xname} is {X.dtype} {X.shape}, expected uint8 (N,H,W,C) "
                        f"pixels 0-255 (e.g. (X * 255).round().astype(np.uint8))")
    if shape is not None and X.shape[1:] != shape:
        raise DataError(f"{path}: {xname} images are {X.shape[1:]}, X's are {shape}; save both "
                        f"at one size")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"{path}: {yname} has shape {y.shape}, expected ({X.shape[0]},): one "
                        f"label per image of {xname}")
    if y.dtype.kind not in "iu":
        raise DataError(f"{path}: {yname} is {y.dtype}; labels must be integer class indices "
                        f"0..K-1")
    if y.min() < 0:
        raise DataError(f"{path}: {yname} holds {int(y.min())}; labels must be 0..K-1")
    return np.ascontiguousarray(X), y.astype(np.int64)
