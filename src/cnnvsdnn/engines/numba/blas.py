"""Which BLAS sgemm the dense kernels call: chosen once per process, by CPU.

- **MKL** on Intel CPUs (the ``mkl`` wheel, a dependency on Linux x86-64, run
  single-threaded: the engine splits big matmuls over its own threads). On an Intel Xeon with
  AVX-512 it ran the engine's products (128 x K x 128, K = 392 ... 3072, one thread) 1.2-1.4x
  faster than OpenBLAS's SkylakeX kernels (``python -m cnnvsdnn.bench.blas`` measures it).
- **scipy's BLAS** everywhere else: OpenBLAS on Linux and Windows (on an AMD EPYC, MKL was not
  faster: median 1.03x over the same shapes), Accelerate in scipy's macOS arm64 wheels.

``CNNVSDNN_BLAS=mkl`` or ``openblas`` (scipy's) overrides the choice; ``auto`` is the default.
The numbers a run produces depend on the BLAS (its summation order), so ``metrics.json``
records it; on one machine with one choice they are the same run after run (MKL's results do
not depend on the arrays' alignment: ``tests/test_blas.py``).

The kernels call the symbol ``cnnvsdnn_sgemm`` (Fortran ABI: every argument by reference), and
:func:`bind` points that symbol at the chosen library's ``sgemm`` before any kernel is loaded.
So numba's cached machine code is the same for every choice and finds the function by name
when it is loaded, as numba's own BLAS calls do.
"""

from __future__ import annotations

import ctypes
import platform
import re
import sys
from pathlib import Path

from llvmlite import binding as llvm

from ...env import blas_request
from ...errors import ConfigError

SYMBOL = "cnnvsdnn_sgemm"
_MKL_SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL, for MKL_Set_Threading_Layer
# MKL_CBWR_* code paths (mkl_cbwr_get_auto_branch) as the instruction sets they use
_MKL_BRANCHES = {4: "SSE2", 6: "SSSE3", 7: "SSE4.1", 8: "SSE4.2", 9: "AVX", 10: "AVX2",
                 12: "AVX-512", 14: "AVX-512", 16: "AVX-512", 17: "AVX10"}

_bound: str | None = None  # the library's description once bound


def requested() -> str:
    """``CNNVSDNN_BLAS`` (default ``auto``), checked as the CLI checks it before anything
    loads (``env.check_environment``)."""
    return blas_request()


def cpu_vendor(cpuinfo: str | None = None) -> str:
    """``GenuineIntel``, ``AuthenticAMD``, ... or ``""`` (not x86, or not known)."""
    if platform.machine().lower() not in ("x86_64", "amd64") and cpuinfo is None:
        return ""
    if cpuinfo is None:
        if sys.platform == "win32":  # e.g. "Intel64 Family 6 Model 143 Stepping 8, GenuineIntel"
            return platform.processor().rsplit(",", 1)[-1].strip()
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "vendor_id":
            return value.strip()
    return ""


def choose(want: str, vendor: str, mkl_loads: bool) -> str:
    """``mkl`` or ``openblas`` for a request (``auto``, ``mkl``, ``openblas``) on a CPU."""
    if want == "mkl" and not mkl_loads:
        raise ConfigError("CNNVSDNN_BLAS=mkl but MKL cannot be loaded: install it (pip install "
                          "mkl; Linux or Windows x86-64), or unset CNNVSDNN_BLAS")
    if want == "auto":
        return "mkl" if vendor == "GenuineIntel" and mkl_loads else "openblas"
    return want


def _mkl_library() -> ctypes.CDLL | None:
    """MKL's single dynamic library from the ``mkl`` wheel (installed into the environment's
    lib/ or Library/bin), set to run sequentially; None where there is none."""
    if sys.platform == "win32":
        found = sorted(Path(sys.prefix, "Library", "bin").glob("mkl_rt*.dll"))
    else:
        found = sorted(Path(sys.prefix, "lib").glob("libmkl_rt.so*"))
    for path in found:
        try:
            lib = ctypes.CDLL(str(path))
            lib.MKL_Set_Threading_Layer(ctypes.c_int(_MKL_SEQUENTIAL))  # before any other call
            return lib
        except (OSError, AttributeError):
            continue
    return None


def _scipy_sgemm() -> int:
    """The address of the sgemm numba's own BLAS calls use: scipy's ``cython_blas``."""
    import scipy.linalg.cython_blas as cython_blas

    capsule = cython_blas.__pyx_capi__["sgemm"]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return pointer(capsule, name(capsule))


def _describe_mkl(lib) -> str:
    buf = ctypes.create_string_buffer(256)
    lib.MKL_Get_Version_String(buf, ctypes.c_int(len(buf)))
    version = re.search(r"Version ([\d.]+)", buf.value.decode(errors="replace"))
    lib.mkl_cbwr_get_auto_branch.restype = ctypes.c_int
    branch = _MKL_BRANCHES.get(lib.mkl_cbwr_get_auto_branch())
    return ("MKL" + (f" {version[1]}" if version else "")
            + (f" ({branch} kernels)" if branch else ""))


def _describe_scipy() -> str:
    from threadpoolctl import ThreadpoolController

    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    for lib in libs:
        if "scipy" in Path(lib.filepath).parent.name:  # scipy.libs (numpy's is numpy.libs)
            name = {"openblas": "OpenBLAS", "blis": "BLIS"}.get(lib.internal_api,
                                                                lib.internal_api)
            arch = getattr(lib, "architecture", None)
            return f"{name} {lib.version}" + (f" ({arch} kernels)" if arch else "")
    return "scipy's BLAS"


def bind() -> str:
    """Point ``cnnvsdnn_sgemm`` at the chosen sgemm (once per process; before any kernel that
    calls it is compiled or loaded) and return the library's description."""
    global _bound
    if _bound is None:
        import scipy.linalg.cython_blas  # noqa: F401  loaded before threadpoolctl looks

        want, vendor = requested(), cpu_vendor()
        # MKL is loaded only where it may be chosen: no 15 MB library at every start elsewhere
        maybe = want == "mkl" or (want == "auto" and vendor == "GenuineIntel")
        mkl = _mkl_library() if maybe else None
        if choose(want, vendor, mkl is not None) == "mkl":
            llvm.add_symbol(SYMBOL, ctypes.cast(mkl.sgemm_, ctypes.c_void_p).value)
            _bound = _describe_mkl(mkl)
        else:
            llvm.add_symbol(SYMBOL, _scipy_sgemm())
            _bound = _describe_scipy()
    return _bound


def library() -> str:
    """The BLAS the dense kernels call, e.g. ``MKL 2026.2 (AVX-512 kernels)`` or
    ``OpenBLAS 0.3.30 (Haswell kernels)``."""
    return bind()


def fallback_note() -> str | None:
    """One line when an Intel CPU runs without MKL, not by request (dense layers up to 1.4x
    slower); None otherwise."""
    return note(library(), cpu_vendor(), requested())


def note(library_name: str, vendor: str, want: str) -> str | None:
    """:func:`fallback_note` for a bound library on a CPU and a request."""
    if want == "auto" and vendor == "GenuineIntel" and not library_name.startswith("MKL"):
        return ("dense layers run on OpenBLAS on this Intel CPU, up to 1.4x slower than on "
                "MKL; for MKL: pip install mkl")
    return None
