"""Adam (Kingma & Ba) as one fused in-place numba pass over the flat parameter buffer."""

import numpy as np

from ..errors import ConfigError
from .kernels import adam_step


class Adam:
    def __init__(self, n_params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        for name, v, lo, hi in (("lr", lr, 0, None), ("beta1", beta1, 0, 1),
                                ("beta2", beta2, 0, 1), ("eps", eps, 0, None)):
            if not (v > lo and (hi is None or v < hi)):
                bounds = f"in ({lo}, {hi})" if hi is not None else f"> {lo}"
                raise ConfigError(f"optimizer.{name}={v!r} must be {bounds}")
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), \
            float(eps)
        self.m = np.zeros(n_params, np.float32)
        self.v = np.zeros(n_params, np.float32)
        self.t = 0

    def step(self, params, grads):
        """theta -= lr * mhat / (sqrt(vhat) + eps), with bias-corrected moments (SPEC 4)."""
        self.t += 1
        c1 = 1.0 / (1.0 - self.beta1 ** self.t)
        c2 = 1.0 / (1.0 - self.beta2 ** self.t)
        adam_step(params, grads, self.m, self.v, self.lr, self.beta1, self.beta2, self.eps,
                  c1, c2)

    def warm_up(self):
        """Compile (or load from numba's cache) the update kernel; changes nothing."""
        e = self.m[:0]
        adam_step(e, e, e, e, self.lr, self.beta1, self.beta2, self.eps, 1.0, 1.0)

    def load_state(self, m, v, t):
        if np.shape(m) != self.m.shape or np.shape(v) != self.v.shape:
            raise ConfigError(
                f"optimizer state of size {np.shape(m)} does not fit {self.m.shape}; resume "
                f"with the model config the checkpoint was written with"
            )
        self.m[...] = m
        self.v[...] = v
        self.t = int(t)
