"""The one place that says how engine kernels are compiled and which thread pool runs them.

``reassoc``/``contract`` let LLVM vectorise reductions and fuse multiply-adds; ``nnan``/``ninf``
are left out on purpose so a diverging run shows NaN instead of silently wrong numbers.
``error_model="numpy"`` drops Python's zero-division check, whose branch stops LLVM from
vectorising any loop that divides (Adam ran 4x slower with it).

Threading layer (unless NUMBA_THREADING_LAYER says otherwise), the fastest that loads:

1. ``tbb``: Intel TBB (the ``tbb`` package, a dependency where PyPI has wheels: Linux and
   Windows x86-64). Its calling thread takes part in every parallel loop and idle workers
   steal work, so a worker the OS is slow to wake costs little (3-6 us a parallel region);
2. ``omp`` with ``OMP_WAIT_POLICY=PASSIVE`` (where no TBB wheel exists: Linux aarch64, macOS
   with libomp): GNU/LLVM OpenMP with sleeping, not spinning, workers (~13 us a region). Never
   OpenMP's default spinning: its workers fight for the cores, and a step took 20-50x longer
   on a busy 2-core machine. The variable must be set before the OpenMP runtime loads;
3. ``workqueue``, numba's own: ~80-100 us a region on a busy machine, as the caller only waits
   for its workers. ``fallback_note()`` says so once.

Results do not depend on the layer (per-sample work, fixed-order sums).
"""

import ctypes
import os
import platform
import sys
from pathlib import Path

import numba
from numba import njit

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})


def _tbb_loads() -> bool:
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


def _omp_loads() -> bool:
    """True if numba's OpenMP layer loads (libgomp, or libomp on macOS, is present)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when the runtime loads
    try:
        from numba.np.ufunc import omppool  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def _choose_layer() -> str:
    for name, loads in (("tbb", _tbb_loads), ("omp", _omp_loads)):
        if loads():
            return name
    return "workqueue"


if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = _choose_layer()
elif numba.config.THREADING_LAYER in ("omp", "default", "safe", "threadsafe"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # should numba pick OpenMP


def threading_layer() -> str:
    """The layer numba runs parallel kernels on (after the first one ran: the one it loaded)."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel ran yet: the one asked for
        return str(numba.config.THREADING_LAYER)


def fallback_note() -> str | None:
    """One line when kernels run on the slow ``workqueue`` layer, saying how to get a fast one;
    None otherwise."""
    if threading_layer() != "workqueue":
        return None
    if "NUMBA_THREADING_LAYER" in os.environ:
        how = "unset NUMBA_THREADING_LAYER"
    elif platform.machine().lower() in ("x86_64", "amd64"):
        how = "pip install tbb"
    elif sys.platform == "darwin":
        how = "brew install libomp"
    else:
        how = "install the OpenMP runtime (e.g. apt install libgomp1)"
    return (f"numba runs on its slow 'workqueue' threading layer (steps up to 2.6x slower); "
            f"for a fast one: {how}")


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
