"""Denormal floats are flushed to zero inside every engine kernel, on every thread that runs one
(so none can slow a step down), and only there: the caller's arithmetic stays IEEE."""

from __future__ import annotations

import numpy as np
import pytest
from numba import get_thread_id, prange

from cnnvsdnn.engines.numba import build_model, kernels, set_threads
from cnnvsdnn.engines.numba._jit import jit
from cnnvsdnn.engines.numba.fpmode import (
    FLUSH_BITS,
    flushing,
    fp_restore,
    fp_state,
    ftz_on,
    thread_fp_state,
)
from cnnvsdnn.engines.numpy_twin import adam_step as twin_adam

pytestmark = pytest.mark.skipif(not FLUSH_BITS, reason="no flush-to-zero on this CPU")
TINY = np.float32(1e-40)  # a float32 denormal
CNN = [{"type": "conv", "filters": 3, "kernel": 3, "padding": 1}, {"type": "activation",
       "fn": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 32},
       {"type": "activation", "fn": "relu"}, {"type": "dense", "units": 10}]


@jit(parallel=True)
def _probe(tiny, state, thread, out):
    """A kernel built as the engine's are: what each iteration's thread sees."""
    old = ftz_on()
    for i in prange(out.shape[0]):
        ftz_on()
        state[i] = fp_state()
        thread[i] = get_thread_id()
        out[i] = tiny[i] * np.float32(0.5)  # a denormal result unless flushed
    fp_restore(old)


def test_every_thread_of_a_kernel_flushes_and_the_caller_keeps_ieee():
    set_threads(2)
    n = 4096
    state, thread = np.zeros(n, np.int64), np.zeros(n, np.int64)
    out = np.ones(n, np.float32)
    before = thread_fp_state()
    for _ in range(20):  # workers come and go: every time, every thread flushes
        _probe(np.full(n, 2e-38, np.float32), state, thread, out)
        assert all(flushing(int(s)) for s in state) and not out.any()
    assert not flushing(before) and not flushing(thread_fp_state())  # (status bits may differ)
    assert np.float32(2e-38) * np.float32(0.5) != 0  # numpy in this thread: still IEEE


@pytest.mark.parametrize("kernel", [kernels.adam_step, kernels.adam_step_eps_minus])
def test_adam_flushes_denormal_moments_in_every_chunk(kernel):
    """Moments decayed into the denormal range (weights that stopped learning) are zero after
    one step, in every chunk whichever thread ran it -- as the twin computes from flushed
    inputs -- and the parameters do not move (either sign of eps)."""
    set_threads(2)
    n = 20 * kernels.ADAM_CHUNK + 17
    rng = np.random.default_rng(0)
    p = rng.normal(size=n).astype(np.float32)
    g = np.zeros(n, np.float32)
    m, v = np.full(n, TINY), np.full(n, TINY)
    p0 = p.copy()
    kernel(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1.0, 1.0)
    tp, tm, tv = twin_adam(p0, g, np.zeros(n, np.float32), np.zeros(n, np.float32), 1)
    assert not m.any() and not v.any() and not tm.any() and not tv.any()
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(p, tp)


@pytest.mark.parametrize("threads", [1, 2])
def test_denormal_inputs_give_the_flushed_results(threads):
    """A batch holding denormal pixels trains and evaluates bit for bit as the same batch with
    them set to zero (DAZ), on one thread and on two."""
    plan = set_threads(threads)
    rng = np.random.default_rng(1)
    x = rng.random((32, 28, 28, 1), dtype=np.float32)
    x[rng.random(x.shape) < 0.3] = TINY
    x[5] = TINY  # a whole sample of denormals
    flushed = np.where(x == TINY, np.float32(0), x)
    y = rng.integers(0, 10, 32)
    got = []
    for inp in (x, flushed):
        model = build_model(CNN, (28, 28, 1), 10, np.random.default_rng(2), batch_size=32,
                            threads=plan)
        cost, _ = model.loss_and_grad(inp, y)
        got.append((cost, model.grads.copy(), model.predict_proba(inp, chunk=16)))
    assert got[0][0] == got[1][0]
    np.testing.assert_array_equal(got[0][1], got[1][1])
    np.testing.assert_array_equal(got[0][2], got[1][2])
