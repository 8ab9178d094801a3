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

A key may also say when it is used at all (``applies``: a test on the flat config): e.g.
``data.cifar10_decode`` only on CIFAR-10, ``engine.fit_batch_size`` only with ``engine=keras``.
Two runs that differ only in keys their configs do not use computed the same numbers.

The ``protocol`` group (``conf/protocol/``) sets the keys in which the study's code differed
from the corrected protocol (the default): ``protocol=study`` sets all of them, and each can
also be set alone (``train.dev_split=last``). docs/method.md section 8 lists them.
"""

from __future__ import annotations

import enum
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import II


def setting(default=MISSING, *, affects: str = "result", factory=MISSING, applies=None):
    """A dataclass field with its ``affects`` level and, if it is not used by every run, the
    test ``applies(flat_config) -> bool`` of the runs that use it (see the module docstring)."""
    assert affects in ("result", "rounding", "nothing")
    meta = {"affects": affects} if applies is None else {"affects": affects, "applies": applies}
    return field(default=default, default_factory=factory, metadata=meta)


def _keras(c: dict) -> bool:
    return c.get("engine.name") == "keras"


def _own_batches_and_adam(c: dict) -> bool:
    """Runs that draw batches with BatchOrder and update by the textbook/study Adam: all but
    Keras's ``fit`` (``engine=keras engine.protocol=study``), which has its own."""
    return not (_keras(c) and c.get("engine.protocol", "study") == "study")


class DevSplit(enum.Enum):
    random = "random"  # drawn at random with the run's seed (what the study describes)
    last = "last"  # the last dev_size images in file order (what the study's code did)


class LastBatch(enum.Enum):
    next_epoch = "next_epoch"  # the last partial batch is filled from the next epoch's order
    same_epoch = "same_epoch"  # ... from the start of the same epoch's order (the study's code)


class EpsSign(enum.Enum):
    plus = "plus"  # theta -= lr * mhat / (sqrt(vhat) + eps) (Adam; the study's report)
    minus = "minus"  # theta -= lr * mhat / (sqrt(vhat) - eps) (the study's code)


class Cifar10Decode(enum.Enum):
    planar = "planar"  # each row is the R, G, B planes (the official layout)
    study = "study"  # each row reshaped (32, 32, 3), as the study's code did


class Init(enum.Enum):
    he_normal = "he_normal"  # N(0, sqrt(2/fan_in)), biases 0 (the study's eq. 37-39)
    glorot_uniform = "glorot_uniform"  # U(±sqrt(6/(fan_in+fan_out))), biases 0 (Keras's)
    torch = "torch"  # w and b ~ U(±1/sqrt(fan_in)) (PyTorch's Linear and Conv2d)


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
    # null: he_normal, except Keras's own default (glorot_uniform) under engine.protocol=study
    init: Init | None = None


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    eps_sign: EpsSign = setting(EpsSign.plus, applies=_own_batches_and_adam)


@dataclass
class EngineConfig:
    name: str = "numba"
    # the engine's threads (TensorFlow's for keras); 0 means all cores
    threads: int = setting(2, affects="rounding")
    # engine=keras only (conf/engine/keras.yaml explains them):
    protocol: str = setting("study", applies=_keras)  # study | ours
    epochs: int | None = setting(None, applies=_keras)
    # the study's conf["batch_size"], which its model.fit(batch_size=...) was given
    fit_batch_size: int = setting(128, applies=_keras)


@dataclass
class TrainConfig:
    steps: int = II("dataset.steps")  # the study's steps for the dataset
    batch_size: int = 128
    eval_every: int = 100
    dev_size: int = 5000
    dev_split: DevSplit = DevSplit.random
    last_batch: LastBatch = setting(LastBatch.next_epoch, applies=_own_batches_and_adam)
    # images per evaluation chunk (memory); BLAS may block a chunk's sums differently
    eval_chunk: int = setting(1000, affects="rounding")
    resume: bool = setting(False, affects="nothing")  # continue the run in hydra.run.dir
    checkpoint_every: int = setting(500, affects="nothing")
    save_params: bool = setting(True, affects="nothing")
    # the run directory's four figures (about 2-4 s a run; `report` draws its own)
    figures: bool = setting(True, affects="nothing")


@dataclass
class DataConfig:
    # false accepts user-made copies whose checksums differ, with a warning
    verify: bool = setting(True, affects="nothing")
    # base URL tried first, serving the official file names
    mirror: str | None = setting(None, affects="nothing")
    cifar10_decode: Cifar10Decode = setting(Cifar10Decode.planar,
                                            applies=lambda c: c.get("dataset.name") == "cifar10")


@dataclass
class ProtocolConfig:
    # corrected | study (conf/protocol/): a name only; the keys it sets are what count
    name: str = setting("corrected", affects="nothing")


@dataclass
class Config:
    dataset: DatasetConfig = setting(factory=DatasetConfig)
    model: ModelConfig = setting(factory=ModelConfig)
    optimizer: OptimizerConfig = setting(factory=OptimizerConfig)
    engine: EngineConfig = setting(factory=EngineConfig)
    train: TrainConfig = setting(factory=TrainConfig)
    data: DataConfig = setting(factory=DataConfig)
    protocol: ProtocolConfig = setting(factory=ProtocolConfig)
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


def plain(value):
    """A config value as config.yaml holds it (an enum as its name)."""
    return value.value if isinstance(value, enum.Enum) else value


def with_defaults(flat: dict) -> dict:
    """A flat saved config with every schema key it lacks set to the schema's default: a run
    made before a key existed computed what that key's default computes now (a key is only
    ever added with the old behaviour as its default). Keys whose default is an interpolation
    or required are left out."""
    out = dict(flat)
    for k, f in _walk(Config):
        if k not in out and f.default is not MISSING and not str(f.default).startswith("${"):
            out[k] = plain(f.default)
    return out


def unused_keys(flat: dict) -> set[str]:
    """The keys a run of this (flat, complete) config does not use (``applies`` is false)."""
    return {k for k, f in _walk(Config)
            if "applies" in f.metadata and not f.metadata["applies"](flat)}


# Keys a run may be resumed across; keys a finished run may be reused across.
NOT_A_RESULT = keys_affecting("nothing")
SAME_RESULT = keys_affecting("nothing", "rounding")
