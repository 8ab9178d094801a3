"""The numba engine: the study's networks written from scratch, compiled by numba.

- ``layers.py``: one class per layer type (forward/backward over preallocated buffers);
- ``kernels.py``: the numba kernels they call (dense layers call BLAS's sgemm from them);
- ``model.py``: a sequential model over one flat float32 parameter buffer;
- ``adam.py``: Adam as one fused pass over that buffer;
- ``threads.py``: the thread plan (numba threads, BLAS threads, dense-layer split);
- ``blas.py``: which BLAS sgemm the dense kernels call (MKL on Intel CPUs, else scipy's);
- ``_jit.py``: the one place that says how kernels are compiled and which thread pool runs them;
- ``fpmode.py``: denormal floats flushed to zero in every kernel, on every thread;
- ``engine.py``: all of it behind the common engine interface (``engines/base.py``).

An activation layer right after a conv or dense layer is applied inside that layer's kernels
(the activation layer then passes through); results are the same, two passes are saved.
Kernels run on numba's ``tbb`` layer when the ``tbb`` package is installed (a dependency on
Linux x86-64), else on ``omp`` with passive waits, else on ``workqueue``, which does not allow
parallel kernels to be launched from two Python threads at once (see ``_jit.py``).
"""

from .adam import Adam
from .engine import REVISION, NumbaEngine
from .model import Model, build_model
from .threads import ThreadPlan, set_threads

__all__ = ["REVISION", "Adam", "Model", "NumbaEngine", "ThreadPlan", "build_model",
           "set_threads"]
