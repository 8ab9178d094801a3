"""validate_layers: output shapes of good layer lists, one-line ConfigErrors for bad ones."""

import numpy as np
import pytest

from cnnvsdnn.engines import validate_layers
from cnnvsdnn.engines.numba import Adam, build_model, set_threads
from cnnvsdnn.errors import CnnvsdnnError, ConfigError, DataError

CONV = {"type": "conv", "filters": 3, "kernel": 3, "padding": 1, "stride": 1}
FLAT, OUT = {"type": "flatten"}, {"type": "dense", "units": 10}


def test_shapes_of_the_study_models():
    cnn = [CONV, {"type": "activation", "fn": "relu"}, FLAT, {"type": "dense", "units": 128},
           {"type": "activation", "fn": "elu", "alpha": 0.5}, OUT]
    assert validate_layers(cnn, (32, 32, 3)) == [
        (32, 32, 3), (32, 32, 3), (3072,), (128,), (128,), (10,)]
    deep = [{"type": "conv", "filters": 5, "kernel": 5, "padding": 2},
            {"type": "maxpool", "size": 2}, {**CONV, "kernel": 2, "padding": 0, "stride": 2},
            {"type": "maxpool", "size": 3, "stride": 1}, FLAT, OUT]
    assert validate_layers(deep, (28, 28, 1)) == [
        (28, 28, 5), (14, 14, 5), (7, 7, 3), (5, 5, 3), (75,), (10,)]


@pytest.mark.parametrize("layers, shape, words", [
    ([], (28, 28, 1), "non-empty list"),
    ([{"type": "pool"}, FLAT, OUT], (28, 28, 1), "layer 0: unknown type 'pool'"),
    ([{"filters": 3}, FLAT, OUT], (28, 28, 1), "layer 0: expected a dict with a 'type'"),
    ([{"type": "conv", "kernel": 3}, FLAT, OUT], (28, 28, 1), "missing key 'filters'"),
    ([{**CONV, "filter": 4}, FLAT, OUT], (28, 28, 1), "unknown key(s) filter"),
    ([{**CONV, "filters": 0}, FLAT, OUT], (28, 28, 1), "filters=0 must be an integer >= 1"),
    ([{**CONV, "kernel": 2.5}, FLAT, OUT], (28, 28, 1), "kernel=2.5 must be an integer"),
    ([{**CONV, "padding": 0, "stride": 2}, FLAT, OUT], (28, 28, 1), "not a whole number"),
    ([{**CONV, "kernel": 7, "padding": 0}, FLAT, OUT], (4, 4, 1), "not a whole number >= 1"),
    ([{"type": "maxpool", "size": 3}, FLAT, OUT], (28, 28, 1), "layer 0 (maxpool): geometry"),
    ([{"type": "activation", "fn": "tanh"}, FLAT, OUT], (28, 28, 1), "fn='tanh'"),
    ([{"type": "activation", "fn": "elu", "alpha": 0}, FLAT, OUT], (28, 28, 1), "alpha=0"),
    ([{"type": "dense", "units": 10}], (28, 28, 1), "put a {type: flatten} layer before it"),
    ([FLAT, CONV, OUT], (28, 28, 1), "layer 1 (conv) needs a 3-D"),
    ([FLAT, FLAT, OUT], (28, 28, 1), "layer 1 (flatten) needs a 3-D"),
    ([FLAT, {"type": "dense", "units": 12}], (28, 28, 1), "last layer must be"),
    ([FLAT, OUT, {"type": "activation", "fn": "relu"}], (28, 28, 1), "layer 2 (activation)"),
    ([FLAT, OUT], (28, 28), "must be (height, width, channels)"),
])
def test_bad_layer_lists_raise_one_line_config_errors(layers, shape, words):
    with pytest.raises(ConfigError) as info:
        validate_layers(layers, shape, 10)
    msg = str(info.value)
    assert words in msg and "\n" not in msg


def test_misuse_raises_project_errors():
    with pytest.raises(ConfigError, match="batch_size"):
        build_model([FLAT, OUT], (4, 4, 1), batch_size=0)
    model = build_model([FLAT, OUT], (4, 4, 1), 10, np.random.default_rng(0), batch_size=2)
    x = np.zeros((3, 4, 4, 1), np.float32)
    with pytest.raises(CnnvsdnnError, match="need 1..2"):
        model.loss_and_grad(x, np.zeros(3, int))
    with pytest.raises(DataError, match="outside 0..9"):
        model.loss_and_grad(x[:2], np.array([0, 10]))
    with pytest.raises(DataError, match="do not fit"):
        model.predict_proba(np.zeros((2, 5, 4, 1), np.uint8))
    with pytest.raises(CnnvsdnnError, match="batch indices"):
        model.gather(np.zeros((2, 4, 4, 1), np.uint8), np.array([2]))
    with pytest.raises(DataError, match="needs"):
        model.load_params(np.zeros(model.n_params + 1, np.float32))
    with pytest.raises(ConfigError, match="optimizer.beta2"):
        Adam(10, beta2=1.0)
    with pytest.raises(ConfigError, match="engine.threads"):
        set_threads(-1)
    with pytest.raises(ConfigError, match="blas threads"):
        set_threads(1, blas_threads=-2)
