"""The environment variables cnnvsdnn reads, checked before anything uses them.

A bad value of a variable that numba reads when it is imported would otherwise end in numba's
traceback (``NUMBA_NUM_THREADS=0``) or surface only at the first parallel kernel
(``NUMBA_THREADING_LAYER=foo``).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from .errors import ConfigError

# numba's threading layers and the names that choose among them
THREADING_LAYERS = ("default", "safe", "threadsafe", "forksafe", "tbb", "omp", "workqueue")
# the dense layers' BLAS (engines/numba/blas.py; not imported here: it loads numba)
BLAS_CHOICES = ("auto", "mkl", "openblas")


def check_environment() -> None:
    """A one-line ConfigError for the first variable whose value cannot work."""
    n = os.environ.get("NUMBA_NUM_THREADS")
    if n is not None and (not n.strip().isdigit() or int(n) < 1):
        raise ConfigError(f"NUMBA_NUM_THREADS={n!r} must be a whole number >= 1; unset it to "
                          f"use every core, or set engine.threads=N instead")
    layer = os.environ.get("NUMBA_THREADING_LAYER")
    if layer is not None and layer.lower() not in THREADING_LAYERS:
        raise ConfigError(f"NUMBA_THREADING_LAYER={layer!r} is not one of "
                          f"{', '.join(THREADING_LAYERS)}; unset it to let cnnvsdnn choose")
    blas_request()
    data = os.environ.get("CNNVSDNN_DATA_DIR")
    if data:
        p = Path(data).expanduser()
        while not p.exists() and p != p.parent:
            p = p.parent
        if not p.is_dir():
            raise ConfigError(f"CNNVSDNN_DATA_DIR={data!r}: {p} is a file, not a folder; point "
                              f"it at a folder for the data cache")
    mirror = os.environ.get("CNNVSDNN_MIRROR")
    if mirror and urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise ConfigError(f"CNNVSDNN_MIRROR={mirror!r} is not an http(s):// or file:// URL; "
                          f"give the base URL that serves the official file names")


def blas_request() -> str:
    """``CNNVSDNN_BLAS`` (default ``auto``) as one of ``BLAS_CHOICES``; a one-line ConfigError
    if it is none of them (``engines/numba/blas.py`` reads it through here)."""
    raw = os.environ.get("CNNVSDNN_BLAS")
    want = "auto" if raw is None else raw.strip().lower()
    if want not in BLAS_CHOICES:
        raise ConfigError(f"CNNVSDNN_BLAS={raw!r} is not one of {', '.join(BLAS_CHOICES)}; "
                          f"unset it to let cnnvsdnn choose by CPU")
    return want
