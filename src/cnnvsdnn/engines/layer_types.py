"""The layer types a model may use: one registry entry per type, shared by every engine.

A model is a list of layers in YAML (``conf/model/*.yaml``), e.g. ``{type: conv, filters: 3,
kernel: 3, padding: 1}``. Each entry of :data:`LAYER_TYPES` says everything that is true of its
type whichever engine computes it:

- its keys (required, and optional with defaults), their checks, and its output shape;
- its parameters (names, shapes, fan-in and fan-out for initialisation);
- its forward and backward pass in plain NumPy: the definition every engine is tested against
  (float64 by default; ``numpy_twin.loss_and_grad`` runs a whole model with them);
- the same layer in the peer frameworks, built from a "kit" each peer module passes in
  (``keras``: ``keras.layers``; ``torch``: see ``engines/torch.py``; ``jax``: ``jax.numpy`` and
  ``jax.lax``).

The numba engine computes each type with kernels of its own (``engines/numba/layers.py``, a
class per type under the same name). Adding a layer type means one entry here, its numba layer
and kernels, and its tests.

Layout conventions: activations NHWC (batch, height, width, channels); ``flatten`` keeps
(H, W, C) order, as Keras does; conv weights (filters, channels, K, K) computing the
cross-correlation z[f,j,k] = sum_d,m,n w[f,d,m,n] a[d, jS+m-Z, kS+n-Z] + b[f]; dense weights
(inputs, outputs). Parameters are named ``"<index>.<type>.<name>"`` ("0.conv.w", "3.dense.b").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError

ACTIVATIONS = ("relu", "elu")
INITS = ("he_normal", "glorot_uniform", "torch")


# ------------------------------------------------------------------------------ checks
def _int(i, kind, key, value, lo):
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(
            f"model layer {i} ({kind}): {key}={value!r} must be an integer >= {lo}; "
            f"fix it in the model's layers"
        )
    return value


def _out_size(i, kind, axis, n, k, z, s):
    span = n - k + 2 * z
    if span < 0 or span % s:
        raise ConfigError(
            f"model layer {i} ({kind}): geometry ({axis} {n} - size {k} + 2*padding {z})/stride "
            f"{s} + 1 is not a whole number >= 1; change kernel/size, padding or stride"
        )
    return span // s + 1


def _windows(x, k, s):
    """(B, H, W, C) -> (B, Ho, Wo, C, k, k) view of every k x k window at stride s."""
    return sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]


# ------------------------------------------------------------------------------ the base
class LayerType:
    """A parameterless, shape-preserving layer; subclasses override what differs."""

    name = ""
    required: tuple = ()
    optional: dict = {}
    spatial = False  # needs a 3-D (H, W, C) input

    def out_shape(self, i: int, spec: dict, shape: tuple) -> tuple:
        """Check the spec's values (defaults filled in) and return the output shape."""
        return shape

    def param_shapes(self, spec: dict, in_shape: tuple) -> tuple:
        """(name, shape) of each parameter, in storage order (weights, then biases)."""
        return ()

    def fans(self, spec: dict, in_shape: tuple) -> tuple[int, int]:
        """(fan-in, fan-out) of the weights, as the initialisers define them."""
        raise NotImplementedError

    # the NumPy twin: cache is whatever backward needs
    def forward(self, spec, p, x):
        return x, None

    def backward(self, spec, p, cache, dout):
        return dout, {}

    # the peers
    def keras(self, spec, L, name):
        return []

    def torch(self, spec, kit, in_shape):
        return kit.nn.Identity()

    def jax(self, spec, p, x, kit):
        return x


