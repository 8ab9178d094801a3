"""Numba kernels of the engine. Layout conventions (``engines/layer_types.py``):

activations are NHWC (B, H, W, C) float32; conv weights (F, C, K, K); dense weights (in, out).
Parallel kernels (conv, max pool) split the batch over threads; each sample writes only its own
rows or its own partial-gradient slot, and partials are summed over samples in a fixed order,
so results do not depend on the number of threads (no races, no atomics). Small element-wise
kernels are serial on purpose: waking the thread pool costs more than they do.

Every kernel flushes denormal floats to zero (``fpmode.py``): ``ftz_on()`` is its first
statement and the first of every ``prange`` body (the thread running it may be a worker),
and ``fp_restore`` its last, so the caller's numpy code keeps IEEE arithmetic. Kernels that
only other kernels call (``_name``) inherit the mode.
"""

import numpy as np
from numba import get_thread_id, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import blas
from ._jit import jit
from .fpmode import fp_restore, ftz_on


# ----------------------------------------------------------------------------- data
@jit()
def gather_u8(X, idx, out):
    """out[i] = X[idx[i]] / 255 in float32, X (N, D) uint8.

    A float32 division of an integer 0..255 by 255 is correctly rounded, so it equals
    float32(k / 255.0) (checked for all 256 values in the tests); unlike a table lookup it
    vectorises (5x faster). Serial: a batch is ~0.1-0.4 MB, less work than waking a thread
    pool costs (on numba's workqueue layer a parallel gather took 449 us on average against
    57 us serial on a busy 2-core machine).
    """
    old = ftz_on()
    for i in range(idx.shape[0]):
        _scale_row(X[idx[i]], out[i])
    fp_restore(old)


@jit(exact_division=True)
def _pixel(v):
    """A uint8 pixel's value, v / 255 in float32: the one definition (gather and evaluation
    call it; the first conv layer's own batch read looks it up in ``_PIXELS``, its values)."""
    return np.float32(v) / np.float32(255.0)


@jit(exact_division=True)  # (as every caller of _pixel: its division must stay one)
def _scale_row(src, dst):
    """dst = src / 255 in float32."""
    for k in range(src.shape[0]):
        dst[k] = _pixel(src[k])


@jit()
def _block(k, nb, n):
    """Rows (or columns) lo:hi of block k when n of them are split into nb blocks: every
    threaded kernel splits with it, so a block's pieces of one pass line up."""
    return k * n // nb, (k + 1) * n // nb


@jit(parallel=True)
def scale_u8_blocks(X, out, nb):
    """out = X / 255 in float32 over ``nb`` threads, a block of rows each: evaluation's
    chunks (1,000 images, 0.8-3 MB) are big enough to be worth the pool; the values are those
    of ``gather_u8``."""
    old = ftz_on()
    B = X.shape[0]
    for k in prange(nb):
        ftz_on()
        lo, hi = _block(k, nb, B)
        for i in range(lo, hi):
            _scale_row(X[i], out[i])
    fp_restore(old)


# ----------------------------------------------------------------------------- conv
# Per-sample work runs in planar scratch: the zero-bordered input xp (C, Hp*Wp) and the output
# z (F, Ho*Wq), each plane stored flat. With stride 1 the output plane keeps the padded row
# length (Wq = Wp): output pixel p = i*Wp + j then reads input p + m*Wp + n, so every tap is
# one long contiguous multiply-add over the whole plane, which vectorises (a 28-wide row loop
# does not). Columns j >= Wo of such a plane are junk in the forward pass and must stay zero
# in the gradient scratch. Other strides use plain row loops with Wq = Wo.
# Inner loops index a slice with the bare loop counter: numba then knows the index is not
# negative and drops its wraparound branch, which otherwise blocks vectorisation (7x slower).
# Pixel-major rows (a sample's (W, C) or a conv output's (Wo, F)) and planes convert into each
# other by strided loops. Where the stride is 3 or 1 (RGB or grey input, the study's 3 filters)
# the row is indexed as flat memory with an unsigned 3*j + c: a constant stride LLVM turns into
# vector shuffles (an unsigned index also has no wraparound branch), where a (W, C) row indexed
# [j, c] stays scalar. The first conv layer's batch read then scales uint8 by a vector division
# (_pixel's, exact); other channel counts keep scalar loops, the uint8 ones looking the pixel up
# in _PIXELS (_pixel of every value), cheaper than a scalar division.
_PIXELS = np.arange(256, dtype=np.float32) / np.float32(255.0)
_U3 = np.uint64(3)


