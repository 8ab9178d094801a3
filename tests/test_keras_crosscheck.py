"""Our engine against Keras, number by number (issue 6): with identical weights and batch, the
forward probabilities, the loss, every gradient and Adam updates agree to float32 tolerance.

Skipped when the optional extra ``reference`` (keras 3 + tensorflow-cpu) is not installed.
The printed max abs differences (``pytest -s``) are the cross-check report per model.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("keras") is None or importlib.util.find_spec("tensorflow") is None:
    pytest.skip("the optional extra 'reference' (keras 3, tensorflow-cpu) is not installed; "
                "pip install 'cnnvsdnn[reference]'", allow_module_level=True)

from cnnvsdnn.config import model_layers  # noqa: E402
from cnnvsdnn.engines import keras as ke  # noqa: E402
from cnnvsdnn.engines.numba import Adam, build_model  # noqa: E402

K = ke.load_keras()  # a broken install fails here (not skipped)
tf = K.tf


# the models' layers as `cnnvsdnn train model=NAME` resolves them (10 output units)
MODELS = {name: model_layers(name) for name in ("dnn", "cnn", "cnn32", "cnn_deep", "cnn_elu",
                                                "cnn_avgpool")}
# Beyond the shipped configs: ELU with alpha != 1 (is alpha carried over?), an even kernel and
# stride 2 on both sides.
MODELS["elu_strided"] = [
    {"type": "conv", "filters": 4, "kernel": 4, "padding": 1, "stride": 2},
    {"type": "activation", "fn": "elu"}, {"type": "flatten"},
    {"type": "dense", "units": 64}, {"type": "activation", "fn": "elu", "alpha": 0.5},
    {"type": "dense", "units": 10}]
SHAPES = {"28x28x1": (28, 28, 1), "32x32x3": (32, 32, 3)}
B = 16  # batch size of the checks


def _pair(name, shape, seed=0):
    """(numba model, Keras logits model with the same weights, uint8 batch, labels)."""
    rng = np.random.default_rng(seed)
    ours = build_model(MODELS[name], input_shape=shape, n_classes=10,
                       rng=np.random.default_rng(seed), batch_size=B)
    theirs = ke.build_keras_model(MODELS[name], shape, 10, softmax=False)
    ke.copy_params_to_keras(ours, theirs)
    X = rng.integers(0, 256, size=(B, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, size=B)
    return ours, theirs, X, y


def _keras_loss_and_grads(kmodel, x, y):
    with tf.GradientTape() as tape:
        z = kmodel(x, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z))
    grads = tape.gradient(loss, kmodel.trainable_variables)
    return float(loss), ke.from_keras_weights([g.numpy() for g in grads])


def _rel(a, b):
    """max |a-b| relative to max |b| (gradients of different layers differ in scale)."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@pytest.mark.parametrize("shape_name", SHAPES)
@pytest.mark.parametrize("name", MODELS)
def test_forward_loss_and_gradients_agree(name, shape_name):
    ours, theirs, X, y = _pair(name, SHAPES[shape_name])
    x = ke.to_float(X)

    p_ours = ours.predict_proba(X)
    p_keras = ke.predict_proba(theirs, X, logits=True)
    # the study's form too: softmax as the last Keras layer
    study = ke.build_keras_model(MODELS[name], SHAPES[shape_name], 10, softmax=True)
    study.set_weights(theirs.get_weights())
    p_study = study(x, training=False).numpy()

    cost, _ = ours.loss_and_grad(x, y)
    k_cost, k_grads = _keras_loss_and_grads(theirs, x, y)
    names = list(ours.layer_params())
    g_ours = ours.layer_grads()
    rel = {n: _rel(g_ours[n], g) for n, g in zip(names, k_grads, strict=True)}
    dp = float(np.max(np.abs(p_ours - p_keras)))
    print(f"\n{name} {shape_name}: max|dp| {dp:.2e} (softmax layer "
          f"{np.max(np.abs(p_ours - p_study)):.2e}), |dloss| {abs(cost - k_cost):.2e}, "
          f"max rel dgrad {max(rel.values()):.2e} ({max(rel, key=rel.get)})")

    assert p_ours.shape == p_keras.shape == (B, 10)
    assert dp < 2e-6
    assert np.max(np.abs(p_ours - p_study)) < 2e-6
    assert abs(cost - k_cost) < 1e-5 * max(1.0, abs(k_cost))
    for n, g in zip(names, k_grads, strict=True):
        assert g_ours[n].shape == g.shape, n
        assert rel[n] < 1e-4, f"{n}: gradients differ by {rel[n]:.2e} of their scale"
        assert np.any(g != 0), f"{n}: a zero gradient would make this check empty"


# A large eps makes the update depend on the gradient's size (with 1e-8, m_hat/sqrt(v_hat) is
# just the gradient's sign after one step and the check would prove little), and keeps
# float-noise gradients of dead ReLUs (~1e-9) from flipping signs of whole updates.
LR, B1, B2, EPS = 1e-2, 0.9, 0.999, 1e-3


