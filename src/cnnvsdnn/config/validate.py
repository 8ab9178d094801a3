"""Reject config values of the right type that make no sense, before any data is loaded."""

from __future__ import annotations

import math
import os

from omegaconf import DictConfig, OmegaConf

from ..data import DATASETS, dataset_info
from ..data.custom import KINDS
from ..data.custom import options as dataset_options
from ..engines.layer_types import network
from ..errors import ConfigError
from .schema import default_of

ENGINES = ("numba", "keras")  # the engines a run may use (engines/ also holds bench peers)
KERAS_PROTOCOLS = ("study", "ours")


def validate(cfg: DictConfig) -> None:
    """Raise a one-line ConfigError for the first value that makes no sense."""
    if cfg.dataset.name not in (*DATASETS, *KINDS):
        raise ConfigError(
            f"unknown dataset {cfg.dataset.name!r}; choose one of {', '.join(DATASETS)}, "
            f"folder (dataset.path=DIR) or npz (dataset.path=FILE)"
        )
    dataset_options(cfg.dataset)  # the keys of dataset=folder|npz, before any data is read
    if cfg.engine.name not in ENGINES:
        raise ConfigError(f"unknown engine {cfg.engine.name!r}; choose one of {', '.join(ENGINES)}")
    if cfg.engine.name == "keras":
        _validate_keras(cfg)
    if cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed} must be >= 0 (a seed is a non-negative integer)")
    t, o = cfg.train, cfg.optimizer
    positive = ("train.steps", "train.batch_size", "train.eval_every", "train.dev_size",
                "train.eval_chunk", "train.checkpoint_every", "optimizer.lr", "optimizer.eps")
    for key in positive:
        value = OmegaConf.select(cfg, key)
        if not value > 0:
            example = cfg.dataset.steps if key == "train.steps" else default_of(key)
            raise ConfigError(f"{key}={value} must be positive; e.g. {key}={example}")
    for key in ("beta1", "beta2"):
        if not 0 <= o[key] < 1:
            raise ConfigError(f"optimizer.{key}={o[key]} must be in [0, 1); the default is "
                              f"{default_of(f'optimizer.{key}')}")
    if cfg.engine.threads < 0:
        raise ConfigError(f"engine.threads={cfg.engine.threads} must be >= 0 (0 = all cores)")
    if t.eval_every > t.steps:
        raise ConfigError(
            f"train.eval_every={t.eval_every} is larger than train.steps={t.steps}, so the "
            f"development set would never be evaluated; lower train.eval_every"
        )
    # a built-in set's info is a table entry; a folder's or .npz's comes from its data
    # (decoded into the cache the first time, so bad data stops the run here)
    info = dataset_info(cfg.dataset)
    if t.dev_size >= info.n_train:
        raise ConfigError(
            f"train.dev_size={t.dev_size} leaves no training images ({cfg.dataset.name} has "
            f"{info.n_train}); choose a smaller train.dev_size, e.g. "
            f"train.dev_size={max(1, info.n_train // 5)}"
        )
    if t.batch_size > info.n_train - t.dev_size:
        raise ConfigError(
            f"train.batch_size={t.batch_size} is larger than the training split "
            f"({info.n_train - t.dev_size} images); choose a smaller train.batch_size"
        )
    layers = OmegaConf.to_container(cfg.model.layers, resolve=True)
    if not layers:
        raise ConfigError(f"model {cfg.model.name!r} has no layers; see conf/model/*.yaml")
    net = network(layers, input_shape=tuple(info.shape), n_classes=info.n_classes)
    _check_memory(net, max(t.batch_size, cfg.engine.get("fit_batch_size") or 0), t.eval_chunk)


def _check_memory(net, batch_size: int, eval_chunk: int) -> None:
    """Refuse a model whose parameters, optimiser state and activations cannot fit in this
    machine's memory (numpy's MemoryError deep inside the engine otherwise)."""
    floats = 4 * net.n_params  # parameters, gradients, Adam's two moments
    floats += 3 * max(batch_size, eval_chunk) * sum(math.prod(s) for s in net.out_shapes)
    need = 4 * floats  # float32 bytes
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform: do not guess
        return
    if need > have:
        raise ConfigError(f"the model has {net.n_params:,} parameters; with batches of "
                          f"{batch_size} it needs about {need / 2**30:.1f} GiB, more than this "
                          f"machine's {have / 2**30:.1f} GiB; use fewer units or filters")


def _validate_keras(cfg: DictConfig) -> None:
    """engine=keras settings (checked without importing TensorFlow)."""
    e = cfg.engine
    protocol = str(e.get("protocol", "study"))
    if protocol not in KERAS_PROTOCOLS:
        raise ConfigError(f"engine.protocol={protocol!r} is not one of "
                          f"{', '.join(KERAS_PROTOCOLS)}")
    if e.get("epochs") is not None and not e.epochs > 0:
        raise ConfigError(f"engine.epochs={e.epochs} must be positive, or null for the study's "
                          f"(10; 20 on svhn)")
    if not e.get("fit_batch_size", 128) > 0:
        raise ConfigError(f"engine.fit_batch_size={e.fit_batch_size} must be positive; the "
                          f"study's code passed 128")
    if cfg.train.resume:
        raise ConfigError("engine=keras runs cannot be resumed (no checkpoints); rerun without "
                          "train.resume=true in a new hydra.run.dir")
