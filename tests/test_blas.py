"""The dense layers' BLAS (``engines/numba/blas.py``): chosen by CPU, overridable, and every
library it can choose computes the dense kernels right and the same run after run.

The choice is made once per process, before any kernel loads, so each library is tried in a
subprocess of its own with ``CNNVSDNN_BLAS`` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cnnvsdnn.engines.numba import blas
from cnnvsdnn.errors import ConfigError

INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"


def test_cpu_vendor_reads_cpuinfo():
    assert blas.cpu_vendor(INTEL) == "GenuineIntel"
    assert blas.cpu_vendor(AMD) == "AuthenticAMD"
    assert blas.cpu_vendor("processor\t: 0\nBogoMIPS\t: 50.00\n") == ""  # arm64 has none


@pytest.mark.parametrize("want, vendor, mkl_loads, chosen", [
    ("auto", "GenuineIntel", True, "mkl"),
    ("auto", "GenuineIntel", False, "openblas"),  # and says so (test below)
    ("auto", "AuthenticAMD", True, "openblas"),   # MKL measured no faster on an AMD EPYC
    ("auto", "", False, "openblas"),              # arm64, macOS: scipy's own
    ("openblas", "GenuineIntel", True, "openblas"),
    ("mkl", "AuthenticAMD", True, "mkl"),
])
def test_the_choice_by_cpu_and_request(want, vendor, mkl_loads, chosen):
    assert blas.choose(want, vendor, mkl_loads) == chosen


def test_asking_for_mkl_where_it_cannot_load_is_a_one_line_error():
    with pytest.raises(ConfigError, match="CNNVSDNN_BLAS=mkl but MKL cannot be loaded"):
        blas.choose("mkl", "GenuineIntel", False)


def test_only_an_intel_cpu_left_without_mkl_gets_the_note():
    assert "pip install mkl" in blas.note("OpenBLAS 0.3.30 (SkylakeX kernels)",
                                          "GenuineIntel", "auto")
    assert blas.note("MKL 2026.2 (AVX-512 kernels)", "GenuineIntel", "auto") is None
    assert blas.note("OpenBLAS 0.3.30 (Haswell kernels)", "AuthenticAMD", "auto") is None
    assert blas.note("OpenBLAS 0.3.30 (SkylakeX kernels)", "GenuineIntel", "openblas") is None


def test_an_unknown_request_is_refused(monkeypatch):
    monkeypatch.setenv("CNNVSDNN_BLAS", "atlas")
    with pytest.raises(ConfigError, match="CNNVSDNN_BLAS='atlas' is not one of auto, mkl"):
        blas.requested()


# Run in a fresh process with CNNVSDNN_BLAS set: the dense kernels (one call and split over
# two blocks, forward and backward) against NumPy in float64, the same inputs at shifted
# addresses (a BLAS whose results moved with the arrays' alignment would make runs differ),
# and the library the engine reports.
_CHECK = textwrap.dedent("""
    import json, numpy as np
    from cnnvsdnn.engines.numba import blas, kernels as K
    from cnnvsdnn.engines.numba.threads import set_threads
    set_threads(2)
    rng = np.random.default_rng(0)
    B, N, M = 100, 300, 40
    x = rng.standard_normal((B, N), dtype=np.float32)
    w = rng.standard_normal((N, M), dtype=np.float32)
    b = rng.standard_normal(M, dtype=np.float32)
    g = rng.standard_normal((B, M), dtype=np.float32)
    out = {"library": blas.library()}
    ref = np.maximum(x.astype(np.float64) @ w + b, 0)
    z = np.empty((B, M), np.float32)
    K.dense_fwd(x, w, b, z, 1, np.float32(1))
    part = np.empty((2, B, M), np.float32)
    z2 = np.empty((B, M), np.float32)
    K.dense_fwd_split(x, w, b, z2, part, 2, 1, np.float32(1))
    out["fwd"] = float(max(np.abs(z - ref).max(), np.abs(z2 - ref).max()))
    dz_ref = g * (ref > 0)
    dw_ref, dx_ref = x.T.astype(np.float64) @ dz_ref, dz_ref @ w.T.astype(np.float64)
    errs = []
    for split in (False, True):
        dw, db, dx, dz = (np.empty((N, M), np.float32), np.empty(M, np.float32),
                          np.empty((B, N), np.float32), np.empty((B, M), np.float32))
        args = (x, g, z, w, dw, db, dx, dz, True)
        (K.dense_bwd_split(*args, 2, 1, np.float32(1)) if split
         else K.dense_bwd(*args, 1, np.float32(1)))
        errs += [np.abs(dw - dw_ref).max(), np.abs(dx - dx_ref).max()]
    out["bwd"] = float(max(errs))
    same = []
    for shift in (1, 3, 8):  # the same numbers from arrays that start elsewhere
        buf = np.empty(B * N + shift, np.float32)
        xs = buf[shift:].reshape(B, N)
        xs[...] = x
        zs = np.empty((B, M), np.float32)
        K.dense_fwd(xs, w, b, zs, 1, np.float32(1))
        same.append(bool(np.array_equal(zs, z)))
    out["aligned_same"] = all(same)
    print(json.dumps(out))
