"""Numba kernels of the engine. Layout conventions (documented in ``engine/__init__.py``):

activations are NHWC (B, H, W, C) float32; conv weights (F, C, K, K); dense weights (in, out).
Parallel kernels split the batch over threads; each sample writes only its own rows or its own
partial-gradient slot, and partials are summed over samples in a fixed order, so results do not
depend on the number of threads (no races, no atomics).
"""

import numpy as np
from numba import get_thread_id, prange

from ._jit import jit


# ----------------------------------------------------------------------------- data
@jit(parallel=True)
def gather_u8(X, idx, lut, out):
    """out[i] = lut[X[idx[i]]] with X (N, D) uint8, lut = float32(arange(256) / 255)."""
    D = X.shape[1]
    for i in prange(idx.shape[0]):
        r = idx[i]
        for k in range(D):
            out[i, k] = lut[X[r, k]]


# ----------------------------------------------------------------------------- conv
# Per-sample work runs in planar scratch: the zero-bordered input xp (C, Hp*Wp) and the output
# z (F, Ho*Wq), each plane stored flat. With stride 1 the output plane keeps the padded row
# length (Wq = Wp): output pixel p = i*Wp + j then reads input p + m*Wp + n, so every tap is
# one long contiguous multiply-add over the whole plane, which vectorises (a 28-wide row loop
# does not). Columns j >= Wo of such a plane are junk in the forward pass and must stay zero
# in the gradient scratch. Other strides use plain row loops with Wq = Wo.
@jit()
def _pad_planar(x, xp, Z, Wp):
    """x (H, W, C) -> interior of the zero-bordered flat planes xp (C, Hp*Wp)."""
    H, W, C = x.shape
    for i in range(H):
        for j in range(W):
            for d in range(C):
                xp[d, (i + Z) * Wp + j + Z] = x[i, j, d]


@jit()
def _conv_one(xp, w, b, z, S, Wp, Ho, Wo):
    """z (F, Ho*Wq) = cross-correlation of one sample's padded planes xp with w, plus b."""
    F, C, K, _ = w.shape
    n_run = (Ho - 1) * Wp + Wo
    for f in range(F):
        zf = z[f]
        zf[:] = b[f]
        for d in range(C):
            xd = xp[d]
            for m in range(K):
                for n in range(K):
                    wv = w[f, d, m, n]
                    if S == 1:
                        off = m * Wp + n
                        for p in range(n_run):
                            zf[p] += wv * xd[p + off]
                    else:
                        for i in range(Ho):
                            for j in range(Wo):
                                zf[i * Wo + j] += wv * xd[(i * S + m) * Wp + j * S + n]


@jit()
def _conv_grads_one(xp, dz, dw, db, S, Wp, Ho, Wo):
    """dw (F, C, K, K) and db (F,) of one sample from its planar dz (junk columns zero)."""
    F, C, K, _ = dw.shape
    n_run = (Ho - 1) * Wp + Wo
    for f in range(F):
        g = dz[f]
        acc = np.float32(0.0)
        for p in range(g.shape[0]):
            acc += g[p]
        db[f] = acc
        for d in range(C):
            xd = xp[d]
            for m in range(K):
                for n in range(K):
                    acc = np.float32(0.0)
                    if S == 1:
                        off = m * Wp + n
                        for p in range(n_run):
                            acc += g[p] * xd[p + off]
                    else:
                        for i in range(Ho):
                            for j in range(Wo):
                                acc += g[i * Wo + j] * xd[(i * S + m) * Wp + j * S + n]
                    dw[f, d, m, n] = acc


@jit()
def _conv_dx_one(w, dz, dxp, S, Wp, Ho, Wo):
    """Planar padded input gradient dxp (C, Hp*Wp) of one sample."""
    F, C, K, _ = w.shape
    n_run = (Ho - 1) * Wp + Wo
    dxp[...] = 0.0
    for f in range(F):
        g = dz[f]
        for d in range(C):
            dd = dxp[d]
            for m in range(K):
                for n in range(K):
                    wv = w[f, d, m, n]
                    if S == 1:
                        off = m * Wp + n
                        for p in range(n_run):
                            dd[p + off] += wv * g[p]
                    else:
                        for i in range(Ho):
                            for j in range(Wo):
                                dd[(i * S + m) * Wp + j * S + n] += wv * g[i * Wo + j]


@jit(parallel=True)
def conv_fwd(x, w, b, out, xp, zp, S, Z, per_sample):
    """Cross-correlation with zero padding Z and stride S.

    x (B,H,W,C), w (F,C,K,K), b (F,), out (B,Ho,Wo,F). xp (slots, C, Hp*Wp) is the planar
    padded input, zero-bordered: one slot per sample when ``per_sample`` (kept for the backward
    pass), else one per thread. zp (threads, F, Ho*Wq) is per-thread output scratch.
    """
    B, Ho, Wo, F = out.shape
    Wp = x.shape[2] + 2 * Z
    Wq = Wp if S == 1 else Wo
    for s in prange(B):
        t = np.int64(get_thread_id())
        q = np.int64(s) if per_sample else t
        _pad_planar(x[s], xp[q], Z, Wp)
        _conv_one(xp[q], w, b, zp[t], S, Wp, Ho, Wo)
        for i in range(Ho):
            for j in range(Wo):
                for f in range(F):
                    out[s, i, j, f] = zp[t, f, i * Wq + j]