@jit(exact_division=True)  # (its division must stay one, as _pixel's)
def _pad_planar(x, xp, Z, Wp, pixels):
    """x (H, W, C) -> interior of the zero-bordered flat planes xp (C, Hp*Wp); uint8 ``x``
    as its pixel values when ``pixels`` (the first layer's batch read), float ``x`` as is."""
    H, W, C = x.shape
    flat = x.reshape(-1)
    for i in range(H):
        at = (i + Z) * Wp + Z
        row = np.uint64(i * W * C)
        if pixels and C == 3:
            a, b, c = xp[0, at:], xp[1, at:], xp[2, at:]
            for j in range(W):
                u = row + np.uint64(j) * _U3
                a[j] = _pixel(flat[u])
                b[j] = _pixel(flat[u + np.uint64(1)])
                c[j] = _pixel(flat[u + np.uint64(2)])
        elif pixels and C == 1:
            a = xp[0, at:]
            for j in range(W):
                a[j] = _pixel(flat[row + np.uint64(j)])
        else:
            src = x[i]
            for d in range(C):
                dst = xp[d, at:]
                if pixels:
                    for j in range(W):  # (the cast types the branch for float x, never taken)
                        dst[j] = _PIXELS[np.intp(src[j, d])]
                else:
                    for j in range(W):
                        dst[j] = src[j, d]


@jit()
def _act_rows(z, Wq, out, act, alpha):
    """out (Ho, Wo, F) = the activation of one sample's output planes z (F, Ho*Wq): act 0
    none, 1 ReLU, 2 ELU(alpha). (A call per sample, not per row: a call per row, passing
    array views, cost four times the copy itself.)"""
    Ho, Wo, F = out.shape
    flat = out.reshape(-1)
    for i in range(Ho):
        at = i * Wq
        if F == 3:
            za, zb, zc = z[0, at:], z[1, at:], z[2, at:]
            row = np.uint64(i * Wo * 3)
            for j in range(Wo):
                u = row + np.uint64(j) * _U3
                flat[u] = _act(za[j], act, alpha)
                flat[u + np.uint64(1)] = _act(zb[j], act, alpha)
                flat[u + np.uint64(2)] = _act(zc[j], act, alpha)
        else:
            dst = out[i]
            for f in range(F):
                src = z[f, at:]
                for j in range(Wo):
                    dst[j, f] = _act(src[j], act, alpha)


@jit()
def _act(v, act, alpha):
    """One value's activation (the kernels' loops are unswitched on ``act``)."""
    if act == 1:
        return v if v > 0 else np.float32(0.0)
    if act == 2:
        return v if v > 0 else alpha * (np.exp(v) - np.float32(1.0))
    return v


@jit()
def _dact(g, v, act, alpha):
    """A gradient g times the derivative of the activation whose output is v (ReLU: out > 0
    exactly where its input is; ELU: 1, or out + alpha)."""
    if act == 1:
        return g if v > 0 else np.float32(0.0)  # g loaded anyway: a select, not a branch
    if act == 2:
        return g if v > 0 else g * (v + alpha)
    return g


@jit()
def _dact_planes(g, a, dz, Wq, act, alpha):
    """The planes dz (F, Ho*Wq) of one sample's output gradient g (Ho, Wo, F) times the
    activation's derivative at its output a (Ho, Wo, F)."""
    Ho, Wo, F = g.shape
    gf, af = g.reshape(-1), a.reshape(-1)
    for i in range(Ho):
        at = i * Wq
        if F == 3:
            da, db, dc = dz[0, at:], dz[1, at:], dz[2, at:]
            row = np.uint64(i * Wo * 3)
            for j in range(Wo):
                u = row + np.uint64(j) * _U3
                u1, u2 = u + np.uint64(1), u + np.uint64(2)
                da[j] = _dact(gf[u], af[u], act, alpha)
                db[j] = _dact(gf[u1], af[u1], act, alpha)
                dc[j] = _dact(gf[u2], af[u2], act, alpha)
        else:
            gi, ai = g[i], a[i]
            for f in range(F):
                dst = dz[f, at:]
                for j in range(Wo):
                    dst[j] = _dact(gi[j, f], ai[j, f], act, alpha)


@jit()
def _taps3(zf, xd, w, Wp, n):
    """zf[p] += sum of the 9 taps of a 3x3 filter, in one pass (stride 1, the common case)."""
    x0, x1, x2 = xd[0:], xd[1:], xd[2:]
    x3, x4, x5 = xd[Wp:], xd[Wp + 1:], xd[Wp + 2:]
    x6, x7, x8 = xd[2 * Wp:], xd[2 * Wp + 1:], xd[2 * Wp + 2:]
    w0, w1, w2, w3, w4 = w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1]
    w5, w6, w7, w8 = w[1, 2], w[2, 0], w[2, 1], w[2, 2]
    for p in range(n):
        zf[p] += (w0 * x0[p] + w1 * x1[p] + w2 * x2[p] + w3 * x3[p] + w4 * x4[p]
                  + w5 * x5[p] + w6 * x6[p] + w7 * x7[p] + w8 * x8[p])


