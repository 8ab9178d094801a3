"""``model.init``: each scheme of ``layer_types.init_params`` against its library's own
initialiser, drawn for the same layers: Keras's GlorotUniform for ``glorot_uniform``, PyTorch's
default ``nn.Linear``/``nn.Conv2d`` initialisation for ``torch`` and PyTorch's
``kaiming_normal_`` (fan-in, ReLU gain: N(0, √(2/fan_in)), untruncated as the study's eq.
37-39) for ``he_normal``. Compared by a two-sample Kolmogorov-Smirnov test, the bounds and the
first two moments; a wrong scheme is rejected by the same test (shown).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from scipy import stats

from cnnvsdnn.engines.layer_types import init_params, network

if importlib.util.find_spec("torch") is None:
    pytest.skip("PyTorch (the 'bench' extra) is not installed", allow_module_level=True)
import torch  # noqa: E402

# conv 16 -> 64 filters 3x3 (fan_in 144, fan_out 576), then dense 4096 -> 256 (a bias of 256)
LAYERS = [{"type": "conv", "filters": 64, "kernel": 3, "padding": 1},
          {"type": "flatten"}, {"type": "dense", "units": 256},
          {"type": "activation", "fn": "relu"}, {"type": "dense", "units": 10}]
NET = network(LAYERS, (8, 8, 16), 10)
P_MIN = 1e-3  # KS p-value below which two samples are not from one distribution


def ours(scheme: str, seed: int = 0) -> dict[str, np.ndarray]:
    return init_params(NET, np.random.default_rng(seed), scheme)


def torch_layers(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Conv2d(16, 64, 3, padding=1), torch.nn.Linear(4096, 256)


def same_distribution(a, b) -> float:
    return float(stats.ks_2samp(np.ravel(a), np.ravel(b)).pvalue)


def test_glorot_uniform_is_keras_glorot_uniform():
    if importlib.util.find_spec("keras") is None:
        pytest.skip("Keras (the 'reference' extra) is not installed")
    from cnnvsdnn.engines.keras import load_keras

    keras = load_keras().keras
    p = ours("glorot_uniform")
    conv = keras.initializers.GlorotUniform(seed=1)((3, 3, 16, 64)).numpy()  # (K,K,C,F)
    dense = keras.initializers.GlorotUniform(seed=2)((4096, 256)).numpy()
    for w, k, fans in ((p["0.conv.w"], conv, (144, 576)), (p["2.dense.w"], dense, (4096, 256))):
        limit = math.sqrt(6 / sum(fans))
        assert same_distribution(w, k) > P_MIN
        assert np.abs(w).max() <= limit and np.abs(k).max() <= limit
        assert np.abs(w).max() > 0.99 * limit  # it reaches its bound
        assert w.var() == pytest.approx(k.var(), rel=0.05) == limit**2 / 3
        assert abs(w.mean()) < 3 * limit / math.sqrt(3 * w.size)
    assert not p["0.conv.b"].any() and not p["2.dense.b"].any()  # Keras's zeros
    # the test can tell the schemes apart: PyTorch's default is not Glorot's
    assert same_distribution(ours("torch")["2.dense.w"], dense) < P_MIN


def test_torch_is_pytorchs_default_linear_and_conv2d_init():
    p = ours("torch")
    conv, dense = torch_layers()
    pairs = ((p["0.conv.w"], conv.weight, 144), (p["0.conv.b"], conv.bias, 144),
             (p["2.dense.w"], dense.weight, 4096), (p["2.dense.b"], dense.bias, 4096))
    for a, t, fan_in in pairs:
        t = t.detach().numpy()
        bound = 1 / math.sqrt(fan_in)
        assert a.shape[::-1] == t.shape or a.shape == t.shape
        assert same_distribution(a, t) > P_MIN
        assert np.abs(a).max() <= bound and np.abs(t).max() <= bound
        assert a.var() == pytest.approx(t.var(), rel=0.15)  # 64 or 256 biases: loose
    assert p["2.dense.w"].var() == pytest.approx(1 / (3 * 4096), rel=0.02)
    assert same_distribution(ours("glorot_uniform")["0.conv.w"], conv.weight.detach()) < P_MIN


def test_he_normal_is_kaiming_normal_fan_in_relu():
    p = ours("he_normal")
    conv, dense = torch_layers(1)
    torch.nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    torch.nn.init.kaiming_normal_(dense.weight, mode="fan_in", nonlinearity="relu")
    for w, t, fan_in in ((p["0.conv.w"], conv.weight, 144), (p["2.dense.w"], dense.weight, 4096)):
        t = t.detach().numpy()
        assert same_distribution(w, t) > P_MIN
        assert w.std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
        assert stats.normaltest(w.ravel()).pvalue > P_MIN  # untruncated normal
    assert not p["0.conv.b"].any() and not p["2.dense.b"].any()
    # a truncated normal of the same sd (Keras's HeNormal) is another distribution
    trunc = stats.truncnorm.rvs(-2, 2, size=p["2.dense.w"].size, random_state=3)
    trunc *= math.sqrt(2 / 4096) / trunc.std()
    assert same_distribution(p["2.dense.w"], trunc) < P_MIN