@jit(parallel=True)
def conv_bwd(dout, w, xp, dzp, dxp, dwp, dbp, dx, S, Z, need_dx):
    """Per-sample parameter-gradient partials and (optionally) the input gradient.

    dout (B,Ho,Wo,F); xp the per-sample planes from ``conv_fwd``; dzp (threads, F, Ho*Wq),
    zero-initialised, and dxp (threads, C, Hp*Wp) per-thread scratch; dwp (B, F,C,K,K) and
    dbp (B, F) partials; dx (B,H,W,C) written only when ``need_dx`` (else pass ``dx[:0]``).
    """
    B, Ho, Wo, F = dout.shape
    C = w.shape[1]
    H, W = dx.shape[1], dx.shape[2]
    Wp = W + 2 * Z
    Wq = Wp if S == 1 else Wo
    for s in prange(B):
        t = np.int64(get_thread_id())
        for i in range(Ho):
            for j in range(Wo):
                for f in range(F):
                    dzp[t, f, i * Wq + j] = dout[s, i, j, f]
        _conv_grads_one(xp[s], dzp[t], dwp[s], dbp[s], S, Wp, Ho, Wo)
        if need_dx:
            _conv_dx_one(w, dzp[t], dxp[t], S, Wp, Ho, Wo)
            for i in range(H):
                for j in range(W):
                    for d in range(C):
                        dx[s, i, j, d] = dxp[t, d, (i + Z) * Wp + j + Z]


@jit(parallel=True)
def sum_samples(part, out):
    """out[p] = sum over samples s (in order) of part[s, p]; parallel over p, so deterministic."""
    B, P = part.shape
    for p in prange(P):
        acc = np.float32(0.0)
        for s in range(B):
            acc += part[s, p]
        out[p] = acc


# ----------------------------------------------------------------------------- max pool
@jit(parallel=True)
def maxpool_fwd(x, out, arg, P, S):
    """Max over P x P windows with stride S; arg keeps the winner (m*P+n, first max on ties)."""
    B, Ho, Wo, C = out.shape
    for s in prange(B):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    best = x[s, i * S, j * S, c]
                    k = 0
                    for m in range(P):
                        for n in range(P):
                            v = x[s, i * S + m, j * S + n, c]
                            if v > best:
                                best = v
                                k = m * P + n
                    out[s, i, j, c] = best
                    arg[s, i, j, c] = k


@jit(parallel=True)
def maxpool_bwd(dout, arg, dx, P, S):
    B, Ho, Wo, C = dout.shape
    for s in prange(B):
        dx[s] = 0.0
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    k = arg[s, i, j, c]
                    dx[s, i * S + k // P, j * S + k % P, c] += dout[s, i, j, c]


# ----------------------------------------------------------------------------- activations
@jit(parallel=True)
def relu_fwd(x, out):
    for i in prange(x.shape[0]):
        v = x[i]
        out[i] = v if v > 0 else np.float32(0.0)


@jit(parallel=True)
def relu_bwd(x, dout, dx):
    for i in prange(x.shape[0]):
        dx[i] = dout[i] if x[i] > 0 else np.float32(0.0)


@jit(parallel=True)
def elu_fwd(x, out, alpha):
    for i in prange(x.shape[0]):
        v = x[i]
        out[i] = v if v > 0 else alpha * (np.exp(v) - np.float32(1.0))


@jit(parallel=True)
def elu_bwd(x, out, dout, dx, alpha):
    # d/dz elu = 1 for z > 0, alpha*exp(z) = out + alpha otherwise
    for i in prange(x.shape[0]):
        dx[i] = dout[i] if x[i] > 0 else dout[i] * (out[i] + alpha)


@jit()
def add_bias(z, b):
    B, N = z.shape
    for s in range(B):
        for k in range(N):
            z[s, k] += b[k]


# ----------------------------------------------------------------------------- loss
@jit()
def softmax_ce(logits, y, dlogits):
    """Mean cross-entropy via log-sum-exp; dlogits = (P - Y)/B; accuracy with argmax ties low.

    Returns (cost, accuracy, bad) where bad >= 0 is the index of a label outside [0, K).
    """
    B, K = logits.shape
    cost = 0.0
    hits = 0
    inv = 1.0 / B
    for s in range(B):
        c = y[s]
        if c < 0 or c >= K:
            return np.nan, np.nan, s
        mx = np.float64(logits[s, 0])
        am = 0
        for k in range(1, K):
            v = np.float64(logits[s, k])
            if v > mx:
                mx = v
                am = k
        tot = 0.0
        for k in range(K):
            tot += np.exp(np.float64(logits[s, k]) - mx)
        lse = mx + np.log(tot)
        cost += lse - np.float64(logits[s, c])
        for k in range(K):
            p = np.exp(np.float64(logits[s, k]) - lse)
            dlogits[s, k] = (p - (1.0 if k == c else 0.0)) * inv
        if am == c:
            hits += 1
    return cost * inv, hits * inv, -1


@jit()
def softmax_rows(logits, out):
    B, K = logits.shape
    for s in range(B):
        mx = np.float64(logits[s, 0])
        for k in range(1, K):
            mx = max(mx, np.float64(logits[s, k]))
        tot = 0.0
        for k in range(K):
            tot += np.exp(np.float64(logits[s, k]) - mx)
        for k in range(K):
            out[s, k] = np.exp(np.float64(logits[s, k]) - mx) / tot


# ----------------------------------------------------------------------------- optimiser
@jit(parallel=True)
def adam_step(p, g, m, v, lr, b1, b2, eps, c1, c2):
    """theta -= lr * mhat / (sqrt(vhat) + eps), mhat = m*c1, vhat = v*c2 (c = 1/(1-beta^t))."""
    for i in prange(p.shape[0]):
        gi = np.float64(g[i])
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= lr * (mi * c1) / (np.sqrt(vi * c2) + eps)
