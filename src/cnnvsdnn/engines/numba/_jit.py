"""The one place that says how engine kernels are compiled and which thread pool runs them.

``reassoc``/``contract`` let LLVM vectorise reductions and fuse multiply-adds; ``nnan``/``ninf``
are left out on purpose so a diverging run shows NaN instead of silently wrong numbers.
``error_model="numpy"`` drops Python's zero-division check, whose branch stops LLVM from
vectorising any loop that divides (Adam ran 4x slower with it).

Threading layer (unless NUMBA_THREADING_LAYER says otherwise): ``tbb`` when the ``tbb``
package is installed, else ``workqueue``. Never OpenMP: its workers spin and fight for the
cores (a step took 20-50x longer on a busy 2-core machine). TBB's calling thread takes part in
every parallel loop and idle workers steal work, so a worker the OS is slow to wake costs less
than with workqueue, where the caller only waits: CNN steps 15-25%, DNN steps 40% faster at 2
threads. Results do not depend on the layer (per-sample work, fixed-order sums).
"""

import ctypes
import os
import sys
from pathlib import Path

import numba
from numba import njit

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})


def _tbb_loads():
    """True if numba's TBB layer can load. pip's ``tbb`` puts libtbb in <venv>/lib, which is
    not on the loader path: load it by full path first so numba's tbbpool finds it."""
    for lib in Path(sys.prefix, "lib").glob("libtbb.so.12"):
        try:
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        except OSError:
            return False
    try:
        from numba.np.ufunc import tbbpool  # noqa: F401
    except (ImportError, OSError):  # not installed, or a libtbb numba cannot use
        return False
    return True


if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "tbb" if _tbb_loads() else "workqueue"


# Numba's on-disk cache is keyed on the kernel's source file, not on these flags: after
# changing them, delete engine/__pycache__/*.nbi and *.nbc.


def jit(parallel=False, exact_division=False):
    """``njit`` with the engine's flags; ``cache=True`` keeps compile time to the first run.

    ``exact_division`` drops ``arcp``, which lets LLVM turn ``x / c`` into ``x * (1 / c)``
    (off by one ulp for some x): for kernels whose results must match numpy's division.
    """
    flags = FASTMATH - {"arcp"} if exact_division else FASTMATH
    return njit(cache=True, fastmath=set(flags), parallel=parallel, nogil=True,
                error_model="numpy")