""")


def _libraries():
    yield "openblas"
    probe = subprocess.run([sys.executable, "-c", "from cnnvsdnn.engines.numba import blas; "
                            "print(blas._mkl_library() is not None)"],
                           capture_output=True, text=True, timeout=120)
    if probe.stdout.strip() == "True":
        yield "mkl"


_LIBRARIES = list(_libraries())  # probed once, at collection


@pytest.mark.parametrize("choice", _LIBRARIES)
def test_each_library_computes_the_dense_kernels(choice):
    env = {**os.environ, "CNNVSDNN_BLAS": choice}
    res = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["library"].startswith({"mkl": "MKL", "openblas": "OpenBLAS"}[choice]), out
    # float32 sums of 300 (forward) and 100 (backward) terms of size ~1: a few 1e-5
    assert out["fwd"] < 1e-3 and out["bwd"] < 1e-3, out
    assert out["aligned_same"], out


def test_auto_takes_mkl_on_an_intel_cpu_that_has_it():
    """What runs use when nothing is set, on this machine (skipped on other CPUs)."""
    if "mkl" not in _LIBRARIES or blas.cpu_vendor() != "GenuineIntel":
        pytest.skip("not an Intel CPU with MKL installed")
    env = {k: v for k, v in os.environ.items() if k != "CNNVSDNN_BLAS"}
    res = subprocess.run([sys.executable, "-c", "from cnnvsdnn.engines.numba import blas; "
                          "print(blas.library()); print(blas.fallback_note())"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    library, note = res.stdout.splitlines()
    assert library.startswith("MKL ") and note == "None", res.stdout


def test_the_blas_comparison_prints_every_product_of_every_library():
    """``python -m cnnvsdnn.bench.blas``: the measurement behind the choice (checked products,
    one row per shape and product, a ratio column when MKL is there)."""
    res = subprocess.run([sys.executable, "-m", "cnnvsdnn.bench.blas", "--rounds", "1",
                          "--repeats", "2"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("single-threaded sgemm GFLOP/s") and "openblas" in lines[1]
    rows = [ln.split() for ln in lines[2:]]
    assert len(rows) == 12 and {r[0] for r in rows} == {"392", "784", "1536", "3072"}
    n_libs = len(_LIBRARIES)
    for r in rows:
        values = [float(v) for v in r[-(n_libs + (n_libs == 2)):]]
        assert all(v > 0 for v in values), r
    bad = subprocess.run([sys.executable, "-m", "cnnvsdnn.bench.blas", "--rounds", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--rounds and --repeats must be >= 1" in bad.stderr