@pytest.mark.parametrize("name", ["dnn", "cnn", "cnn_deep"])
def test_one_adam_step_agrees_with_keras_adam(name):
    """Keras's Adam puts eps next to sqrt(v), not sqrt(v_hat): with bias correction folded into
    the learning rate it computes theta -= alpha m/(sqrt(v) + eps') with alpha =
    lr sqrt(1-b2^t)/(1-b1^t). That is SPEC section 4's update when eps' = eps sqrt(1-b2^t),
    so at step t=1 Keras's epsilon must be eps*sqrt(1-b2). Without that it differs (shown)."""
    ours, theirs, X, y = _pair(name, (28, 28, 1), seed=1)
    x = ke.to_float(X)
    before = ours.params.copy()
    ours.loss_and_grad(x, y)
    opt = Adam(ours.n_params, lr=LR, beta1=B1, beta2=B2, eps=EPS)
    opt.step(ours.params, ours.grads)
    d_ours = ours.params - before

    def keras_delta(eps):
        m = ke.build_keras_model(MODELS[name], (28, 28, 1), 10, softmax=False)
        m.set_weights(theirs.get_weights())
        w0 = [v.numpy() for v in m.trainable_variables]
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                y, m(x, training=True)))
        k_opt = K.keras.optimizers.Adam(learning_rate=LR, beta_1=B1, beta_2=B2, epsilon=eps)
        k_opt.apply(tape.gradient(loss, m.trainable_variables), m.trainable_variables)
        d = [v.numpy() - a for v, a in zip(m.trainable_variables, w0, strict=True)]
        return np.concatenate([a.ravel() for a in ke.from_keras_weights(d)])

    d_keras = keras_delta(EPS * np.sqrt(1 - B2))
    err = float(np.max(np.abs(d_ours - d_keras)))
    err_unadjusted = float(np.max(np.abs(d_ours - keras_delta(EPS))))
    print(f"\n{name}: one Adam step, max|dtheta| diff {err:.2e} (update scale "
          f"{np.max(np.abs(d_ours)):.2e}); with Keras's eps unadjusted {err_unadjusted:.2e}")
    assert err < 1e-3 * LR
    assert err_unadjusted > 10 * err  # the check sees the eps placement


@pytest.mark.parametrize("name", ["cnn", "elu_strided"])
def test_training_steps_agree_with_textbook_adam(name):
    """The ``ours`` protocol's step (Keras forward/backward + TextbookAdam) tracks the numba
    engine's step over several steps, each side using its own gradients."""
    shape = (32, 32, 3)
    ours, theirs, _, _ = _pair(name, shape, seed=2)
    rng = np.random.default_rng(3)
    opt = Adam(ours.n_params, lr=LR, beta1=B1, beta2=B2, eps=EPS)
    k_opt = K.TextbookAdam(learning_rate=LR, beta_1=B1, beta_2=B2, epsilon=EPS)
    before = ours.params.copy()
    costs = []
    for _ in range(4):
        X = rng.integers(0, 256, size=(B, *shape), dtype=np.uint8)
        y = rng.integers(0, 10, size=B)
        x = ke.to_float(X)
        c, _ = ours.loss_and_grad(x, y)
        opt.step(ours.params, ours.grads)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                y, theirs(x, training=True)))
        k_opt.apply(tape.gradient(loss, theirs.trainable_variables), theirs.trainable_variables)
        costs.append((c, float(loss)))
    k_params = ke.keras_layer_params(ours, theirs)
    flat_k = np.concatenate([a.ravel() for a in k_params.values()])
    err = float(np.max(np.abs(ours.params - flat_k)))
    moved = float(np.max(np.abs(ours.params - before)))
    dcost = max(abs(a - b) for a, b in costs)
    print(f"\n{name}: 4 Adam steps, max|dtheta| {err:.2e} (moved {moved:.2e}), "
          f"max|dcost| {dcost:.2e}")
    assert moved > 3 * LR  # the parameters really moved
    assert err < 5e-3 * LR
    assert dcost < 1e-4


def test_textbook_adam_with_the_studys_eps_sign_agrees_with_the_twin():
    """``engine=keras engine.protocol=ours optimizer.eps_sign=minus``: Keras's TextbookAdam given
    -ε computes the study's θ ← θ − η m̂/(√v̂ − ε), as the NumPy twin does (gradients of 1e-9,
    where the two signs step opposite ways, and of 1)."""
    from cnnvsdnn.engines.numpy_twin import adam_step

    g = np.array([1e-9, -2e-9, 0.5, -1.0], np.float32)
    for sign, eps in (("plus", 1e-8), ("minus", -1e-8)):
        var = K.keras.Variable(np.zeros(4, np.float32))
        opt = K.TextbookAdam(learning_rate=1e-3, epsilon=eps)
        q, m, v = np.zeros(4), 0.0, 0.0
        for t in range(1, 4):
            opt.apply([tf.constant(g)], [var])
            q, m, v = adam_step(q, g.astype(np.float64), m, v, t, eps_sign=sign)
        np.testing.assert_allclose(var.numpy(), q, rtol=1e-4)
        assert np.all(np.sign(q[:2]) == (np.sign(g[:2]) if sign == "minus" else -np.sign(g[:2])))