@jit()
def _taps3_f3(za, zb, zc, xd, wa, wb, wc, Wp, n):
    """``_taps3`` of three filters at once: each of the 9 input loads feeds 3 multiply-adds
    instead of 1 (the loop was bound by its loads). Every output's sum is written in the
    same order as ``_taps3``'s; that the bits are the same is tested (a filter in a group of
    three against the filter alone, tests/test_engine_model.py)."""
    x0, x1, x2 = xd[0:], xd[1:], xd[2:]
    x3, x4, x5 = xd[Wp:], xd[Wp + 1:], xd[Wp + 2:]
    x6, x7, x8 = xd[2 * Wp:], xd[2 * Wp + 1:], xd[2 * Wp + 2:]
    a0, a1, a2, a3, a4 = wa[0, 0], wa[0, 1], wa[0, 2], wa[1, 0], wa[1, 1]
    a5, a6, a7, a8 = wa[1, 2], wa[2, 0], wa[2, 1], wa[2, 2]
    b0, b1, b2, b3, b4 = wb[0, 0], wb[0, 1], wb[0, 2], wb[1, 0], wb[1, 1]
    b5, b6, b7, b8 = wb[1, 2], wb[2, 0], wb[2, 1], wb[2, 2]
    c0, c1, c2, c3, c4 = wc[0, 0], wc[0, 1], wc[0, 2], wc[1, 0], wc[1, 1]
    c5, c6, c7, c8 = wc[1, 2], wc[2, 0], wc[2, 1], wc[2, 2]
    for p in range(n):
        v0, v1, v2, v3, v4 = x0[p], x1[p], x2[p], x3[p], x4[p]
        v5, v6, v7, v8 = x5[p], x6[p], x7[p], x8[p]
        za[p] += (a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4
                  + a5 * v5 + a6 * v6 + a7 * v7 + a8 * v8)
        zb[p] += (b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3 + b4 * v4
                  + b5 * v5 + b6 * v6 + b7 * v7 + b8 * v8)
        zc[p] += (c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4
                  + c5 * v5 + c6 * v6 + c7 * v7 + c8 * v8)


@jit()
def _grads3(g, xd, dw, Wp, n):
    """dw (3, 3) of one filter/channel pair: the 9 tap correlations in one pass."""
    x0, x1, x2 = xd[0:], xd[1:], xd[2:]
    x3, x4, x5 = xd[Wp:], xd[Wp + 1:], xd[Wp + 2:]
    x6, x7, x8 = xd[2 * Wp:], xd[2 * Wp + 1:], xd[2 * Wp + 2:]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = np.float32(0.0)
    for p in range(n):
        v = g[p]
        a0 += v * x0[p]
        a1 += v * x1[p]
        a2 += v * x2[p]
        a3 += v * x3[p]
        a4 += v * x4[p]
        a5 += v * x5[p]
        a6 += v * x6[p]
        a7 += v * x7[p]
        a8 += v * x8[p]
    dw[0, 0], dw[0, 1], dw[0, 2] = a0, a1, a2
    dw[1, 0], dw[1, 1], dw[1, 2] = a3, a4, a5
    dw[2, 0], dw[2, 1], dw[2, 2] = a6, a7, a8


@jit()
def _grads3_f3(ga, gb, gc, xd, dwa, dwb, dwc, Wp, n):
    """``_grads3`` of three filters at once, one filter row m at a time: 3 input and 3
    gradient loads feed 9 multiply-adds (``_grads3``: 10 loads for 9), and 9 accumulators stay
    in registers. Each accumulator sums the same products as ``_grads3``'s, in a loop of the
    same shape, so LLVM vectorises the sums alike: the same bits (tested as ``_taps3_f3``)."""
    for m in range(3):
        x0, x1, x2 = xd[m * Wp:], xd[m * Wp + 1:], xd[m * Wp + 2:]
        a0 = a1 = a2 = b0 = b1 = b2 = c0 = c1 = c2 = np.float32(0.0)
        for p in range(n):
            u0, u1, u2 = x0[p], x1[p], x2[p]
            va, vb, vc = ga[p], gb[p], gc[p]
            a0 += va * u0
            a1 += va * u1
            a2 += va * u2
            b0 += vb * u0
            b1 += vb * u1
            b2 += vb * u2
            c0 += vc * u0
            c1 += vc * u1
            c2 += vc * u2
        dwa[m, 0], dwa[m, 1], dwa[m, 2] = a0, a1, a2
        dwb[m, 0], dwb[m, 1], dwb[m, 2] = b0, b1, b2
        dwc[m, 0], dwc[m, 1], dwc[m, 2] = c0, c1, c2


