"""The bench's engines and input shapes (shared by the command and its worker processes)."""

INPUTS = {"28x28x1": (28, 28, 1), "32x32x3": (32, 32, 3)}
# bench engine -> (engines.create name, options)
ENGINES = {"numba": ("numba", {}), "torch": ("torch", {"variant": "eager"}),
           "torch_fused": ("torch", {"variant": "fused"}),
           "torch_compile": ("torch", {"variant": "compile"}),
           "jax": ("jax", {}), "numpy": ("numpy", {})}
# the module each peer needs (a peer whose module is missing is skipped)
NEEDS = {"torch": "torch", "torch_fused": "torch", "torch_compile": "torch", "jax": "jax"}
