"""The numba engine against its plain-NumPy twin, and the twin against finite differences."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnnvsdnn.engines import AdamSettings, create, init_params, network
from cnnvsdnn.engines import numpy_twin as numpy_ref
from cnnvsdnn.engines.numba import Adam, build_model, set_threads
from cnnvsdnn.errors import CnnvsdnnError

CONV3 = {"type": "conv", "filters": 3, "kernel": 3, "padding": 1, "stride": 1}
RELU = {"type": "activation", "fn": "relu"}
ELU = {"type": "activation", "fn": "elu"}
FLAT = {"type": "flatten"}


def dense(n):
    return {"type": "dense", "units": n}


HEAD = [FLAT, dense(128), RELU, dense(64), RELU, dense(10)]
MODELS = {
    "dnn": [FLAT, dense(128), RELU, dense(128), RELU, dense(64), RELU, dense(10)],
    "cnn": [CONV3, RELU, *HEAD],
    "cnn32": [{**CONV3, "filters": 32}, RELU, *HEAD],
    "cnn_deep": [
        {"type": "conv", "filters": 5, "kernel": 5, "padding": 2, "stride": 1}, RELU,
        {"type": "maxpool", "size": 2, "stride": 2},
        CONV3, RELU,
        {"type": "maxpool", "size": 2, "stride": 2},
        *HEAD,
    ],
    "cnn_elu": [CONV3, ELU, FLAT, dense(128), ELU, dense(64), ELU, dense(10)],
    # average pooling, overlapping (stride 1 < size 3) and after a conv that needs its dx
    "avgpool": [CONV3, RELU, {"type": "avgpool", "size": 2}, CONV3,
                {"type": "avgpool", "size": 3, "stride": 1}, RELU, FLAT, dense(10)],
    # dense layers with no activation between them: the unfused path, input gradient included
    "linear": [FLAT, dense(200), dense(150), dense(10)],
    # geometry the shipped models do not use: stride 2 without padding, overlapping pooling,
    # a conv that needs an input gradient directly after another conv, ELU with alpha != 1
    "odd": [
        {"type": "conv", "filters": 4, "kernel": 2, "padding": 0, "stride": 2},
        {"type": "activation", "fn": "elu", "alpha": 0.5},
        {"type": "conv", "filters": 2, "kernel": 3, "padding": 2, "stride": 1},
        {"type": "maxpool", "size": 2, "stride": 1},
        RELU, FLAT, dense(10),
    ],
}
SHAPES = [(28, 28, 1), (32, 32, 3)]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """The twin's many tiny BLAS calls crawl when BLAS threads wait for a busy core."""
    with threadpool_limits(1, user_api="blas"):
        yield


def make(name, shape, batch=4, seed=0):
    """A model with every parameter (biases too) random, so no ReLU input sits exactly at 0."""
    model = build_model(MODELS[name], shape, 10, np.random.default_rng(seed), batch_size=batch)
    rng = np.random.default_rng(seed + 1)
    for key, p in model.layer_params().items():
        if key.endswith(".b"):
            p[...] = rng.normal(0, 0.1, p.shape)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    return model, x, y