@jit()
def _conv_one(xp, w, b, z, S, Wp, Ho, Wo):
    """z (F, Ho*Wq) = cross-correlation of one sample's padded planes xp with w, plus b."""
    F, C, K, _ = w.shape
    n_run = (Ho - 1) * Wp + Wo
    if S == 1 and K == 3:  # the common case: filters three at a time, channel by channel
        for f in range(F):
            z[f, :] = b[f]
        for d in range(C):
            xd = xp[d]
            f = 0
            while f + 3 <= F:
                _taps3_f3(z[f], z[f + 1], z[f + 2], xd, w[f, d], w[f + 1, d], w[f + 2, d],
                          Wp, n_run)
                f += 3
            for g in range(f, F):
                _taps3(z[g], xd, w[g, d], Wp, n_run)
        return
    for f in range(F):
        zf = z[f]
        zf[:] = b[f]
        for d in range(C):
            xd = xp[d]
            for m in range(K):
                for n in range(K):
                    wv = w[f, d, m, n]
                    if S == 1:
                        xs = xd[m * Wp + n:]
                        for p in range(n_run):
                            zf[p] += wv * xs[p]
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
    if S == 1 and K == 3:  # the common case: filters three at a time, channel by channel
        for d in range(C):
            xd = xp[d]
            f = 0
            while f + 3 <= F:
                _grads3_f3(dz[f], dz[f + 1], dz[f + 2], xd, dw[f, d], dw[f + 1, d],
                           dw[f + 2, d], Wp, n_run)
                f += 3
            for h in range(f, F):
                _grads3(dz[h], xd, dw[h, d], Wp, n_run)
        return
    for f in range(F):
        g = dz[f]
        for d in range(C):
            xd = xp[d]
            for m in range(K):
                for n in range(K):
                    acc = np.float32(0.0)
                    if S == 1:
                        xs = xd[m * Wp + n:]
                        for p in range(n_run):
                            acc += g[p] * xs[p]
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
                        ds = dd[m * Wp + n:]
                        for p in range(n_run):
                            ds[p] += wv * g[p]
                    else:
                        for i in range(Ho):
                            for j in range(Wo):
                                dd[(i * S + m) * Wp + j * S + n] += wv * g[i * Wo + j]


@jit(parallel=True)
def conv_fwd(x, w, b, out, xp, zp, S, Z, per_sample, act, alpha):
    """Cross-correlation with zero padding Z and stride S, then activation ``act``.

    act: 0 none, 1 ReLU, 2 ELU(alpha) -- a following activation layer fused into the output
    copy (the model then skips that layer).

    x (B,H,W,C), w (F,C,K,K), b (F,), out (B,Ho,Wo,F). xp (slots, C, Hp*Wp) is the planar
    padded input, zero-bordered: one slot per sample when ``per_sample`` (kept for the backward
    pass), else one per thread. zp (threads, F, Ho*Wq) is per-thread output scratch.
    """
    old = ftz_on()
    B = out.shape[0]
    Wp = x.shape[2] + 2 * Z
    for s in prange(B):
        ftz_on()
        t = np.int64(get_thread_id())
        q = np.int64(s) if per_sample else t
        _pad_planar(x[s], xp[q], Z, Wp, False)
        _conv_sample(xp[q], w, b, zp[t], out[s], S, Wp, act, alpha)
    fp_restore(old)


@jit(parallel=True)
def conv_fwd_rows(X, idx, w, b, out, xp, zp, S, Z, act, alpha):
    """The training pass of ``conv_fwd`` (``per_sample``) on the batch X[idx] / 255, X
    (N, H, W, C) uint8, read straight from the dataset: each thread scales its samples' rows
    into their planar slots as it pads them. Equal bit for bit to gathering the batch first
    (``gather_u8``), which cost a serial pass over the batch and one more write and read of
    it (0.1-0.4 ms of a 32x32x3 CNN step, mostly cache misses)."""
    old = ftz_on()
    B = out.shape[0]
    Wp = X.shape[2] + 2 * Z
    for s in prange(B):
        ftz_on()
        t = np.int64(get_thread_id())
        _pad_planar(X[idx[s]], xp[s], Z, Wp, True)
        _conv_sample(xp[s], w, b, zp[t], out[s], S, Wp, act, alpha)
    fp_restore(old)


@jit(parallel=True)
def pad_planes_u8(X, planes, Z, Wp):
    """Every uint8 image X[s] (H, W, C) / 255 into the interior of its zero-bordered planes
    planes[s] (C, Hp*Wp): the first conv layer's padding of each sample, done once for a split
    that is evaluated again and again (``conv_fwd_planes``)."""
    old = ftz_on()
    for s in prange(X.shape[0]):
        ftz_on()
        _pad_planar(X[s], planes[s], Z, Wp, True)
    fp_restore(old)


