"""Plain-NumPy twin of the engine (float64 by default), written independently of the kernels.

Tests check it against centred finite differences and the numba engine against it. It uses
the same conventions as the engine: NHWC activations, conv w (F, C, K, K), dense w (in, out),
parameters named as ``Model.layer_params()`` names them.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .spec import normalize_layers


def _windows(x, k, s):
    """(B, H, W, C) -> (B, Ho, Wo, C, k, k) view of every k x k window at stride s."""
    return sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]


def conv_forward(x, w, b, pad, stride):
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return np.tensordot(_windows(xp, w.shape[2], stride), w, axes=([3, 4, 5], [1, 2, 3])) + b


def conv_backward(x, w, dz, pad, stride):
    """Returns (dw, db, dx)."""
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
    return dw, db, dxp[:, pad:pad + H, pad:pad + W, :]


def maxpool_forward(x, size, stride):
    """Returns (out, arg); arg is the flat window index of the first maximum."""
    win = _windows(x, size, stride)
    flat = win.reshape(*win.shape[:4], size * size)
    arg = flat.argmax(axis=-1)
    return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0], arg


def maxpool_backward(x, arg, dout, size, stride):
    dx = np.zeros_like(x)
    Ho, Wo = dout.shape[1:3]
    for m in range(size):
        for n in range(size):
            sel = np.where(arg == m * size + n, dout, 0.0)
            dx[:, m:m + stride * Ho:stride, n:n + stride * Wo:stride, :] += sel
    return dx


def act_forward(z, fn, alpha):
    if fn == "relu":
        return np.maximum(z, 0.0)
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def act_backward(z, dout, fn, alpha):
    if fn == "relu":
        return dout * (z > 0)
    return dout * np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))


def softmax_ce(logits, y):
    """Returns (cost, accuracy, dlogits, probs) for integer labels y."""
    B = logits.shape[0]
    sh = logits - logits.max(axis=1, keepdims=True)
    logp = sh - np.log(np.exp(sh).sum(axis=1, keepdims=True))
    probs = np.exp(logp)
    onehot = np.eye(logits.shape[1])[y]
    cost = -(onehot * logp).sum() / B
    acc = float(np.mean(logits.argmax(axis=1) == y))
    return cost, acc, (probs - onehot) / B, probs


def loss_and_grad(layers, input_shape, n_classes, params, x, y, dtype=np.float64):
    """(cost, accuracy, grads, logits) with grads keyed like params ("0.conv.w", ...)."""
    specs, _ = normalize_layers(layers, input_shape, n_classes)
    p = {k: np.asarray(v, dtype) for k, v in params.items()}
    acts, aux = [np.asarray(x, dtype)], []
    for i, s in enumerate(specs):
        a, t = acts[-1], s["type"]
        extra = None
        if t == "conv":
            a = conv_forward(a, p[f"{i}.conv.w"], p[f"{i}.conv.b"], s["padding"], s["stride"])
        elif t == "maxpool":
            a, extra = maxpool_forward(a, s["size"], s["stride"])
        elif t == "activation":
            a = act_forward(a, s["fn"], s["alpha"])
        elif t == "flatten":
            a = a.reshape(a.shape[0], -1)
        elif t == "dense":
            a = a @ p[f"{i}.dense.w"] + p[f"{i}.dense.b"]
        acts.append(a)
        aux.append(extra)
    cost, acc, d, _ = softmax_ce(acts[-1], np.asarray(y))
    grads = {}
    for i in range(len(specs) - 1, -1, -1):
        s, t, a = specs[i], specs[i]["type"], acts[i]
        if t == "conv":
            w = p[f"{i}.conv.w"]
            grads[f"{i}.conv.w"], grads[f"{i}.conv.b"], d = conv_backward(
                a, w, d, s["padding"], s["stride"])
        elif t == "maxpool":
            d = maxpool_backward(a, aux[i], d, s["size"], s["stride"])
        elif t == "activation":
            d = act_backward(a, d, s["fn"], s["alpha"])
        elif t == "flatten":
            d = d.reshape(a.shape)
        elif t == "dense":
            grads[f"{i}.dense.w"] = a.T @ d
            grads[f"{i}.dense.b"] = d.sum(axis=0)
            d = d @ p[f"{i}.dense.w"].T
    return cost, acc, grads, acts[-1]


def adam_step(p, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Textbook Adam (SPEC section 4), step number t >= 1; returns new (p, m, v)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    mhat = m / (1 - beta1**t)
    vhat = v / (1 - beta2**t)
    return p - lr * mhat / (np.sqrt(vhat) + eps), m, v
