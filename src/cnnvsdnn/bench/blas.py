"""``python -m cnnvsdnn.bench.blas``: the BLAS libraries the engine can call, side by side on its
own products (what ``engines/numba/blas.py`` chooses from): single-threaded sgemm GFLOP/s for
a batch of 128 through a K -> 128 dense layer -- forward, weight gradient, input gradient --
K = 392, 784, 1536 and 3072 (the halves and wholes of MNIST's and 32x32x3's first layers as
the 2-thread split calls them). The libraries alternate within every round; the median of
the rounds is printed. ``--rounds N`` (3), ``--repeats N`` calls timed per round (50).
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np

from ..engines.numba import blas

_P = ctypes.POINTER
_SGEMM = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, _P(ctypes.c_int),
                          _P(ctypes.c_int), _P(ctypes.c_int), _P(ctypes.c_float),
                          ctypes.c_void_p, _P(ctypes.c_int), ctypes.c_void_p, _P(ctypes.c_int),
                          _P(ctypes.c_float), ctypes.c_void_p, _P(ctypes.c_int))
SHAPES = (392, 784, 1536, 3072)


def libraries() -> dict:
    """{name: Fortran sgemm} for scipy's BLAS and, where it loads, MKL (sequential)."""
    found = {"openblas": _SGEMM(blas._scipy_sgemm())}
    mkl = blas._mkl_library()
    if mkl is not None:
        found["mkl"] = _SGEMM(ctypes.cast(mkl.sgemm_, ctypes.c_void_p).value)
    return found


def _call(f, ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    i = lambda v: ctypes.byref(ctypes.c_int(v))  # noqa: E731
    one, zero = ctypes.byref(ctypes.c_float(1.0)), ctypes.byref(ctypes.c_float(0.0))
    f(ta, tb, i(m), i(n), i(k), one, a.ctypes.data, i(lda), b.ctypes.data, i(ldb), zero,
      c.ctypes.data, i(ldc))


def products(K: int, rng) -> dict:
    """The three products of a 128 x K -> 128 layer, each as f(sgemm) -> (result, reference),
    row-major arrays handed to column-major BLAS as their transposes (as the kernels do)."""
    B = N = 128
    x = rng.standard_normal((B, K), dtype=np.float32)
    w = rng.standard_normal((K, N), dtype=np.float32)
    g = rng.standard_normal((B, N), dtype=np.float32)
    z, dw, dx = np.empty((B, N), np.float32), np.empty((K, N), np.float32), \
        np.empty((B, K), np.float32)
    return {
        "forward": (lambda f: _call(f, b"N", b"N", N, B, K, w, N, x, K, z, N), z, x @ w),
        "weight grad": (lambda f: _call(f, b"N", b"T", N, K, B, g, N, x, K, dw, N), dw,
                        x.T @ g),
        "input grad": (lambda f: _call(f, b"T", b"N", K, B, N, w, N, g, N, dx, K), dx,
                       g @ w.T),
    }


def measure(rounds=3, repeats=50, shapes=SHAPES) -> dict:
    """{(K, product, library): [GFLOP/s per round]}; every result is checked against NumPy."""
    from threadpoolctl import threadpool_limits

    libs, rng, out = libraries(), np.random.default_rng(0), {}
    with threadpool_limits(1, user_api="blas"):
        for _ in range(rounds):
            for K in shapes:
                for name, (run, result, ref) in products(K, rng).items():
                    for lib, f in libs.items():
                        run(f)
                        if not np.allclose(result, ref, rtol=1e-3, atol=1e-2):
                            raise AssertionError(f"{lib} {name} K={K}: wrong product")
                        t = time.perf_counter()
                        for _ in range(repeats):
                            run(f)
                        s = (time.perf_counter() - t) / repeats
                        out.setdefault((K, name, lib), []).append(2 * 128 * K * 128 / s / 1e9)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cnnvsdnn.bench.blas", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1:
        ap.error("--rounds and --repeats must be >= 1")
    res = measure(args.rounds, args.repeats)
    libs = sorted({lib for _, _, lib in res})
    print(f"single-threaded sgemm GFLOP/s, median of {args.rounds} rounds; CPU vendor "
          f"{blas.cpu_vendor() or 'unknown'}; the engine uses {blas.library()}")
    print(f"{'128 x K x 128':>14} {'product':>12} " + " ".join(f"{lib:>9}" for lib in libs)
          + ("   mkl / openblas" if len(libs) == 2 else ""))
    for (K, name) in dict.fromkeys((K, n) for K, n, _ in res):
        med = {lib: float(np.median(res[(K, name, lib)])) for lib in libs}
        row = f"{K:>14} {name:>12} " + " ".join(f"{med[lib]:9.1f}" for lib in libs)
        print(row + (f"   {med['mkl'] / med['openblas']:.2f}" if len(libs) == 2 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
