"""Check a model's layer list (from YAML) and work out the output shape of every layer."""

from collections.abc import Mapping, Sequence

from ..errors import ConfigError

# type -> (required keys, optional keys with defaults)
_KEYS = {
    "conv": (("filters", "kernel"), {"padding": 0, "stride": 1}),
    "maxpool": (("size",), {"stride": None}),
    "activation": (("fn",), {"alpha": 1.0}),
    "flatten": ((), {}),
    "dense": (("units",), {}),
}
ACTIVATIONS = ("relu", "elu")


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


def normalize_layers(layers, input_shape, n_classes):
    """Return (specs, shapes): layer dicts with defaults filled in, output shape per layer."""
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
        if kind not in _KEYS:
            raise ConfigError(
                f"model layer {i}: unknown type {kind!r}; use one of {', '.join(_KEYS)}"
            )
        required, optional = _KEYS[kind]
        unknown = set(layer) - {"type", *required, *optional}
        if unknown:
            allowed = ", ".join([*required, *optional]) or "no other keys"
            raise ConfigError(
                f"model layer {i} ({kind}): unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"allowed: {allowed}"
            )
        for key in required:
            if key not in layer:
                raise ConfigError(f"model layer {i} ({kind}): missing key {key!r}; add it")
        spec = {"type": kind, **optional, **{k: layer[k] for k in layer if k != "type"}}
        if kind in ("conv", "maxpool", "flatten") and len(shape) != 3:
            raise ConfigError(
                f"model layer {i} ({kind}) needs a 3-D (H, W, C) input but gets {shape}; "
                f"move it before the flatten layer"
            )
        if kind == "conv":
            f = _int(i, kind, "filters", spec["filters"], 1)
            k = _int(i, kind, "kernel", spec["kernel"], 1)
            z = _int(i, kind, "padding", spec["padding"], 0)
            s = _int(i, kind, "stride", spec["stride"], 1)
            shape = (
                _out_size(i, kind, "height", shape[0], k, z, s),
                _out_size(i, kind, "width", shape[1], k, z, s),
                f,
            )
        elif kind == "maxpool":
            p = _int(i, kind, "size", spec["size"], 1)
            if spec["stride"] is None:
                spec["stride"] = p
            s = _int(i, kind, "stride", spec["stride"], 1)
            shape = (
                _out_size(i, kind, "height", shape[0], p, 0, s),
                _out_size(i, kind, "width", shape[1], p, 0, s),
                shape[2],
            )
        elif kind == "activation":
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
        elif kind == "flatten":
            shape = (shape[0] * shape[1] * shape[2],)
        elif kind == "dense":
            if len(shape) != 1:
                raise ConfigError(
                    f"model layer {i} (dense) gets a 3-D input {shape}; put a "
                    f"{{type: flatten}} layer before it"
                )
            shape = (_int(i, kind, "units", spec["units"], 1),)
        specs.append(spec)
        shapes.append(shape)
    last = specs[-1]
    if last["type"] != "dense" or last["units"] != n_classes:
        raise ConfigError(
            f"model layer {len(specs) - 1} ({last['type']}): the last layer must be "
            f"{{type: dense, units: {n_classes}}} (one output per class; softmax is in the loss)"
        )
    return specs, shapes


def validate_layers(layers, input_shape, n_classes=10):
    """Output shape of every layer; ConfigError (one line, names the layer) if the list is bad."""
    return normalize_layers(layers, input_shape, n_classes)[1]
