"""The numba training engine.

Conventions:

- images and activations are NHWC float32, (batch, height, width, channels); ``flatten`` keeps
  that order (H, W, C), as Keras does;
- conv weights are (filters, channels, K, K) and compute the cross-correlation of SPEC section 3;
  dense weights are (inputs, outputs); biases are (outputs,);
- every parameter lives in ``model.params``, one float32 vector, in layer order, weight then bias;
  ``model.layer_params()`` names the views ("0.conv.w", "0.conv.b", "3.dense.w", ...);
- an activation layer right after a conv or dense layer is applied inside that layer's kernels
  (the activation layer then passes through); results are the same, two passes are saved;
- dense layers call BLAS's sgemm from numba (``kernels._gemm``), blocks of a matrix in place;
- ``numpy_ref`` is the plain-NumPy twin of every kernel, used by the tests.

Threads: ``set_threads(n)`` sets numba's thread count (per calling thread, as numba does);
BLAS runs single-threaded and the big dense layers are split over the ``n`` numba threads
instead (see ``threads.py``). Kernels run on numba's ``tbb`` layer when the ``tbb`` package is
installed, else on ``workqueue``, which does not allow parallel kernels to be launched from
two Python threads at once (see ``_jit.py``).
"""

from .adam import Adam
from .model import Model, build_model
from .spec import validate_layers
from .threads import set_threads

# Bump when a change alters the numbers a run produces (summation order included): finished
# runs record it in metrics.json, and `report` and the experiments refuse to reuse a run of
# another revision. 1: runs made before revisions were recorded; 2: dense layers via sgemm,
# split along their inputs, activation fused.
REVISION = 2

__all__ = ["REVISION", "Adam", "Model", "build_model", "set_threads", "validate_layers"]
