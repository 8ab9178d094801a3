"""The config schema: every key, its type, its default, and whether it changes a run's numbers.

Hydra composes ``conf/config.yaml`` with one option of each group (``dataset/``, ``model/``,
``optimizer/``, ``engine/``) and the command-line overrides into :class:`Config`; OmegaConf
rejects a wrong type (``train.batch_size=abc``) or an unknown key while composing. The defaults
live here only (the group YAML files set what differs per option).

Each key says what changing it does to a run (``affects``):

- ``result``: other numbers (the default);
- ``rounding``: the same computation in another order, so the last bits may differ (thread
  counts, evaluation chunks): a finished run is reused across them, not resumed;
- ``nothing``: how the run is shown or stored, not what it computes (progress, checkpoints).
"""

from __future__ import annotations

import enum
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import II


def setting(default=MISSING, *, affects: str = "result", factory=MISSING):
    """A dataclass field with its ``affects`` level (see the module docstring)."""
    assert affects in ("result", "rounding", "nothing")
    return field(default=default, default_factory=factory, metadata={"affects": affects})


class DevSplit(enum.Enum):
    random = "random"  # drawn at random with the run's seed (what the study describes)
    last = "last"  # the last dev_size images in file order (what the study's code did)


@dataclass
class DatasetConfig:
    name: str = "mnist"
    steps: int = 2000  # the study's number of training steps for this dataset
    # dataset=folder|npz only (conf/dataset/folder.yaml explains them). null elsewhere, so a
    # built-in set's resolved config compares equal to one written before these keys existed.
    path: str | None = None  # the folder of class subfolders, or the .npz file
    size: Any = None  # folder: resize every image to N×N (N) or [H, W]; null: keep the size
    test_fraction: float | None = None  # share of each class drawn for testing if no test split


@dataclass
class ModelConfig:
    name: str = "cnn"
    # A list of layers, e.g. {type: conv, filters: 3, kernel: 3, padding: 1, stride: 1};
    # checked layer by layer by cnnvsdnn.engines.layer_types.
    layers: list[Any] = setting(factory=list)


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


@dataclass
class EngineConfig:
    name: str = "numba"
    # the engine's threads (TensorFlow's for keras); 0 means all cores
    threads: int = setting(2, affects="rounding")
    # engine=keras only (conf/engine/keras.yaml explains them):
    protocol: str = "study"  # study | ours
    epochs: int | None = None
    fit_batch_size: int = 32


@dataclass
class TrainConfig:
    steps: int = II("dataset.steps")  # the study's steps for the dataset
    batch_size: int = 128
    eval_every: int = 100
    dev_size: int = 5000
    dev_split: DevSplit = DevSplit.random
    # images per evaluation chunk (memory); BLAS may block a chunk's sums differently
    eval_chunk: int = setting(1000, affects="rounding")
    resume: bool = setting(False, affects="nothing")  # continue the run in hydra.run.dir
    checkpoint_every: int = setting(500, affects="nothing")
    save_params: bool = setting(True, affects="nothing")


@dataclass
class DataConfig:
    # false accepts user-made copies whose checksums differ, with a warning
    verify: bool = setting(True, affects="nothing")
    # base URL tried first, serving the official file names
    mirror: str | None = setting(None, affects="nothing")


@dataclass
class Config:
    dataset: DatasetConfig = setting(factory=DatasetConfig)
    model: ModelConfig = setting(factory=ModelConfig)
    optimizer: OptimizerConfig = setting(factory=OptimizerConfig)
    engine: EngineConfig = setting(factory=EngineConfig)
    train: TrainConfig = setting(factory=TrainConfig)
    data: DataConfig = setting(factory=DataConfig)
    seed: int = 0
    progress: bool = setting(True, affects="nothing")  # a bar on a terminal, else plain lines


def _walk(cls, prefix=""):
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        sub = f.default_factory if f.default_factory is not MISSING else None
        if is_dataclass(sub):
            yield from _walk(sub, key + ".")
        else:
            yield key, f


def keys_affecting(*levels: str) -> tuple[str, ...]:
    """The flat keys (``train.eval_chunk``) whose ``affects`` level is one of ``levels``."""
    return tuple(k for k, f in _walk(Config) if f.metadata.get("affects", "result") in levels)


def default_of(key: str):
    """The schema's default of a flat key, e.g. ``default_of("train.batch_size") == 128``."""
    for k, f in _walk(Config):
        if k == key:
            return f.default
    raise KeyError(key)


# Keys a run may be resumed across; keys a finished run may be reused across.
NOT_A_RESULT = keys_affecting("nothing")
SAME_RESULT = keys_affecting("nothing", "rounding")
