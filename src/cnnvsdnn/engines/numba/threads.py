"""How many threads the engine uses: numba's parallel loops and BLAS (scipy's, numpy's).

:func:`set_threads` sets numba's thread count and BLAS's, and returns the :class:`ThreadPlan`
the model's layers follow (``Model(..., threads=plan)`` or ``model.use_threads(plan)``): how
many numba threads a big dense layer is split over, and when a matmul gets BLAS's threads.
"""

import numba
import scipy.linalg.cython_blas  # noqa: F401  a BLAS the kernels call (blas.py): load it before limiting
from threadpoolctl import ThreadpoolController, threadpool_limits

from ...errors import ConfigError

# Multiply-adds from which a matmul gets all BLAS threads. Each multi-threaded BLAS call wakes
# and waits for its helpers; on a busy machine one descheduled helper stalls the call for a
# time slice (median step 3-10x the best). Below ~4M multiply-adds (128x128x128 is 2M, ~50 us)
# a second thread saves little even on an idle machine, so small layers stay single-threaded.
BLAS_MIN_MACS = 4_000_000
# Multiply-adds from which a dense layer's matmuls are split over numba's threads instead.
# numba's pool wakes in microseconds, so even the 128->64 layer (1M at batch 128) gains;
# 64->10 (82K) does not.
SPLIT_MIN_MACS = 500_000

_blas_limit = None  # keeps the process's threadpoolctl limit alive


class ThreadPlan:
    """Which threads a model's layers use.

    ``dense_blocks > 1``: dense layers of at least ``SPLIT_MIN_MACS`` multiply-adds are split
    into that many blocks over numba's threads, one single-threaded BLAS call each;
    ``blas_threads > 1``: no split, and matmuls of at least ``BLAS_MIN_MACS`` get that many
    BLAS threads; ``blas_threads`` None leaves BLAS as it is (a plan not made by set_threads).
    """

    def __init__(self, threads=1, dense_blocks=0, blas_threads=None):
        self.threads, self.dense_blocks, self.blas_threads = threads, dense_blocks, blas_threads
        self._libs = None if blas_threads is None else \
            ThreadpoolController().select(user_api="blas").lib_controllers
        self._now = blas_threads

    def blocks_for(self, macs: int) -> int:
        """Threads to split a dense layer's matmul of ``macs`` multiply-adds over (1: one BLAS
        call, given all BLAS threads or one as :meth:`blas_for` decides)."""
        if self.dense_blocks > 1 and macs >= SPLIT_MIN_MACS:
            return self.dense_blocks
        self.blas_for(macs)
        return 1

    def blas_for(self, macs: int) -> None:
        """Give the next matmul all BLAS threads or one (~1 us a switch)."""
        if self._libs is None:
            return
        want = self.blas_threads if macs >= BLAS_MIN_MACS else 1
        if want != self._now:
            for lib in self._libs:
                lib.set_num_threads(want)
            self._now = want


def set_threads(n, blas_threads=None) -> ThreadPlan:
    """Use ``n`` threads (0 = all cores) for the engine; ``blas_threads`` (default 1) for BLAS.

    With single-threaded BLAS (the default) the big dense layers are parallelised by numba
    instead: ``n`` blocks of weight rows, one BLAS call each (``kernels.dense_fwd_split``).
    OpenBLAS's own threads spin ~0.1 s after every call and take the cores from numba's
    workers (a CNN step took 1.6x longer); on a busy machine they also stall waiting for a
    descheduled partner. ``blas_threads > 1`` gives BLAS that many threads instead, for matmuls
    of at least ``BLAS_MIN_MACS`` (OpenBLAS only: the engine runs MKL sequentially). Both are
    capped at numba's NUMBA_NUM_THREADS; numba's setting applies to the calling thread (numba
    keeps it per thread).
    """
    global _blas_limit
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
    _blas_limit = threadpool_limits(limits=blas_threads, user_api="blas")
    return ThreadPlan(n, n if blas_threads == 1 else 0, blas_threads)