@jit(parallel=True)
def conv_fwd_planes(planes, w, b, out, zp, S, Wp, act, alpha):
    """``conv_fwd`` of samples padded already (``pad_planes_u8``): the same bits, without the
    per-sample copy into padded scratch (a quarter of a 32x32x3 evaluation's convolution)."""
    old = ftz_on()
    for s in prange(out.shape[0]):
        ftz_on()
        t = np.int64(get_thread_id())
        _conv_sample(planes[s], w, b, zp[t], out[s], S, Wp, act, alpha)
    fp_restore(old)


@jit()
def _conv_sample(xq, w, b, z, out, S, Wp, act, alpha):
    """One sample of the forward pass: planar output z (F, Ho*Wq) from its padded planes xq,
    then ``out`` (Ho, Wo, F) = the activation of z."""
    Ho, Wo, F = out.shape
    Wq = Wp if S == 1 else Wo
    _conv_one(xq, w, b, z, S, Wp, Ho, Wo)
    _act_rows(z, Wq, out, act, alpha)


@jit(parallel=True)
def conv_bwd(dout, out, w, xp, dzp, dxp, dwp, dbp, dx, S, Z, need_dx, act, alpha):
    """Per-sample parameter-gradient partials and (optionally) the input gradient.

    dout (B,Ho,Wo,F) is the gradient w.r.t. the (activated) output ``out``; the fused
    activation's derivative is taken from ``out`` (ReLU: out > 0; ELU: 1 or out + alpha).
    xp holds the per-sample planes from ``conv_fwd``; dzp (threads, F, Ho*Wq), zero-initialised,
    and dxp (threads, C, Hp*Wp) are per-thread scratch; dwp (B, F,C,K,K) and dbp (B, F) are
    partials; dx (B,H,W,C) is written only when ``need_dx`` (else pass ``dx[:0]``).
    """
    old = ftz_on()
    B, Ho, Wo, F = dout.shape
    C = w.shape[1]
    H, W = dx.shape[1], dx.shape[2]
    Wp = W + 2 * Z
    Wq = Wp if S == 1 else Wo
    for s in prange(B):
        ftz_on()
        t = np.int64(get_thread_id())
        _dact_planes(dout[s], out[s], dzp[t], Wq, act, alpha)
        _conv_grads_one(xp[s], dzp[t], dwp[s], dbp[s], S, Wp, Ho, Wo)
        if need_dx:
            _conv_dx_one(w, dzp[t], dxp[t], S, Wp, Ho, Wo)
            for i in range(H):
                dst = dx[s, i]
                for d in range(C):
                    src = dxp[t, d, (i + Z) * Wp + Z:]
                    for j in range(W):
                        dst[j, d] = src[j]
    fp_restore(old)


@jit()
def sum_samples(part, out):
    """out[p] = sum over samples s (in order) of part[s, p]; parallel over p, so deterministic."""
    old = ftz_on()
    B, P = part.shape
    for p in range(P):
        acc = np.float32(0.0)
        for s in range(B):
            acc += part[s, p]
        out[p] = acc
    fp_restore(old)


# ----------------------------------------------------------------------------- dense
# Dense layers call BLAS's sgemm directly, by the symbol ``cnnvsdnn_sgemm`` that ``blas.py``
# points at the library it chose for this CPU (MKL on Intel, else scipy's) before any kernel
# loads. With explicit row strides a block of rows or columns of a matrix goes to BLAS in
# place, never copied out first. Big layers split their matmuls into ``nb`` blocks over numba
# threads, one single-threaded BLAS call each: numba's workers sleep when idle, whereas
# OpenBLAS's own threads spin ~0.1 s after every call and take the cores from the conv
# kernels' workers.
blas.bind()
_sgemm = types.ExternalFunction(blas.SYMBOL, types.void(*[types.voidptr] * 13))
_N, _T = np.int8(ord("N")), np.int8(ord("T"))
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)


