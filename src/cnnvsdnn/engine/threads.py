"""How many threads the engine uses: numba's parallel loops and the BLAS under numpy."""

import numba
from threadpoolctl import threadpool_limits

from ..errors import ConfigError

_blas_limit = None  # keeps the threadpoolctl limit alive for the whole process


def set_threads(n, blas_threads=None):
    """Use ``n`` threads (0 = all cores) for numba kernels and ``blas_threads`` (default: the
    same) for BLAS; both are capped at numba's NUMBA_NUM_THREADS.

    numba's setting applies to the calling thread (numba keeps it per thread). On a machine
    busy with other processes, BLAS threads that wait for a descheduled partner stall every
    dense layer (median step times 10-50x the best); ``blas_threads=1`` avoids that.
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
    blas_threads = min(blas_threads or n, top)
    numba.set_num_threads(n)
    _blas_limit = threadpool_limits(limits=blas_threads, user_api="blas")