class Conv(LayerType):
    name, required, optional, spatial = "conv", ("filters", "kernel"), {"padding": 0,
                                                                         "stride": 1}, True

    def out_shape(self, i, spec, shape):
        f = _int(i, self.name, "filters", spec["filters"], 1)
        k = _int(i, self.name, "kernel", spec["kernel"], 1)
        z = _int(i, self.name, "padding", spec["padding"], 0)
        s = _int(i, self.name, "stride", spec["stride"], 1)
        return (_out_size(i, self.name, "height", shape[0], k, z, s),
                _out_size(i, self.name, "width", shape[1], k, z, s), f)

    def param_shapes(self, spec, in_shape):
        k = spec["kernel"]
        return (("w", (spec["filters"], in_shape[2], k, k)), ("b", (spec["filters"],)))

    def fans(self, spec, in_shape):
        k2 = spec["kernel"] ** 2
        return in_shape[2] * k2, spec["filters"] * k2

    def forward(self, spec, p, x):
        z, s = spec["padding"], spec["stride"]
        xp = np.pad(x, ((0, 0), (z, z), (z, z), (0, 0)))
        w = p["w"]
        return np.tensordot(_windows(xp, w.shape[2], s), w, axes=([3, 4, 5], [1, 2, 3])) + \
            p["b"], x

    def backward(self, spec, p, x, dz):
        pad, stride, w = spec["padding"], spec["stride"], p["w"]
        k = w.shape[2]
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        dw = np.tensordot(dz, _windows(xp, k, stride), axes=([0, 1, 2], [0, 1, 2]))
        db = dz.sum(axis=(0, 1, 2))
        dwin = np.tensordot(dz, w, axes=([3], [0]))  # (B, Ho, Wo, C, K, K)
        dxp = np.zeros_like(xp)
        Ho, Wo = dz.shape[1:3]
        for m in range(k):
            for n in range(k):
                dxp[:, m:m + stride * Ho:stride, n:n + stride * Wo:stride, :] += dwin[..., m, n]
        H, W = x.shape[1:3]
        return dxp[:, pad:pad + H, pad:pad + W, :], {"w": dw, "b": db}

    def keras(self, spec, L, name):
        pad = [L.ZeroPadding2D(spec["padding"], name=f"pad{name}")] if spec["padding"] else []
        return pad + [L.Conv2D(spec["filters"], spec["kernel"], strides=spec["stride"],
                               padding="valid", name=f"conv{name}")]

    def torch(self, spec, kit, in_shape):
        return kit.nn.Conv2d(in_shape[2], spec["filters"], spec["kernel"],
                             stride=spec["stride"], padding=spec["padding"])

    def jax(self, spec, p, x, kit):
        z, s = spec["padding"], spec["stride"]
        y = kit.lax.conv_general_dilated(x, p["w"], (s, s), [(z, z), (z, z)],
                                         dimension_numbers=("NHWC", "OIHW", "NHWC"))
        return y + p["b"]


class MaxPool(LayerType):
    name, required, optional, spatial = "maxpool", ("size",), {"stride": None}, True

    def out_shape(self, i, spec, shape):
        size = _int(i, self.name, "size", spec["size"], 1)
        if spec["stride"] is None:
            spec["stride"] = size
        s = _int(i, self.name, "stride", spec["stride"], 1)
        return (_out_size(i, self.name, "height", shape[0], size, 0, s),
                _out_size(i, self.name, "width", shape[1], size, 0, s), shape[2])

    def forward(self, spec, p, x):
        """The first maximum of each window wins (its flat index is kept for backward)."""
        size = spec["size"]
        win = _windows(x, size, spec["stride"])
        flat = win.reshape(*win.shape[:4], size * size)
        arg = flat.argmax(axis=-1)
        return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0], (x.shape, arg)

    def backward(self, spec, p, cache, dout):
        shape, arg = cache
        size, stride = spec["size"], spec["stride"]
        dx = np.zeros(shape, dout.dtype)
        Ho, Wo = dout.shape[1:3]
        for m in range(size):
            for n in range(size):
                sel = np.where(arg == m * size + n, dout, 0.0)
                dx[:, m:m + stride * Ho:stride, n:n + stride * Wo:stride, :] += sel
        return dx, {}

    def keras(self, spec, L, name):
        return [L.MaxPooling2D(spec["size"], strides=spec["stride"], padding="valid",
                               name=f"maxpool{name}")]

    def torch(self, spec, kit, in_shape):
        return kit.nn.MaxPool2d(spec["size"], spec["stride"])

    def jax(self, spec, p, x, kit):
        size, s = spec["size"], spec["stride"]
        return kit.lax.reduce_window(x, -kit.jnp.inf, kit.lax.max, (1, size, size, 1),
                                     (1, s, s, 1), "VALID")


class AvgPool(MaxPool):
    """The mean of each window (keys and shapes as max pooling)."""

    name = "avgpool"

    def forward(self, spec, p, x):
        size = spec["size"]
        return _windows(x, size, spec["stride"]).mean(axis=(-2, -1)), x.shape

    def backward(self, spec, p, shape, dout):
        size, stride = spec["size"], spec["stride"]
        dx = np.zeros(shape, dout.dtype)
        Ho, Wo = dout.shape[1:3]
        for m in range(size):
            for n in range(size):
                dx[:, m:m + stride * Ho:stride, n:n + stride * Wo:stride, :] += dout / size**2
        return dx, {}

    def keras(self, spec, L, name):
        return [L.AveragePooling2D(spec["size"], strides=spec["stride"], padding="valid",
                                   name=f"avgpool{name}")]

    def torch(self, spec, kit, in_shape):
        return kit.nn.AvgPool2d(spec["size"], spec["stride"])

    def jax(self, spec, p, x, kit):
        size, s = spec["size"], spec["stride"]
        return kit.lax.reduce_window(x, 0.0, kit.lax.add, (1, size, size, 1), (1, s, s, 1),
                                     "VALID") / size**2