@intrinsic
def _ref(typingctx, value):
    """A pointer to a copy of ``value`` on the caller's stack: Fortran's sgemm takes every
    argument by reference (no allocation, unlike a one-element array per call)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(cgutils.alloca_once_value(builder, args[0]), cgutils.voidptr_t)
    return types.voidptr(value), codegen


@jit()
def _gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    """Row-major C[m, n] = op(A) @ op(B) with op(A) = A.T when ``ta`` (A then stored k x m).

    ``a``, ``b``, ``c`` start at their block's first element and ``ld*`` are their row
    strides, so blocks of bigger matrices need no copy. BLAS is column-major: it is asked
    for C.T = op(B).T @ op(A).T.
    """
    _sgemm(_ref(_T if tb else _N), _ref(_T if ta else _N), _ref(np.int32(n)),
           _ref(np.int32(m)), _ref(np.int32(k)), _ref(_ONE), b.ctypes, _ref(np.int32(ldb)),
           a.ctypes, _ref(np.int32(lda)), _ref(_ZERO), c.ctypes, _ref(np.int32(ldc)))


@jit()
def _bias_act_rows(z, b, lo, hi, act, alpha):
    """z[lo:hi] += b, then the fused activation (0 none, 1 ReLU, 2 ELU(alpha)) in place, by
    the activation layer's own kernels (a row is in L1 by then)."""
    for s in range(lo, hi):
        row = z[s]
        for j in range(row.shape[0]):
            row[j] += b[j]
        if act == 1:
            relu_fwd(row, row)
        elif act == 2:
            elu_fwd(row, row, alpha)


@jit()
def dense_fwd(x, w, b, z, act, alpha):
    """z = act(x @ w + b) in one BLAS call (see ``dense_fwd_split`` for the threaded one)."""
    old = ftz_on()
    B, N = x.shape
    M = w.shape[1]
    _gemm(False, False, B, M, N, x, N, w, M, z, M)
    _bias_act_rows(z, b, 0, B, act, alpha)
    fp_restore(old)


@jit(parallel=True)
def dense_fwd_split(x, w, b, z, part, nb, act, alpha):
    """``dense_fwd`` over ``nb`` threads, split along the inputs: block k multiplies columns
    r0:r1 of x (read in place) by rows r0:r1 of w into ``part[k]``, then z = sum of the parts
    in order + b. Each thread touches only its own rows of w, the same rows whose gradient
    it computes in ``dense_bwd_split``, so they stay in its core's cache (a split along the
    batch had every thread read all of w: dnn 32x32x3 steps 12-30% slower)."""
    old = ftz_on()
    B = x.shape[0]
    for k in prange(nb):
        ftz_on()
        _dense_part(x, w, part, k, nb)
    _sum_parts(part, z, nb)
    _bias_act_rows(z, b, 0, B, act, alpha)
    fp_restore(old)


@jit(parallel=True)
def dense_fwd_split_rows(X, idx, x, w, b, z, part, nb, act, alpha):
    """``dense_fwd_split`` of the training batch X[idx] / 255 (X (N_images, N) uint8 rows) for
    the first layer of a model: block k first scales its own columns r0:r1 of the batch into
    ``x`` (which the backward pass reads), so the batch is read by all the threads inside the
    layer's parallel pass instead of by one serial gather before it. The same bits as
    gathering first."""
    old = ftz_on()
    B, N = x.shape
    for k in prange(nb):
        ftz_on()
        r0, r1 = _block(k, nb, N)
        for s in range(B):
            _scale_row(X[idx[s], r0:r1], x[s, r0:r1])
        _dense_part(x, w, part, k, nb)
    _sum_parts(part, z, nb)
    _bias_act_rows(z, b, 0, B, act, alpha)
    fp_restore(old)


@jit()
def _dense_part(x, w, part, k, nb):
    """part[k] = columns r0:r1 of x (read in place) times rows r0:r1 of w: block k of nb."""
    B, N = x.shape
    M = w.shape[1]
    r0, r1 = _block(k, nb, N)
    pk = part[k, :B]
    if r1 > r0:
        _gemm(False, False, B, M, r1 - r0, x[:, r0:], N, w[r0:], M, pk, M)
    else:
        pk[...] = 0.0


@jit()
def _sum_parts(part, z, nb):
    """z = part[0] + part[1] + ... in that order (the same bits whichever thread made each)."""
    B, M = z.shape
    for s in range(B):
        row = z[s]
        for j in range(M):
            acc = part[0, s, j]
            for k in range(1, nb):
                acc += part[k, s, j]
            row[j] = acc


@jit(parallel=True)
def dense_fwd_rows(x, w, b, z, nb, act, alpha):
    """``dense_fwd`` over ``nb`` threads split along the batch, for evaluation: block k
    computes rows r0:r1 of z whole (one BLAS call, its bias and activation), so no partial
    sums are added up afterwards (on 1,000-image chunks that serial sum cost as much as the
    128->128 layer's matmul). Each row is one BLAS call's row over all inputs, whatever
    ``nb``, so the output does not depend on the number of threads."""
    old = ftz_on()
    B, N = x.shape
    M = w.shape[1]
    for k in prange(nb):
        ftz_on()
        r0, r1 = _block(k, nb, B)
        if r1 > r0:
            _gemm(False, False, r1 - r0, M, N, x[r0:], N, w, M, z[r0:], M)
            _bias_act_rows(z, b, r0, r1, act, alpha)
    fp_restore(old)


