"""Config composition and validation, in-process (fast): every bad value fails before work."""

from __future__ import annotations

import pytest

from cnnvsdnn.config import compose_config
from cnnvsdnn.errors import ConfigError


def test_defaults_are_the_study_main_job():
    cfg = compose_config([])
    assert cfg.dataset.name == "mnist" and cfg.model.name == "cnn"
    assert cfg.train.steps == 2000 and cfg.train.batch_size == 128
    assert cfg.train.eval_every == 100 and cfg.train.dev_size == 5000
    assert cfg.optimizer.lr == pytest.approx(1e-3) and cfg.optimizer.eps == pytest.approx(1e-8)
    assert cfg.engine.name == "numba" and cfg.data.verify is True


@pytest.mark.parametrize("dataset,steps", [("mnist", 2000), ("fashion_mnist", 2000),
                                           ("cifar10", 10000), ("svhn", 20000)])
def test_steps_follow_the_dataset(dataset, steps):
    assert compose_config([f"dataset={dataset}"]).train.steps == steps


def test_command_line_steps_win_over_dataset_default():
    assert compose_config(["dataset=svhn", "train.steps=7", "train.eval_every=7"]).train.steps == 7


def test_model_layers_come_from_yaml():
    dnn = compose_config(["model=dnn"]).model.layers
    assert [lay["units"] for lay in dnn if lay["type"] == "dense"] == [128, 128, 64, 10]
    cnn = compose_config(["model=cnn"]).model.layers
    assert cnn[0]["type"] == "conv" and cnn[0]["filters"] == 3 and cnn[0]["kernel"] == 3


@pytest.mark.parametrize("override,words", [
    ("train.steps=-1", "train.steps=-1 must be positive"),
    ("train.steps=0", "train.steps=0 must be positive"),
    ("train.batch_size=abc", "train.batch_size"),
    ("train.batch_size=0", "train.batch_size=0 must be positive"),
    ("model=foo", "unknown model 'foo'"),
    ("dataset=imagenet", "unknown dataset 'imagenet'"),
    ("optimizer=sgd", "unknown optimizer 'sgd'"),
    ("engine=torch", "unknown engine 'torch'"),
    ("optimizer.lr=0", "optimizer.lr=0.0 must be positive"),
    ("optimizer.lr=-1e-3", "must be positive"),
    ("optimizer.beta1=1.0", "optimizer.beta1=1.0 must be in [0, 1)"),
    ("train.dev_split=middle", "train.dev_split"),
    ("train.dev_size=60000", "leaves no training images"),
    ("train.batch_size=60000", "larger than the training split"),
    ("train.eval_every=5000", "larger than train.steps"),
    ("train.nosuchkey=1", "unknown config key 'train.nosuchkey'"),
    ("engine.threads=-2", "engine.threads=-2"),
])
def test_bad_values_fail_with_one_line(override, words):
    with pytest.raises(ConfigError) as info:
        compose_config([override])
    msg = str(info.value)
    assert words in msg
    assert "\n" not in msg


def test_conv_geometry_that_does_not_divide_is_rejected():
    bad = ("+model.layers=[{type: conv, filters: 2, kernel: 3, padding: 0, stride: 2},"
           "{type: flatten}, {type: dense, units: 10}]")
    with pytest.raises(ConfigError, match="not"):
        compose_config(["model.layers=[]", bad.replace("+model.layers", "model.layers")])