class Activation(LayerType):
    name, required, optional = "activation", ("fn",), {"alpha": 1.0}

    def out_shape(self, i, spec, shape):
        if spec["fn"] not in ACTIVATIONS:
            raise ConfigError(
                f"model layer {i} (activation): fn={spec['fn']!r} is not supported; use one "
                f"of {', '.join(ACTIVATIONS)} (softmax is applied by the loss)"
            )
        alpha = spec["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ConfigError(
                f"model layer {i} (activation): alpha={alpha!r} must be a number > 0"
            )
        spec["alpha"] = float(alpha)
        return shape

    def forward(self, spec, p, z):
        if spec["fn"] == "relu":
            return np.maximum(z, 0.0), z
        return np.where(z > 0, z, spec["alpha"] * np.expm1(np.minimum(z, 0.0))), z

    def backward(self, spec, p, z, dout):
        if spec["fn"] == "relu":  # derivative 1 where z > 0
            return dout * (z > 0), {}
        return dout * np.where(z > 0, 1.0, spec["alpha"] * np.exp(np.minimum(z, 0.0))), {}

    def keras(self, spec, L, name):
        if spec["fn"] == "elu":
            return [L.ELU(alpha=spec["alpha"], name=f"elu{name}")]
        return [L.Activation(spec["fn"], name=f"{spec['fn']}{name}")]

    def torch(self, spec, kit, in_shape):
        return kit.nn.ReLU() if spec["fn"] == "relu" else kit.nn.ELU(spec["alpha"])

    def jax(self, spec, p, x, kit):
        if spec["fn"] == "relu":
            return kit.jnp.maximum(x, 0)
        return kit.jnp.where(x > 0, x, spec["alpha"] * kit.jnp.expm1(kit.jnp.minimum(x, 0)))


class Flatten(LayerType):
    name, spatial = "flatten", True

    def out_shape(self, i, spec, shape):
        return (shape[0] * shape[1] * shape[2],)

    def forward(self, spec, p, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, spec, p, shape, dout):
        return dout.reshape(shape), {}

    def keras(self, spec, L, name):
        return [L.Flatten(name=f"flatten{name}")]

    def torch(self, spec, kit, in_shape):
        return kit.NHWCFlatten()  # PyTorch's tensors are NCHW; our order is (H, W, C)

    def jax(self, spec, p, x, kit):
        return x.reshape(x.shape[0], -1)


class Dense(LayerType):
    name, required = "dense", ("units",)

    def out_shape(self, i, spec, shape):
        if len(shape) != 1:
            raise ConfigError(f"model layer {i} (dense) gets a 3-D input {shape}; put a "
                              f"{{type: flatten}} layer before it")
        return (_int(i, self.name, "units", spec["units"], 1),)

    def param_shapes(self, spec, in_shape):
        return (("w", (in_shape[0], spec["units"])), ("b", (spec["units"],)))

    def fans(self, spec, in_shape):
        return in_shape[0], spec["units"]

    def forward(self, spec, p, x):
        return x @ p["w"] + p["b"], x

    def backward(self, spec, p, x, d):
        return d @ p["w"].T, {"w": x.T @ d, "b": d.sum(axis=0)}

    def keras(self, spec, L, name):
        return [L.Dense(spec["units"], name=f"dense{name}")]

    def torch(self, spec, kit, in_shape):
        return kit.nn.Linear(in_shape[0], spec["units"])

    def jax(self, spec, p, x, kit):
        return x @ p["w"] + p["b"]


LAYER_TYPES: dict[str, LayerType] = {t.name: t for t in (Conv(), MaxPool(), AvgPool(),
                                                          Activation(), Flatten(), Dense())}


# ------------------------------------------------------------------------------ a network
@dataclass(frozen=True)
class Network:
    """A checked layer list: specs with defaults filled in, the shape into and out of each
    layer, and every parameter's name and shape in storage order."""

    specs: tuple
    in_shapes: tuple
    out_shapes: tuple
    n_classes: int

    @property
    def input_shape(self) -> tuple:
        return self.in_shapes[0]

    def types(self):
        return [LAYER_TYPES[s["type"]] for s in self.specs]

    def param_shapes(self) -> dict[str, tuple]:
        """{"0.conv.w": (F, C, K, K), "0.conv.b": (F,), ...} in storage order."""
        out = {}
        for i, (t, spec, shape) in enumerate(zip(self.types(), self.specs, self.in_shapes)):
            for name, s in t.param_shapes(spec, shape):
                out[f"{i}.{t.name}.{name}"] = s
        return out

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes().values())