@jit()
def _dense_dz(dout, out, dz, db, act, alpha):
    """dz = dout * act'(out) by the activation layer's own kernels, and db = its column sums
    over the batch in order. The derivative is taken from the activation's output: out > 0
    exactly where its input is, so ``out`` stands in for the input the kernels ask for."""
    B, M = dout.shape
    g, a, d = dout.reshape(-1), out.reshape(-1), dz.reshape(-1)
    if act == 0:
        dz[...] = dout
    elif act == 1:
        relu_bwd(a, g, d)
    else:
        elu_bwd(a, a, g, d, alpha)
    for j in range(M):
        db[j] = 0.0
    for s in range(B):
        row = dz[s]
        for j in range(M):
            db[j] += row[j]


@jit()
def dense_bwd(x, dout, out, w, dw, db, dx, dz, need_dx, act, alpha):
    """dw = x.T @ dz, db = sum of dz, and dx = dz @ w.T when ``need_dx``; dz = dout times
    the fused activation's derivative (scratch of dout's shape). One BLAS call each."""
    old = ftz_on()
    B, N = x.shape
    M = dout.shape[1]
    _dense_dz(dout, out, dz, db, act, alpha)
    _gemm(True, False, N, M, B, x, N, dz, M, dw, M)
    if need_dx:
        _gemm(False, True, B, N, M, dz, M, w, M, dx, N)
    fp_restore(old)


@jit(parallel=True)
def dense_bwd_split(x, dout, out, w, dw, db, dx, dz, need_dx, nb, act, alpha):
    """``dense_bwd`` over ``nb`` threads, split along the inputs like ``dense_fwd_split``:
    block k computes rows r0:r1 of dw (from columns r0:r1 of x) and, when ``need_dx``,
    columns r0:r1 of dx (from rows r0:r1 of w), all read and written in place."""
    old = ftz_on()
    B, N = x.shape
    M = dout.shape[1]
    _dense_dz(dout, out, dz, db, act, alpha)
    for k in prange(nb):
        ftz_on()
        r0, r1 = _block(k, nb, N)
        if r1 > r0:
            _gemm(True, False, r1 - r0, M, B, x[:, r0:], N, dz, M, dw[r0:], M)
            if need_dx:
                _gemm(False, True, B, r1 - r0, M, dz, M, w[r0:], M, dx[:, r0:], N)
    fp_restore(old)


# ----------------------------------------------------------------------------- max pool
@jit(parallel=True)
def maxpool_fwd(x, out, arg, P, S):
    """Max over P x P windows with stride S; arg keeps the winner (m*P+n, first max on ties)."""
    old = ftz_on()
    B, Ho, Wo, C = out.shape
    for s in prange(B):
        ftz_on()
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
    fp_restore(old)


