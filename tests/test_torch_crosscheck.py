"""Our engine against PyTorch with identical weights and batch: forward probabilities, loss,
every gradient and one Adam step, for every shipped model (conf/model/*.yaml) on both input
shapes. Skipped when PyTorch (the `bench` extra) is not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnvsdnn.config import model_layers
from cnnvsdnn.engines.numba import Adam, build_model

torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install 'cnnvsdnn[bench]'")
from cnnvsdnn.engines.torch import build_torch_model  # noqa: E402

MODELS = sorted((Path(__file__).resolve().parents[1] / "conf" / "model").glob("*.yaml"))
SHAPES = [(28, 28, 1), (32, 32, 3)]


def _torch_twin(layers, shape, ours):
    """The same network in PyTorch (the registry's torch layers), with our parameters."""
    return build_torch_model(layers, shape, 10, params=ours.layer_params())


def _close(ours, theirs, what, rtol=2e-4):
    theirs = np.asarray(theirs)
    scale = max(np.abs(theirs).max(), 1e-6)
    err = np.abs(np.asarray(ours) - theirs).max() / scale
    assert err < rtol, f"{what}: max relative difference {err:.2e}"
    return err


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("model_file", MODELS, ids=lambda p: p.stem)
def test_engine_agrees_with_pytorch(model_file, shape):
    torch.set_num_threads(1)
    # as `cnnvsdnn train model=...` resolves it: the last layer has one unit per MNIST class
    layers = model_layers(model_file.stem)
    ours = build_model(layers, input_shape=shape, n_classes=10, rng=np.random.default_rng(3),
                       batch_size=16)
    net = _torch_twin(layers, shape, ours)
    rng = np.random.default_rng(4)
    x = rng.random((16, *shape), dtype=np.float32)
    y = rng.integers(0, 10, 16)

    probs = ours.predict_proba(x)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    logits = net(xt)
    _close(probs, torch.softmax(logits, 1).detach().numpy(), "probabilities")

    cost, _ = ours.loss_and_grad(x, y)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    assert abs(cost - loss.item()) < 1e-5 * max(1.0, loss.item())
    for name, g in ours.layer_grads().items():
        m = net[int(name.split(".")[0])]
        t = m.bias.grad if name.endswith(".b") else m.weight.grad
        if ".dense.w" in name:  # PyTorch's Linear weight is (out, in)
            t = t.T
        _close(g, t.numpy(), f"gradient {name}")

    # One Adam step from the same gradient (ours): Adam's first step is lr * g / (|g| + eps),
    # so gradients that agree to float32 rounding but are ~eps in size would step differently.
    ours_g = ours.layer_grads()
    for i, lay in enumerate(layers):
        if lay["type"] == "conv":
            net[i].weight.grad = torch.from_numpy(ours_g[f"{i}.conv.w"].copy())
            net[i].bias.grad = torch.from_numpy(ours_g[f"{i}.conv.b"].copy())
        elif lay["type"] == "dense":
            net[i].weight.grad = torch.from_numpy(ours_g[f"{i}.dense.w"].T.copy())
            net[i].bias.grad = torch.from_numpy(ours_g[f"{i}.dense.b"].copy())
    opt_t = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    opt_t.step()
    opt = Adam(ours.n_params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    before = ours.params.copy()
    opt.step(ours.params, ours.grads)
    after = {k: v.copy() for k, v in ours.layer_params().items()}
    for i, lay in enumerate(layers):
        if lay["type"] == "conv":
            pairs = [(f"{i}.conv.w", net[i].weight), (f"{i}.conv.b", net[i].bias)]
        elif lay["type"] == "dense":
            pairs = [(f"{i}.dense.w", net[i].weight.T), (f"{i}.dense.b", net[i].bias)]
        else:
            continue
        for name, p in pairs:
            _close(after[name], p.detach().numpy(), f"parameter {name} after one Adam step",
                   rtol=1e-5)
    assert not np.array_equal(before, ours.params)  # the step moved the parameters
