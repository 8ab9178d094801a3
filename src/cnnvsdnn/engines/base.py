"""The one small interface every engine implements, and the optimiser settings they share.

An engine holds a network's parameters and its optimiser state and does four things for the
training loop (``run/loop.py``): one training step on a batch, class probabilities for
evaluation, its state for a checkpoint, and the parameters in the common layout (named as
``Network.param_shapes()`` names them, numba's shapes). Engines: ``numba`` (ours),
``keras`` (the reference column), and the peers ``cnnvsdnn bench`` times: ``torch``, ``jax``
and ``numpy`` (the plain-NumPy twin). Every engine starts from the parameters it is given,
drawn by ``layer_types.init_params``, so the same seed gives every engine the same weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .layer_types import Network

ADAM_FORMS = ("textbook", "keras")
EPS_SIGNS = ("plus", "minus")


@dataclass(frozen=True)
class AdamSettings:
    """Adam (Kingma & Ba). ``form``:

    - ``textbook``: m̂ = m/(1-β1^t), v̂ = v/(1-β2^t), θ ← θ - η m̂/(√v̂ + ε) (the study's report;
      the numba engine, PyTorch and JAX/optax compute this);
    - ``keras``: Keras's own, θ ← θ - η_t m/(√v + ε) with η_t = η √(1-β2^t)/(1-β1^t): its ε
      stands for ε√(1-β2^t) of the textbook form (the study's Keras runs used it, ε = 1e-7).

    ``eps_sign="minus"`` computes θ ← θ - η m̂/(√v̂ - ε), as the study's code did (its
    ``functions.adam``): where √v̂ < ε (a weight whose gradients are tiny and rare) the step
    points uphill and can be huge. ``signed_eps`` is the ε that the ``+ ε`` formula takes.
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    form: str = "textbook"
    # plus: ... /(√v̂ + ε); minus: ... /(√v̂ − ε), the study's code (``optimizer.eps_sign``)
    eps_sign: str = "plus"

    def __post_init__(self):
        for name in ("lr", "eps"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"optimizer.{name}={getattr(self, name)!r} must be > 0")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"optimizer.{name}={getattr(self, name)!r} must be in [0, 1)")
        if self.eps_sign not in EPS_SIGNS:
            raise ConfigError(f"optimizer.eps_sign={self.eps_sign!r} is not one of "
                              f"{', '.join(EPS_SIGNS)}")
        if self.form not in ADAM_FORMS:
            raise ConfigError(f"Adam form {self.form!r} is not one of {', '.join(ADAM_FORMS)}")


    @property
    def signed_eps(self) -> float:
        """+ε or -ε: the textbook update with this ε is the one ``eps_sign`` asks for."""
        return self.eps if self.eps_sign == "plus" else -self.eps


def split_flat(net: Network, flat: np.ndarray) -> dict[str, np.ndarray]:
    """One flat float32 vector in storage order (as ``Engine.flat_params`` and the numba
    engine's Adam moments hold them) as named arrays shaped as ``Network.param_shapes()``."""
    out, off = {}, 0
    for name, shape in net.param_shapes().items():
        n = int(np.prod(shape))
        out[name] = np.asarray(flat[off:off + n], np.float32).reshape(shape)
        off += n
    if off != np.size(flat):
        raise ConfigError(f"{np.size(flat)} values do not fit the network's {off} parameters")
    return out


class Engine(ABC):
    """Train and evaluate one network. Images come in as uint8 (N, H, W, C) and are scaled by
    1/255 inside the engine; labels are int64 class indices."""

    name: str = ""
    # Bump when a change alters the numbers the engine produces (summation order included):
    # finished runs record it, and report and the experiments refuse to mix revisions.
    revision: int = 1
    resumable: bool = True  # state() / load_state() continue a run bit for bit

    def __init__(self, net: Network, params: dict[str, np.ndarray], adam: AdamSettings,
                 batch_size: int, threads: int):
        self.net, self.adam, self.batch_size, self.threads = net, adam, batch_size, threads

    @abstractmethod
    def train_step(self, X: np.ndarray, idx: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Forward, backward and one Adam update on the batch ``X[idx]`` with labels ``y``;
        returns the batch's mean cross-entropy and accuracy (before the update)."""

    @abstractmethod
    def predict_proba(self, X: np.ndarray, chunk: int = 1000) -> np.ndarray:
        """Class probabilities (N, K) float32, ``chunk`` images at a time."""

    def eval_input(self, X: np.ndarray) -> np.ndarray:
        """``X`` (uint8 images) as this engine evaluates them fastest, for a split evaluated
        again and again (the development split): what :meth:`predict_proba` then takes with
        the same results. The images themselves unless an engine says otherwise."""
        return X

    @abstractmethod
    def layer_params(self) -> dict[str, np.ndarray]:
        """The parameters, named and shaped as ``Network.param_shapes()`` says."""

    def flat_params(self) -> np.ndarray:
        """Every parameter in one float32 vector, in storage order."""
        return np.concatenate([a.ravel() for a in self.layer_params().values()]).astype(
            np.float32, copy=False)

    def warm_up(self, X: np.ndarray) -> None:  # noqa: B027 -- most engines need none
        """Compile or load whatever the first step would (the state does not change)."""

    def state(self) -> dict[str, np.ndarray | int]:
        """Everything a checkpoint needs to continue bit for bit (``resumable`` engines)."""
        raise NotImplementedError(f"the {self.name} engine keeps no checkpoint")

    def load_state(self, state: dict) -> None:
        raise NotImplementedError(f"the {self.name} engine keeps no checkpoint")

    def finite(self) -> bool:
        """True while every parameter is finite."""
        return bool(np.isfinite(self.flat_params()).all())

    def info(self) -> dict:
        """What ``metrics.json`` records of the engine beyond its name."""
        return {"threads": self.threads, "engine_revision": self.revision}

    def about(self) -> tuple[str | None, str | None]:
        """(one line saying what computes the engine, a warning when that is a slow fallback);
        either may be None."""
        return None, None