@jit(parallel=True)
def maxpool_bwd(dout, arg, dx, P, S):
    old = ftz_on()
    B, Ho, Wo, C = dout.shape
    for s in prange(B):
        ftz_on()
        dx[s] = 0.0
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    k = arg[s, i, j, c]
                    dx[s, i * S + k // P, j * S + k % P, c] += dout[s, i, j, c]
    fp_restore(old)


@jit(parallel=True)
def avgpool_fwd(x, out, P, S):
    """Mean over P x P windows with stride S."""
    old = ftz_on()
    B, Ho, Wo, C = out.shape
    inv = np.float32(1.0) / np.float32(P * P)
    for s in prange(B):
        ftz_on()
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    acc = np.float32(0.0)
                    for m in range(P):
                        for n in range(P):
                            acc += x[s, i * S + m, j * S + n, c]
                    out[s, i, j, c] = acc * inv
    fp_restore(old)


@jit(parallel=True)
def avgpool_bwd(dout, dx, P, S):
    """Each window's gradient shared equally among its P x P inputs."""
    old = ftz_on()
    B, Ho, Wo, C = dout.shape
    inv = np.float32(1.0) / np.float32(P * P)
    for s in prange(B):
        ftz_on()
        dx[s] = 0.0
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    g = dout[s, i, j, c] * inv
                    for m in range(P):
                        for n in range(P):
                            dx[s, i * S + m, j * S + n, c] += g
    fp_restore(old)


# ----------------------------------------------------------------------------- activations
# (each by _act's or _dact's formula, the one the conv kernels apply)
@jit()
def relu_fwd(x, out):
    old = ftz_on()
    for i in range(x.shape[0]):
        out[i] = _act(x[i], 1, np.float32(0.0))
    fp_restore(old)


@jit()
def relu_bwd(x, dout, dx):
    old = ftz_on()
    for i in range(x.shape[0]):
        dx[i] = _dact(dout[i], x[i], 1, np.float32(0.0))
    fp_restore(old)


@jit()
def elu_fwd(x, out, alpha):
    old = ftz_on()
    for i in range(x.shape[0]):
        out[i] = _act(x[i], 2, alpha)
    fp_restore(old)


@jit()
def elu_bwd(x, out, dout, dx, alpha):
    # d/dz elu = 1 for z > 0, alpha*exp(z) = out + alpha otherwise
    old = ftz_on()
    for i in range(x.shape[0]):
        g = dout[i]
        dx[i] = g if x[i] > 0 else g * (out[i] + alpha)
    fp_restore(old)


@jit()
def add_bias(z, b):
    old = ftz_on()
    B, N = z.shape
    for s in range(B):
        for k in range(N):
            z[s, k] += b[k]
    fp_restore(old)


# ----------------------------------------------------------------------------- loss
@jit()
def softmax_ce(logits, y, dlogits):
    """Mean cross-entropy via log-sum-exp; dlogits = (P - Y)/B; accuracy with argmax ties low.

    Returns (cost, accuracy, bad) where bad >= 0 is the index of a label outside [0, K).
    """
    old = ftz_on()
    out = _softmax_ce(logits, y, dlogits)
    fp_restore(old)
    return out


@jit()
def _softmax_ce(logits, y, dlogits):
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
    old = ftz_on()
    B, K = logits.shape
    e = np.empty(K, np.float64)  # a row's exponentials, computed once, not twice (same bits;
    for s in range(B):           # 235 -> 158 us for 1000 rows of 10 classes)
        mx = np.float64(logits[s, 0])
        for k in range(1, K):
            mx = max(mx, np.float64(logits[s, k]))
        tot = 0.0
        for k in range(K):
            e[k] = np.exp(np.float64(logits[s, k]) - mx)
            tot += e[k]
        for k in range(K):
            out[s, k] = e[k] / tot
    fp_restore(old)


# ----------------------------------------------------------------------------- optimiser
# Elements per chunk of Adam's parallel loop: the flush mode is set once per chunk (per element
# it would cost more than the update), and 4 arrays x 16K floats stay in a core's L2.
ADAM_CHUNK = 16384


@jit(parallel=True)
def adam_step(p, g, m, v, lr, b1, b2, eps, c1, c2):
    """theta -= lr * mhat / (sqrt(vhat) + eps), mhat = m*c1, vhat = v*c2 (c = 1/(1-beta^t)).

    float32 arithmetic (as the parameters): it vectorises twice as wide as float64. Each
    element is independent, so splitting over threads changes no bit.
    """
    old = ftz_on()
    lr, b1, b2 = np.float32(lr), np.float32(b1), np.float32(b2)
    eps, c1, c2 = np.float32(eps), np.float32(c1), np.float32(c2)
    one = np.float32(1.0)
    n = p.shape[0]
    for k in prange((n + ADAM_CHUNK - 1) // ADAM_CHUNK):
        ftz_on()
        lo = k * ADAM_CHUNK
        hi = min(lo + ADAM_CHUNK, n)
        pk, gk, mk, vk = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        for i in range(hi - lo):  # the bare counter as index: no wraparound check, vectorised
            gi = gk[i]
            mi = b1 * mk[i] + (one - b1) * gi
            vi = b2 * vk[i] + (one - b2) * gi * gi
            mk[i] = mi
            vk[i] = vi
            pk[i] -= lr * (mi * c1) / (np.sqrt(vi * c2) + eps)
    fp_restore(old)


@jit(parallel=True, exact_division=True)
def adam_step_eps_minus(p, g, m, v, lr, b1, b2, eps, c1, c2):
    """The study's code's update, theta -= lr * mhat / (sqrt(vhat) - eps)
    (``optimizer.eps_sign=minus``), moments in float32 as :func:`adam_step`, the update in
    float64 as the study computed it. Where sqrt(vhat) crosses eps the denominator passes near
    0: in float32 it hits 0 exactly in some runs (an infinite step the study's float64 never
    took); in float64 the steps are huge (the study's weights of ~100) but finite."""
    old = ftz_on()
    b1f, b2f, one = np.float32(b1), np.float32(b2), np.float32(1.0)
    n = p.shape[0]
    for k in prange((n + ADAM_CHUNK - 1) // ADAM_CHUNK):
        ftz_on()
        lo = k * ADAM_CHUNK
        hi = min(lo + ADAM_CHUNK, n)
        pk, gk, mk, vk = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        for i in range(hi - lo):
            gi = gk[i]
            mi = b1f * mk[i] + (one - b1f) * gi
            vi = b2f * vk[i] + (one - b2f) * gi * gi
            mk[i] = mi
            vk[i] = vi
            step = lr * (np.float64(mi) * c1) / (np.sqrt(np.float64(vi) * c2) - eps)
            pk[i] = np.float32(np.float64(pk[i]) - step)
    fp_restore(old)
