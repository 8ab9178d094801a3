"""Our engine against JAX with identical weights and batch: forward probabilities, loss, every
gradient and one optax Adam step, for every shipped model (conf/model/*.yaml) on both input
shapes; and the JAX engine's jitted training step against ours. Skipped when JAX (the `bench`
extra) is not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnvsdnn import engines
from cnnvsdnn.config import model_layers
from cnnvsdnn.engines.numba import Adam, build_model

jax = pytest.importorskip("jax", reason="JAX not installed: pip install 'cnnvsdnn[bench]'")
optax = pytest.importorskip("optax", reason="optax not installed: pip install 'cnnvsdnn[bench]'")
from cnnvsdnn.engines.jax import build_forward, loss_fn  # noqa: E402

MODELS = sorted((Path(__file__).resolve().parents[1] / "conf" / "model").glob("*.yaml"))
SHAPES = [(28, 28, 1), (32, 32, 3)]


def _close(ours, theirs, what, rtol=2e-4):
    theirs = np.asarray(theirs)
    scale = max(np.abs(theirs).max(), 1e-6)
    err = np.abs(np.asarray(ours) - theirs).max() / scale
    assert err < rtol, f"{what}: max relative difference {err:.2e}"


# every model on MNIST's shape; the study's two also on CIFAR-10's (the suite stays fast)
CASES = [(m, SHAPES[0]) for m in MODELS] + [(m, SHAPES[1]) for m in MODELS
                                             if m.stem in ("dnn", "cnn")]


@pytest.mark.parametrize("model_file,shape", CASES,
                         ids=[f"{m.stem}-{'x'.join(map(str, s))}" for m, s in CASES])
def test_engine_agrees_with_jax(model_file, shape):
    # as `cnnvsdnn train model=...` resolves it: the last layer has one unit per MNIST class
    layers = model_layers(model_file.stem)
    ours = build_model(layers, input_shape=shape, n_classes=10, rng=np.random.default_rng(3),
                       batch_size=16)
    _, logits = build_forward(layers, shape, 10)
    params = {k: jax.numpy.asarray(v.copy()) for k, v in ours.layer_params().items()}
    rng = np.random.default_rng(4)
    x = rng.random((16, *shape), dtype=np.float32)
    y = rng.integers(0, 10, 16)

    _close(ours.predict_proba(x), jax.nn.softmax(logits(params, x), axis=1), "probabilities")
    cost, _ = ours.loss_and_grad(x, y)
    (loss, _), grads = jax.value_and_grad(loss_fn(logits), has_aux=True)(params, x, y)
    assert abs(cost - float(loss)) < 1e-5 * max(1.0, float(loss))
    for name, g in ours.layer_grads().items():
        _close(g, grads[name], f"gradient {name}")

    # one Adam step from the same gradient (ours), as in the PyTorch cross-check; optax takes
    # the bias corrections 1 - beta^t in float32 (1 - float32(0.999) is 1.3e-5 off), hence
    # the looser tolerance
    ours_g = {k: jax.numpy.asarray(v.copy()) for k, v in ours.layer_grads().items()}
    opt = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)
    updates, _ = opt.update(ours_g, opt.init(params), params)
    theirs = optax.apply_updates(params, updates)
    Adam(ours.n_params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8).step(ours.params, ours.grads)
    for name, p in ours.layer_params().items():
        _close(p, theirs[name], f"parameter {name} after one Adam step", rtol=5e-5)


def test_jax_engine_trains_like_ours():
    """The bench's JAX engine (one jitted step: gather, gradients, optax Adam) takes the same
    steps as ours from the same parameters and batches."""
    layers = model_layers("cnn")
    net = engines.network(layers, (28, 28, 1), 10)
    params = engines.init_params(net, np.random.default_rng(0))
    made = {name: engines.create(name, net, params, engines.AdamSettings(), 32, 1)
            for name in ("numba", "jax")}
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (256, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, 256)
    for _ in range(5):
        idx = rng.choice(256, 32, replace=False)
        costs = [e.train_step(X, idx, y[idx])[0] for e in made.values()]
        assert abs(costs[0] - costs[1]) < 1e-4 * max(1.0, costs[1])
    for name, p in made["numba"].layer_params().items():
        _close(p, made["jax"].layer_params()[name], f"parameter {name} after 5 steps", 1e-3)
    _close(made["numba"].predict_proba(X[:100]), made["jax"].predict_proba(X[:100], chunk=64),
           "probabilities after 5 steps", 1e-3)