def close(a, b, rel=2e-4):
    """Equal up to float32 rounding, measured against the tensor's scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b)) if a.size else 0.0
    assert err <= rel * max(np.max(np.abs(b)), 1e-3), (err, np.max(np.abs(b)))


@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("name", list(MODELS))
def test_engine_matches_numpy_twin(name, shape):
    model, x, y = make(name, shape)
    cost, acc = model.loss_and_grad(x, y)
    params = model.layer_params()
    rcost, racc, rgrads, rlogits = numpy_ref.loss_and_grad(MODELS[name], shape, 10, params, x, y)
    assert cost == pytest.approx(rcost, rel=1e-5)
    assert acc == racc
    assert set(rgrads) == set(params)
    for key, g in model.layer_grads().items():
        close(g, rgrads[key])
    probs = model.predict_proba(x, chunk=3)
    close(probs, np.exp(rlogits) / np.exp(rlogits).sum(1, keepdims=True), rel=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("name", list(MODELS))
def test_numpy_twin_matches_finite_differences(name, shape):
    model, x, y = make(name, shape, batch=2)
    params = {k: v.astype(np.float64) for k, v in model.layer_params().items()}
    _, _, grads, _ = numpy_ref.loss_and_grad(MODELS[name], shape, 10, params, x, y)
    rng = np.random.default_rng(7)
    h = 1e-6
    for key, p in params.items():
        flat = p.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 6), replace=False):
            old = flat[i]
            flat[i] = old + h
            up = numpy_ref.loss_and_grad(MODELS[name], shape, 10, params, x, y)[0]
            flat[i] = old - h
            down = numpy_ref.loss_and_grad(MODELS[name], shape, 10, params, x, y)[0]
            flat[i] = old
            numeric = (up - down) / (2 * h)
            assert grads[key].reshape(-1)[i] == pytest.approx(numeric, rel=1e-4, abs=1e-8), key


def test_partial_batch_and_repeatability():
    model, x, y = make("cnn_deep", (32, 32, 3), batch=6)
    model.loss_and_grad(x, y)
    full = model.grads.copy()
    model.loss_and_grad(x[:4], y[:4])
    part = model.grads.copy()
    _, _, rgrads, _ = numpy_ref.loss_and_grad(
        MODELS["cnn_deep"], (32, 32, 3), 10, model.layer_params(), x[:4], y[:4])
    for key, g in model.layer_grads().items():
        close(g, rgrads[key])
    model.loss_and_grad(x, y)
    assert np.array_equal(model.grads, full)  # same inputs, same bits
    assert not np.array_equal(part, full)


def test_numba_thread_count_does_not_change_a_bit():
    """Per-sample partials summed in order: conv/pool results do not depend on numba threads.

    (BLAS is held at one thread by the fixture; OpenBLAS itself may round differently with a
    different thread count, so across ``set_threads`` values only repeatability is promised.)
    """
    import numba

    top = numba.config.NUMBA_NUM_THREADS
    model, x, y = make("cnn_deep", (28, 28, 1), batch=16)
    runs = []
    try:
        for n in (1, top, top, 1):
            numba.set_num_threads(n)
            cost, _ = model.loss_and_grad(x, y)
            runs.append((cost, model.grads.copy(), model.predict_proba(x, chunk=7)))
    finally:
        numba.set_num_threads(top)
    for cost, grads, probs in runs[1:]:
        assert cost == runs[0][0]
        assert np.array_equal(grads, runs[0][1]) and np.array_equal(probs, runs[0][2])


@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
def test_a_filter_computes_the_same_bits_in_a_group_of_three_or_alone(shape):
    """3x3 stride-1 filters run three at a time (one pass over the input feeds all three);
    the rest one by one. A filter's output and gradient partials must not depend on which way
    it ran: 4 filters (a group and one alone) against each filter in a layer of its own."""
    from cnnvsdnn.engines.numba.model import Model

    def conv(F):
        return Model([{**CONV3, "filters": F}, RELU, FLAT, dense(10)], shape, batch_size=6,
                     rng=np.random.default_rng(0))

    rng = np.random.default_rng(3)
    x = rng.random((6, *shape), dtype=np.float32)
    whole = conv(4)
    w, b = whole.layer_params()["0.conv.w"], whole.layer_params()["0.conv.b"]
    b[...] = rng.normal(0, 0.1, 4)
    out = whole.layers[0].forward(x, whole._train_ws[0], True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    whole.layers[0].backward(x, out, dout, whole._train_ws[0], False)
    # the per-sample partials (their sum over the batch is another kernel's)
    dw, db = whole._train_ws[0]["dwp"], whole._train_ws[0]["dbp"]
    for f in range(4):
        one = conv(1)
        one.layer_params()["0.conv.w"][...] = w[f:f + 1]
        one.layer_params()["0.conv.b"][...] = b[f:f + 1]
        o = one.layers[0].forward(x, one._train_ws[0], True)
        assert np.array_equal(o[..., 0], out[..., f])
        one.layers[0].backward(x, o, np.ascontiguousarray(dout[..., f:f + 1]),
                               one._train_ws[0], False)
        assert np.array_equal(one._train_ws[0]["dwp"][:, 0], dw[:, f])
        assert np.array_equal(one._train_ws[0]["dbp"][:, 0], db[:, f])


def test_set_threads_runs_repeat_exactly():
    model, x, y = make("cnn", (28, 28, 1), batch=16)
    model.use_threads(set_threads(2 if numba_threads() >= 2 else 1))
    model.loss_and_grad(x, y)
    first = model.grads.copy()
    model.loss_and_grad(x, y)
    assert np.array_equal(model.grads, first)


def numba_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS


def test_same_seed_same_params_he_init():
    a = build_model(MODELS["cnn"], (28, 28, 1), 10, np.random.default_rng(3))
    b = build_model(MODELS["cnn"], (28, 28, 1), 10, np.random.default_rng(3))
    c = build_model(MODELS["cnn"], (28, 28, 1), 10, np.random.default_rng(4))
    assert np.array_equal(a.params, b.params) and not np.array_equal(a.params, c.params)
    p = a.layer_params()
    assert p["0.conv.w"].shape == (3, 1, 3, 3) and p["3.dense.w"].shape == (2352, 128)
    assert not p["0.conv.b"].any() and not p["3.dense.b"].any()
    assert p["3.dense.w"].std() == pytest.approx(np.sqrt(2 / 2352), rel=0.02)
    assert np.shares_memory(p["3.dense.w"], a.params)
    assert a.n_params == a.params.size == 30 + 2352 * 128 + 128 + 128 * 64 + 64 + 650
    flat = c.params.copy()
    a.load_params(flat)
    assert np.array_equal(a.layer_params()["5.dense.w"], c.layer_params()["5.dense.w"])
    assert len(a.summary()) == len(MODELS["cnn"]) + 1


def test_gather_and_predict_on_uint8():
    model = build_model(MODELS["cnn"], (32, 32, 3), 10, np.random.default_rng(0), batch_size=8)
    X = np.arange(256 * 3 * 32 * 32 // 256 * 5).astype(np.uint8).reshape(5, 32, 32, 3)
    idx = np.array([4, 0, 4])
    out = np.empty((3, 32, 32, 3), np.float32)
    got = model.gather(X, idx, out=out)
    assert got is out
    assert np.array_equal(out, (X[idx] / 255).astype(np.float32))  # every uint8 value occurs
    p8 = model.predict_proba(X, chunk=2)
    pf = model.predict_proba((X / 255).astype(np.float32), chunk=1000)
    close(p8, pf, rel=1e-5)
    assert p8.dtype == np.float32 and np.allclose(p8.sum(1), 1, atol=1e-6)


def test_adam_matches_textbook():
    rng = np.random.default_rng(0)
    p = rng.normal(size=1000).astype(np.float32)
    opt = Adam(p.size, lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6)
    rp, rm, rv = p.astype(np.float64), 0.0, 0.0
    for t in range(1, 6):
        g = rng.normal(size=p.size).astype(np.float32)
        opt.step(p, g)
        rp, rm, rv = numpy_ref.adam_step(rp, g.astype(np.float64), rm, rv, t, 1e-2, 0.8, 0.99,
                                         1e-6)
    assert opt.t == 5
    np.testing.assert_allclose(p, rp, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(opt.m, rm, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(opt.v, rv, rtol=1e-5, atol=1e-9)
    other = Adam(p.size, lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6)
    other.load_state(opt.m, opt.v, opt.t)
    q = p.copy()
    opt.step(p, g)
    other.step(q, g)
    assert np.array_equal(p, q)


def test_training_reduces_loss_on_learnable_data():
    """Class = brightest of 10 horizontal bands; both study models learn it in 150 steps."""
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 10, n)
    X = rng.integers(0, 120, (n, 20, 20, 1)).astype(np.uint8)
    for i, c in enumerate(y):
        X[i, 2 * c:2 * c + 2] += 120
    for name in ("dnn", "cnn"):
        model = build_model(MODELS[name], (20, 20, 1), 10, np.random.default_rng(1),
                            batch_size=32)
        opt = Adam(model.n_params)
        xb = np.empty((32, 20, 20, 1), np.float32)
        costs = []
        for _ in range(150):
            idx = rng.integers(0, n, 32)
            costs.append(model.loss_and_grad(model.gather(X, idx, out=xb), y[idx])[0])
            opt.step(model.params, model.grads)
        acc = np.mean(model.predict_proba(X[:500]).argmax(1) == y[:500])
        assert np.mean(costs[-20:]) < 0.3 * np.mean(costs[:20]), name
        assert acc > 0.9, name


@pytest.mark.parametrize("name,batch", [("dnn", 64), ("cnn", 16), ("linear", 64)])
def test_dense_split_over_numba_threads_matches_one_blas_call(name, batch):
    """Big dense layers run as numba blocks of single-threaded BLAS (threads.py)."""
    if numba_threads() < 2:
        pytest.skip("needs 2 numba threads")
    model, x, y = make(name, (28, 28, 1), batch=batch)
    dense = next(layer for layer in model.layers if layer.spec["type"] == "dense")
    runs = []
    try:
        for n in (1, 2):
            plan = set_threads(n)
            model.use_threads(plan)
            assert plan.dense_blocks == n
            assert dense._blocks(batch) == n  # the path under test is taken
            cost, _ = model.loss_and_grad(x, y)
            runs.append((cost, model.grads.copy(), model.predict_proba(x, chunk=batch)))
    finally:
        set_threads(1)
    (c1, g1, p1), (c2, g2, p2) = runs
    assert c1 == pytest.approx(c2, rel=1e-6)
    close(g2, g1, rel=1e-5)
    close(p2, p1, rel=1e-5)
    # and the split run is right, not only equal to the unsplit one
    rcost, _, rgrads, _ = numpy_ref.loss_and_grad(MODELS[name], (28, 28, 1), 10,
                                                  model.layer_params(), x, y)
    assert c2 == pytest.approx(rcost, rel=1e-5)
    for key, g in model.layer_grads().items():
        close(g, rgrads[key])



@pytest.mark.parametrize("name", ["dnn", "cnn", "linear"])
def test_evaluation_split_along_the_batch_matches_numpy_twin(name, monkeypatch):
    """Evaluation runs big dense layers as row blocks (``dense_fwd_rows``) and scales uint8
    chunks over the threads (``scale_u8_blocks``): uneven blocks, a last chunk smaller than the
    thread count, and uint8 input, all against the twin's float64 forward pass."""
    if numba_threads() < 2:
        pytest.skip("needs 2 numba threads")
    from cnnvsdnn.engines.numba import kernels as K
    from cnnvsdnn.engines.numba.model import SCALE_SPLIT_MIN

    model, _, _ = make(name, (28, 28, 1), batch=4)
    X = np.random.default_rng(5).integers(0, 256, (1001, 28, 28, 1), dtype=np.uint8)
    ref = numpy_ref.forward(model.net, model.layer_params(),
                            X.astype(np.float64) / 255)[0]
    ref = np.exp(ref - ref.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    try:
        model.use_threads(set_threads(2))
        dense = next(layer for layer in model.layers if layer.spec["type"] == "dense")
        # the paths under test: split layers, split scaling but a serial last chunk
        assert dense._blocks(400) == 2 and 400 * 784 >= SCALE_SPLIT_MIN > 201 * 784
        calls = []  # which kernels run, and the scaling's thread counts
        rows, scale = K.dense_fwd_rows, K.scale_u8_blocks
        monkeypatch.setattr(K, "dense_fwd_rows", lambda *a: (calls.append("rows"), rows(*a)))
        monkeypatch.setattr(K, "scale_u8_blocks",
                            lambda X, out, nb: (calls.append(nb), scale(X, out, nb)))
        probs = model.predict_proba(X, chunk=400)  # chunks 400, 400, 201
        monkeypatch.undo()
    finally:
        set_threads(1)
    assert "rows" in calls and 2 in calls and 1 in calls  # the last chunk is scaled serially
    close(probs, ref, rel=1e-5)
    scaled = np.empty((7, 784), np.float32)
    K.scale_u8_blocks(X[:7].reshape(7, -1), scaled, 3)  # blocks of 2, 2, 3 rows
    assert np.array_equal(scaled, (X[:7].reshape(7, -1) / 255).astype(np.float32))



@pytest.mark.parametrize("name,shape", [("cnn", (28, 28, 1)), ("cnn", (32, 32, 3)),
                                        ("cnn_deep", (32, 32, 3)), ("odd", (28, 28, 1)),
                                        ("dnn", (28, 28, 1))])
def test_eval_input_evaluates_as_the_images(name, shape):
    """The loop evaluates the development split from ``eval_input``, made ready once: a model
    whose first layer is a conv gets the images padded into that layer's planes (padding 1, 2
    and 0 with stride 2 here), any other the images scaled to float32. Either way the same bits
    as evaluating the uint8 images, chunk by chunk."""
    from cnnvsdnn.engines.numba.model import PaddedPlanes

    net = network(MODELS[name], shape, 10)
    eng = create("numba", net, init_params(net, np.random.default_rng(0)), AdamSettings(), 8,
                 2 if numba_threads() >= 2 else 1)
    X = np.random.default_rng(1).integers(0, 256, (700, *shape), dtype=np.uint8)
    scaled = (X / 255).astype(np.float32)
    Xe = eng.eval_input(X)
    first = MODELS[name][0]
    if first["type"] == "conv":  # the planes: channel-major, zero-bordered, values / 255
        z, C = first["padding"], shape[2]
        assert isinstance(Xe, PaddedPlanes) and len(Xe) == 700
        want = np.pad(scaled.transpose(0, 3, 1, 2), ((0, 0), (0, 0), (z, z), (z, z)))
        assert np.array_equal(Xe.data, want.reshape(700, C, -1))
    else:
        assert Xe.dtype == np.float32 and np.array_equal(Xe, scaled)
    try:
        for chunk in (1000, 333):
            probs = eng.predict_proba(X, chunk=chunk)
            assert np.array_equal(eng.predict_proba(Xe, chunk=chunk), probs)
            assert np.array_equal(eng.predict_proba(scaled, chunk=chunk), probs)
    finally:
        set_threads(1)


def test_multithreaded_blas_option_matches_numpy_twin():
    """``set_threads(n, blas_threads=2)``: unsplit dense layers, BLAS's own threads instead."""
    if numba_threads() < 2:
        pytest.skip("needs 2 threads")
    model, x, y = make("linear", (28, 28, 1), batch=64)
    try:
        plan = set_threads(2, blas_threads=2)
        model.use_threads(plan)
        assert plan.dense_blocks == 0 and model.layers[1]._blocks(64) == 1
        cost, _ = model.loss_and_grad(x, y)
    finally:
        set_threads(1)
    rcost, _, rgrads, _ = numpy_ref.loss_and_grad(MODELS["linear"], (28, 28, 1), 10,
                                                  model.layer_params(), x, y)
    assert cost == pytest.approx(rcost, rel=1e-5)
    for key, g in model.layer_grads().items():
        close(g, rgrads[key])


def test_dense_layer_takes_a_strided_input():
    """The dense kernels hand row strides to BLAS; a non-contiguous input must still be right."""
    model, x, y = make("linear", (28, 28, 1))
    dense, ws = model.layers[1], model._train_ws[1]
    flat = x.reshape(len(x), -1)
    strided = np.repeat(flat, 2, axis=1)[:, ::2]  # the same values, every other column
    assert not strided.flags.c_contiguous
    want = flat @ dense.p["w"] + dense.p["b"]
    close(dense.forward(strided, ws, True), want, rel=1e-5)


def test_warm_up_changes_no_parameter_or_optimizer_state():
    """train() compiles every kernel before its loop; that must not move the run."""
    model, x, y = make("cnn", (28, 28, 1))
    opt = Adam(model.n_params)
    opt.step(model.params, np.ones_like(model.grads))  # some state to keep
    before = model.params.copy(), opt.m.copy(), opt.v.copy(), opt.t
    model.warm_up(np.zeros((3, 28, 28, 1), np.uint8))
    opt.warm_up()
    assert np.array_equal(model.params, before[0])
    assert np.array_equal(opt.m, before[1]) and np.array_equal(opt.v, before[2])
    assert opt.t == before[3]



@pytest.mark.parametrize("name,batch_read", [("cnn", "conv_fwd_rows"),
                                             ("dnn", "dense_fwd_split_rows")])
def test_warm_up_takes_the_threaded_evaluation_path(name, batch_read, monkeypatch):
    """On 2 threads, warm-up reads a training batch as the training step does (a first conv
    layer, or a first dense layer split over the threads, reads it itself) and evaluates
    enough images that the evaluation's own kernels (``dense_fwd_rows``) compile there, not
    inside the loop's first step or first development evaluation (a fresh install's first run
    would count their compilation there)."""
    if numba_threads() < 2:
        pytest.skip("needs 2 numba threads")
    from cnnvsdnn.engines.numba import kernels as K

    model, _, _ = make(name, (28, 28, 1), batch=8)  # the dnn's first layer split: 0.8M MACs
    calls = []
    rows, read = K.dense_fwd_rows, getattr(K, batch_read)
    monkeypatch.setattr(K, "dense_fwd_rows", lambda *a: (calls.append(a[0].shape), rows(*a)))
    monkeypatch.setattr(K, batch_read, lambda *a: (calls.append("batch"), read(*a)))
    try:
        model.use_threads(set_threads(2))
        model.warm_up(np.zeros((100, 28, 28, 1), np.uint8))
    finally:
        set_threads(1)
    assert "batch" in calls  # the training step's way of reading its batch
    assert any(c != "batch" and c[0] == 64 for c in calls)


@pytest.mark.parametrize("name", ["cnn", "cnn_deep", "cnn_elu", "odd", "dnn"])
@pytest.mark.parametrize("shape", [*SHAPES, (16, 12, 2)], ids=["28x28x1", "32x32x3", "16x12x2"])
def test_a_batch_read_from_the_uint8_rows_trains_as_the_gathered_batch(name, shape):
    """``loss_and_grad_rows`` (the training step's way in: a first conv layer scales and pads
    the dataset's rows itself, a first dense layer scales them in its split matmul, on every
    thread) gives the bits of gathering the batch and calling ``loss_and_grad``; every uint8
    value occurs in the batch, indices repeat and run backwards. The conv layer reads 1 and 3
    channels by vector loops of their own, other counts by the general one (2 here)."""
    model, _, _ = make(name, shape, batch=8)
    rng = np.random.default_rng(5)
    X = rng.permutation(np.arange(30 * int(np.prod(shape))) % 256).astype(np.uint8)
    X = X.reshape(30, *shape)
    idx, y = np.array([29, 3, 3, 17, 0, 11, 28]), rng.integers(0, 10, 7)
    assert np.unique(X[idx]).size == 256
    # (a dense layer split over 2 threads sums in another order: compare at each count)
    for threads in (1, 2) if numba_threads() >= 2 else (1,):
        model.use_threads(set_threads(threads))
        if name == "dnn" and shape in SHAPES:  # its first layer reads the rows in its split
            # matmul on 2 threads (16x12x2's is too small to split)
            assert model.layers[1]._blocks(len(idx)) == threads
        try:
            got = [model.loss_and_grad_rows(X, idx, y), model.grads.copy()]
            want = [model.loss_and_grad(model.gather(X, idx), y), model.grads.copy()]
        finally:
            model.use_threads(set_threads(1))
        assert got[0] == want[0] and np.array_equal(got[1], want[1])
        first = next(iter(model.layer_grads().values()))  # the layer that read the rows
        assert np.count_nonzero(first) > first.size // 4
    with pytest.raises(CnnvsdnnError, match="batch indices"):
        model.loss_and_grad_rows(X, np.array([0, 30]), y[:2])
    with pytest.raises(CnnvsdnnError, match="integer"):
        model.loss_and_grad_rows(X, np.array([0.0, 1.0]), y[:2])
    with pytest.raises(CnnvsdnnError, match="C-contiguous"):
        model.loss_and_grad_rows(X[:, ::-1], idx, y)


def test_every_layer_type_of_the_registry_has_a_numba_layer():
    from cnnvsdnn.engines.layer_types import LAYER_TYPES
    from cnnvsdnn.engines.numba.layers import NUMBA_LAYERS

    assert set(NUMBA_LAYERS) == set(LAYER_TYPES)


@pytest.mark.parametrize("k", [2, 3, 17])
def test_other_numbers_of_classes_through_a_network(k):
    """A Network of k classes (a user's folder), as the engine builds it: the output layer, the
    loss's gradient buffer and the probabilities all have k columns, matching the twin."""
    layers = [CONV3, RELU, FLAT, dense(16), RELU, dense(k)]
    net = network(layers, (8, 8, 1), k)
    params = init_params(net, np.random.default_rng(0))
    eng = create("numba", net, params, AdamSettings(), batch_size=5, threads=1)
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    y = rng.integers(0, k, 5)
    x = eng.model.gather(X, np.arange(5))
    cost, _ = eng.model.loss_and_grad(x, y)
    rcost, _, rgrads, _ = numpy_ref.loss_and_grad(layers, (8, 8, 1), k, params, x, y)
    assert cost == pytest.approx(rcost, rel=1e-5)
    for key, g in eng.model.layer_grads().items():
        close(g, rgrads[key])
    assert eng.predict_proba(X).shape == (5, k)
    eng.train_step(X, np.arange(5), y)
