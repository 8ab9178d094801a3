"""Engines: one network, computed by whichever engine is asked for.

- ``layer_types.py``: the registry of layer types (keys, shapes, parameters, initialisation,
  the plain-NumPy definition, and the peers' equivalents) every engine builds from;
- ``base.py``: the interface an engine implements (``Engine``) and Adam's settings;
- ``numba/``: ours; ``numpy_twin.py``: the plain-NumPy twin; ``keras.py``: the reference column;
  ``torch.py``: PyTorch and ``jax.py``: JAX, the peers of ``cnnvsdnn bench`` and the
  cross-checks.

:func:`create` imports an engine's module on first use, so TensorFlow, PyTorch and JAX load only for
the runs that ask for them.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import AdamSettings, Engine
from .layer_types import LAYER_TYPES, Network, init_params, network, validate_layers

# engine name -> (module, class); the modules are imported by create(), on first use
ENGINES = {
    "numba": ("cnnvsdnn.engines.numba", "NumbaEngine"),
    "keras": ("cnnvsdnn.engines.keras", "KerasEngine"),
    "torch": ("cnnvsdnn.engines.torch", "TorchEngine"),
    "jax": ("cnnvsdnn.engines.jax", "JaxEngine"),
    "numpy": ("cnnvsdnn.engines.numpy_twin", "NumpyEngine"),
}


def engine_class(name: str) -> type[Engine]:
    try:
        module, cls = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}") from None
    return getattr(importlib.import_module(module), cls)


def create(name: str, net: Network, params: dict, adam: AdamSettings, batch_size: int,
           threads: int, **options) -> Engine:
    """The engine ``name`` holding ``params`` (named as ``net.param_shapes()``)."""
    return engine_class(name)(net, params, adam, batch_size, threads, **options)


__all__ = ["ENGINES", "LAYER_TYPES", "AdamSettings", "Engine", "Network", "create",
           "engine_class", "init_params", "network", "validate_layers"]
