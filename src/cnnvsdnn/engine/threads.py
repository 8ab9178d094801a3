"""How many threads the engine uses: numba's parallel loops and the BLAS under numpy."""

import numba
from threadpoolctl import threadpool_limits

from ..errors import ConfigError

_blas_limit = None  # keeps the threadpoolctl limit alive for the whole process


def set_threads(n):
    """Use ``n`` threads for numba kernels and for BLAS (dense layers)."""
    global _blas_limit
    top = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= top:
        raise ConfigError(f"engine.threads={n!r} must be an integer in 1..{top} (this machine)")
    numba.set_num_threads(n)
    _blas_limit = threadpool_limits(limits=n, user_api="blas")