def normalize_layers(layers, input_shape, n_classes):
    """Return (specs, shapes): layer dicts with defaults filled in, output shape per layer.
    Raises a one-line ConfigError naming the layer if the list is bad."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise ConfigError("model layers must be a non-empty list of layer dicts (type: ...)")
    if len(input_shape) != 3 or any(int(v) < 1 for v in input_shape):
        raise ConfigError(f"input shape {tuple(input_shape)} must be (height, width, channels)")
    shape = tuple(int(v) for v in input_shape)
    specs, shapes = [], []
    for i, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or "type" not in layer:
            raise ConfigError(f"model layer {i}: expected a dict with a 'type' key, got {layer!r}")
        kind = layer["type"]
        if kind not in LAYER_TYPES:
            raise ConfigError(f"model layer {i}: unknown type {kind!r}; use one of "
                              f"{', '.join(LAYER_TYPES)}")
        t = LAYER_TYPES[kind]
        unknown = set(layer) - {"type", *t.required, *t.optional}
        if unknown:
            allowed = ", ".join([*t.required, *t.optional]) or "no other keys"
            raise ConfigError(
                f"model layer {i} ({kind}): unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"allowed: {allowed}"
            )
        for key in t.required:
            if key not in layer:
                raise ConfigError(f"model layer {i} ({kind}): missing key {key!r}; add it")
        spec = {"type": kind, **t.optional, **{k: layer[k] for k in layer if k != "type"}}
        if t.spatial and len(shape) != 3:
            raise ConfigError(f"model layer {i} ({kind}) needs a 3-D (H, W, C) input but gets "
                              f"{shape}; move it before the flatten layer")
        shape = tuple(t.out_shape(i, spec, shape))
        specs.append(spec)
        shapes.append(shape)
    last = specs[-1]
    if last["type"] != "dense" or last["units"] != n_classes:
        raise ConfigError(
            f"model layer {len(specs) - 1} ({last['type']}): the last layer must be "
            f"{{type: dense, units: {n_classes}}} (one output per class; softmax is in the loss)"
        )
    return specs, shapes


def network(layers, input_shape, n_classes=10) -> Network:
    """The checked :class:`Network` of a YAML layer list."""
    specs, shapes = normalize_layers(layers, input_shape, n_classes)
    ins = [tuple(int(v) for v in input_shape), *shapes[:-1]]
    return Network(tuple(specs), tuple(ins), tuple(shapes), int(n_classes))


def validate_layers(layers, input_shape, n_classes=10):
    """Output shape of every layer; ConfigError (one line, names the layer) if the list is bad."""
    return normalize_layers(layers, input_shape, n_classes)[1]


# ------------------------------------------------------------------------------ initialisation
def init_params(net: Network, rng: np.random.Generator, scheme: str = "he_normal") -> dict:
    """Initial parameters (float64) by ``scheme``, drawn layer by layer in storage order:

    - ``he_normal`` (the study's eq. 37-39): w ~ N(0, sqrt(2/fan_in)), biases 0;
    - ``glorot_uniform`` (Keras's default): w ~ U(±sqrt(6/(fan_in+fan_out))), biases 0;
    - ``torch`` (PyTorch's default for Linear and Conv2d): w and b ~ U(±1/sqrt(fan_in)).

    fan_in is C·K·K for a conv filter (fan_out F·K·K) and the inputs of a dense layer.
    """
    if scheme not in INITS:
        raise ConfigError(f"model.init={scheme!r} is not one of {', '.join(INITS)}")
    out = {}
    for i, (t, spec, shape) in enumerate(zip(net.types(), net.specs, net.in_shapes)):
        shapes = dict(t.param_shapes(spec, shape))
        if not shapes:
            continue
        fan_in, fan_out = t.fans(spec, shape)
        w_shape, b_shape = shapes["w"], shapes["b"]
        if scheme == "he_normal":
            w, b = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=w_shape), np.zeros(b_shape)
        elif scheme == "glorot_uniform":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w, b = rng.uniform(-limit, limit, size=w_shape), np.zeros(b_shape)
        else:
            bound = 1.0 / math.sqrt(fan_in)
            w = rng.uniform(-bound, bound, size=w_shape)
            b = rng.uniform(-bound, bound, size=b_shape)
        out[f"{i}.{t.name}.w"], out[f"{i}.{t.name}.b"] = w, b
    return out
