"""How many threads the engine uses: numba's parallel loops and BLAS (scipy's, numpy's)."""

import numba
import scipy.linalg.cython_blas  # noqa: F401  numba's np.dot calls it: load it before limiting
from threadpoolctl import ThreadpoolController, threadpool_limits

from ..errors import ConfigError

_blas_limit = None  # keeps the threadpoolctl limit alive for the whole process
_blas = {"libs": None, "max": 1, "now": None}  # BLAS controllers, their thread cap, current
_dense_blocks = 0  # > 1: big dense layers split over this many numba threads (see layers.Dense)

# Multiply-adds from which a matmul gets all BLAS threads. Each multi-threaded BLAS call wakes
# and waits for its helpers; on a busy machine one descheduled helper stalls the call for a
# time slice (median step 3-10x the best). Below ~4M multiply-adds (128x128x128 is 2M, ~50 us)
# a second thread saves little even on an idle machine, so small layers stay single-threaded.
BLAS_MIN_MACS = 4_000_000
# Multiply-adds from which a dense layer's matmuls are split over numba's threads instead.
# numba's pool wakes in microseconds, so even the 128->64 layer (1M at batch 128) gains;
# 64->10 (82K) does not.
SPLIT_MIN_MACS = 500_000


def set_threads(n, blas_threads=None):
    """Use ``n`` threads (0 = all cores) for the engine; ``blas_threads`` (default 1) for BLAS.

    With single-threaded BLAS (the default) the big dense layers are parallelised by numba
    instead: ``n`` blocks of weight rows, one BLAS call each (``kernels.dense_fwd_split``).
    OpenBLAS's own threads spin ~0.1 s after every call and take the cores from numba's
    workers (a CNN step took 1.6x longer); on a busy machine they also stall waiting for a
    descheduled partner.
    ``blas_threads > 1`` gives BLAS that many threads instead, for matmuls of at least
    ``BLAS_MIN_MACS`` (see ``blas_for``). Both are capped at numba's NUMBA_NUM_THREADS;
    numba's setting applies to the calling thread (numba keeps it per thread).
    """
    global _blas_limit, _dense_blocks
    top = numba.config.NUMBA_NUM_THREADS
    for name, v in (("engine.threads", n), ("blas threads", blas_threads)):
        if v is None and name != "engine.threads":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"{name}={v!r} must be an integer >= 0 (0 = all cores)")
    # more than numba may start (the cores, or fewer in a joblib worker) is capped, not an error
    n = min(n or top, top)
    blas_threads = 1 if blas_threads is None else min(blas_threads or n, top)
    numba.set_num_threads(n)
    _dense_blocks = n if blas_threads == 1 else 0
    _blas_limit = threadpool_limits(limits=blas_threads, user_api="blas")
    _blas.update(libs=ThreadpoolController().select(user_api="blas").lib_controllers,
                 max=blas_threads, now=blas_threads)


def dense_blocks():
    """How many numba threads a big dense layer is split over (0 or 1: plain BLAS calls)."""
    return _dense_blocks


def blas_for(macs):
    """Give the next matmul (``macs`` multiply-adds) all BLAS threads or one (~1 us a switch)."""
    if _blas["libs"] is None:  # set_threads was never called: leave BLAS as it is
        return
    want = _blas["max"] if macs >= BLAS_MIN_MACS else 1
    if want != _blas["now"]:
        for lib in _blas["libs"]:
            lib.set_num_threads(want)
        _blas["now"] = want
