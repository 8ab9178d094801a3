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
from pathlib import Path

import numpy as np

from ..safe_io import atomic_write, io_error, write_text

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
    A failure (a full disk) is a CnnvsdnnError and leaves no temporary file.
    ``extra``: more manifest fields (the user's datasets record their fingerprints there)."""
    d = cache_dir(dataset_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
        (d / MANIFEST).unlink(missing_ok=True)
    except OSError as ex:
        raise io_error(ex, d) from None
    sums = {}
    for key in KEYS:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
        data = buf.getvalue()
        sums[key] = hashlib.sha256(data).hexdigest()
        atomic_write(d / f"{key}.npy", lambda f, b=data: f.write(b))  # pid-named temp file
    manifest = {"source": source, "verified": verified, "sha256": sums,
                "inputs": [file_stamp(p) for p in inputs], **(extra or {})}
    write_text(d / MANIFEST, json.dumps(manifest, indent=1))


def read_manifest(dataset_dir: Path) -> dict | None:
    """The cache's manifest, or None when there is none or it is damaged (the cache is then
    rebuilt from the raw files, never trusted)."""
    try:
        m = json.loads((cache_dir(dataset_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    ok = (isinstance(m, dict) and isinstance(m.get("source"), str)
          and isinstance(m.get("verified"), bool) and isinstance(m.get("sha256"), dict)
          and all(isinstance(m["sha256"].get(k), str) for k in KEYS)
          and isinstance(m.get("inputs", []), list)
          and all(isinstance(i, list) and len(i) == 3 and isinstance(i[0], str)
                  and all(isinstance(v, int) for v in i[1:]) for i in m.get("inputs", [])))
    return m if ok else None


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
