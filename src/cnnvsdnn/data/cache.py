"""The decoded-array cache: one ``.npy`` per array plus a manifest of their sha256.

Decoding a tarball of pickles or a 180 MB ``.mat`` file takes seconds; reading four ``.npy``
files takes a fraction of one. Each array is checked against the sha256 written when it was
cached (sha256 runs at >1 GB/s here), so a damaged cache file is detected and never used.
The manifest also records the raw files the arrays came from (path, size, mtime), so replacing
a raw file invalidates the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

KEYS = ("train_X", "train_y", "test_X", "test_y")
MANIFEST = "manifest.json"


def cache_dir(dataset_dir: Path) -> Path:
    return dataset_dir / "decoded"


def file_stamp(path: Path) -> list:
    """What identifies a raw file cheaply: its absolute path, size and mtime."""
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def save(dataset_dir: Path, arrays: dict[str, np.ndarray], source: str, inputs: list[Path],
         verified: bool, extra: dict | None = None) -> None:
    """Write the arrays and then the manifest (last, so a half-written cache has none).
    ``extra``: more manifest fields (the user's datasets record their fingerprints there)."""
    d = cache_dir(dataset_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / MANIFEST).unlink(missing_ok=True)
    sums = {}
    for key in KEYS:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
        data = buf.getvalue()
        sums[key] = hashlib.sha256(data).hexdigest()
        tmp = d / f".{key}.npy.{os.getpid()}.tmp"  # concurrent jobs must not collide
        tmp.write_bytes(data)
        os.replace(tmp, d / f"{key}.npy")
    manifest = {"source": source, "verified": verified, "sha256": sums,
                "inputs": [file_stamp(p) for p in inputs], **(extra or {})}
    tmp = d / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, d / MANIFEST)


def read_manifest(dataset_dir: Path) -> dict | None:
    try:
        return json.loads((cache_dir(dataset_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def inputs_unchanged(manifest: dict) -> bool:
    """True if no raw file the cache was built from has changed. A deleted one has not: the
    cache holds its data (users may delete a 170 MB tarball once it is decoded)."""
    for path, size, mtime in manifest.get("inputs", []):
        try:
            if file_stamp(Path(path))[1:] != [size, mtime]:
                return False
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def load(dataset_dir: Path, manifest: dict) -> tuple[dict[str, np.ndarray] | None, str]:
    """The cached arrays, or (None, why) if any file is missing or fails its sha256."""
    d = cache_dir(dataset_dir)
    out = {}
    for key in KEYS:
        path = d / f"{key}.npy"
        try:
            data = path.read_bytes()
        except OSError:
            return None, f"{path} is missing"
        if hashlib.sha256(data).hexdigest() != manifest["sha256"].get(key):
            return None, f"{path} is corrupt (sha256 differs from the one recorded)"
        out[key] = np.load(io.BytesIO(data), allow_pickle=False)
    return out, ""


def clear(dataset_dir: Path) -> None:
    """Remove the decoded arrays (never the raw files)."""
    d = cache_dir(dataset_dir)
    (d / MANIFEST).unlink(missing_ok=True)
    for key in KEYS:
        (d / f"{key}.npy").unlink(missing_ok=True)


def size_bytes(dataset_dir: Path) -> int:
    d = cache_dir(dataset_dir)
    return sum(p.stat().st_size for p in d.glob("*.npy")) if d.is_dir() else 0
