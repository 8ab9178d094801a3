"""The one place that says how engine kernels are compiled and which thread pool runs them.

``reassoc``/``contract`` let LLVM vectorise reductions and fuse multiply-adds; ``nnan``/``ninf``
are left out on purpose so a diverging run shows NaN instead of silently wrong numbers.
``error_model="numpy"`` drops Python's zero-division check, whose branch stops LLVM from
vectorising any loop that divides (Adam ran 4x slower with it).

Numba's ``workqueue`` threading layer is chosen (unless NUMBA_THREADING_LAYER says otherwise):
its idle workers sleep, whereas OpenMP workers spin and fight OpenBLAS's threads for the
cores; with the OpenMP layer a step took 20-50x longer on a busy 2-core machine.
"""

import os

import numba
from numba import njit

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"


# Numba's on-disk cache is keyed on the kernel's source file, not on these flags: after
# changing them, delete engine/__pycache__/*.nbi and *.nbc.


def jit(parallel=False):
    """``njit`` with the engine's flags; ``cache=True`` keeps compile time to the first run."""
    return njit(cache=True, fastmath=set(FASTMATH), parallel=parallel, nogil=True,
                error_model="numpy")
