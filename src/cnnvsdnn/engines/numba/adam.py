"""Adam (Kingma & Ba) as one fused in-place numba pass over the flat parameter buffer."""

import numpy as np

from ...errors import ConfigError
from ..base import AdamSettings
from .kernels import adam_step, adam_step_eps_minus


class Adam:
    """Textbook Adam (``AdamSettings`` form ``textbook``) over one flat float32 buffer.
    ``eps_sign="minus"``: the study's code's ``/(sqrt(vhat) - eps)``
    (:func:`kernels.adam_step_eps_minus`)."""

    def __init__(self, n_params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, eps_sign="plus"):
        AdamSettings(lr, beta1, beta2, eps, eps_sign=eps_sign)  # checks the values
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), \
            float(eps)
        self._kernel = adam_step if eps_sign == "plus" else adam_step_eps_minus
        self.m = np.zeros(n_params, np.float32)
        self.v = np.zeros(n_params, np.float32)
        self.t = 0

    def step(self, params, grads):
        """theta -= lr * mhat / (sqrt(vhat) ± eps), with bias-corrected moments."""
        self.t += 1
        c1 = 1.0 / (1.0 - self.beta1 ** self.t)
        c2 = 1.0 / (1.0 - self.beta2 ** self.t)
        self._kernel(params, grads, self.m, self.v, self.lr, self.beta1, self.beta2, self.eps,
                     c1, c2)

    def warm_up(self):
        """Compile (or load from numba's cache) the update kernel; changes nothing."""
        e = self.m[:0]
        self._kernel(e, e, e, e, self.lr, self.beta1, self.beta2, self.eps, 1.0, 1.0)

    def load_state(self, m, v, t):
        if np.shape(m) != self.m.shape or np.shape(v) != self.v.shape:
            raise ConfigError(
                f"optimizer state of size {np.shape(m)} does not fit {self.m.shape}; resume "
                f"with the model config the checkpoint was written with"
            )
        self.m[...] = m
        self.v[...] = v
        self.t = int(t)
