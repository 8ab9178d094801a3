"""Config schema (dataclasses), where the configs live, and validation before any work.

Hydra composes ``conf/config.yaml`` with one option of each group (``dataset/``, ``model/``,
``optimizer/``, ``engine/``) and the command-line overrides. The dataclasses below are the
schema: OmegaConf rejects a wrong type (``train.batch_size=abc``) or an unknown key while
composing, and :func:`validate` rejects values of the right type that make no sense
(``train.steps=-1``) before any data is loaded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from cnnvsdnn.errors import ConfigError


def conf_dir() -> Path:
    """The Hydra config directory: inside the installed wheel, else the checkout's ``conf/``."""
    packaged = Path(__file__).resolve().parent / "conf"
    if (packaged / "config.yaml").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if (checkout / "config.yaml").is_file():
        return checkout
    raise ConfigError(
        f"cannot find the configs (looked in {packaged} and {checkout}); reinstall cnnvsdnn"
    )


class DevSplit(enum.Enum):
    random = "random"  # drawn at random with the run's seed (what the study describes)
    last = "last"  # the last dev_size images in file order (what the study's code did)


@dataclass
class DatasetConfig:
    name: str = "mnist"
    steps: int = 2000  # the study's number of training steps for this dataset


@dataclass
class ModelConfig:
    name: str = "cnn"
    # A list of layers, e.g. {type: conv, filters: 3, kernel: 3, padding: 1, stride: 1};
    # checked layer by layer by cnnvsdnn.engine.validate_layers.
    layers: list[Any] = field(default_factory=list)


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
    threads: int = 2  # the engine's threads (TensorFlow's for keras); 0 means all cores
    # engine=keras only (conf/engine/keras.yaml explains them):
    protocol: str = "study"  # study | ours
    epochs: int | None = None
    fit_batch_size: int = 32


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 128
    eval_every: int = 100
    dev_size: int = 5000
    dev_split: DevSplit = DevSplit.random
    eval_chunk: int = 1000  # images per evaluation chunk (memory bound, not a result)
    resume: bool = False  # continue the run in hydra.run.dir from its checkpoint
    checkpoint_every: int = 500
    save_params: bool = True


@dataclass
class DataConfig:
    verify: bool = True  # false accepts user-made copies whose checksums differ, with a warning
    mirror: str | None = None  # base URL tried first, serving the official file names


@dataclass
class Config:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    progress: bool = True  # a progress bar on a terminal, plain lines otherwise


def register_schemas() -> None:
    """Make the schemas known to Hydra (``defaults: [schema, ...]`` in conf/config.yaml)."""
    # One schema for the whole tree: each group's YAML is merged into its typed node.
    ConfigStore.instance().store(name="schema", node=Config)


ENGINES = ("numba", "keras")


def validate(cfg: DictConfig) -> None:
    """Reject values that type-check but make no sense, before any work. Raises ConfigError."""
    from cnnvsdnn.data import DATASETS
    from cnnvsdnn.engine import validate_layers

    if cfg.dataset.name not in DATASETS:
        raise ConfigError(
            f"unknown dataset {cfg.dataset.name!r}; choose one of {', '.join(DATASETS)}"
        )
    if cfg.engine.name not in ENGINES:
        raise ConfigError(f"unknown engine {cfg.engine.name!r}; choose one of {', '.join(ENGINES)}")
    if cfg.engine.name == "keras":  # cheap: no TensorFlow import
        from cnnvsdnn.keras_engine import check_config

        check_config(cfg)
    t, o = cfg.train, cfg.optimizer
    positive = {
        "train.steps": t.steps,
        "train.batch_size": t.batch_size,
        "train.eval_every": t.eval_every,
        "train.dev_size": t.dev_size,
        "train.eval_chunk": t.eval_chunk,
        "train.checkpoint_every": t.checkpoint_every,
        "optimizer.lr": o.lr,
        "optimizer.eps": o.eps,
    }
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key}={value} must be positive; e.g. {key}={_example(key)}")
    for key in ("beta1", "beta2"):
        if not 0 <= o[key] < 1:
            raise ConfigError(f"optimizer.{key}={o[key]} must be in [0, 1); the default is "
                              f"{OptimizerConfig.__dataclass_fields__[key].default}")
    if cfg.engine.threads < 0:
        raise ConfigError(f"engine.threads={cfg.engine.threads} must be >= 0 (0 = all cores)")
    if t.eval_every > t.steps:
        raise ConfigError(
            f"train.eval_every={t.eval_every} is larger than train.steps={t.steps}, so the "
            f"development set would never be evaluated; lower train.eval_every"
        )
    info = DATASETS[cfg.dataset.name]
    if t.dev_size >= info.n_train:
        raise ConfigError(
            f"train.dev_size={t.dev_size} leaves no training images ({cfg.dataset.name} has "
            f"{info.n_train}); choose a smaller train.dev_size"
        )
    if t.batch_size > info.n_train - t.dev_size:
        raise ConfigError(
            f"train.batch_size={t.batch_size} is larger than the training split "
            f"({info.n_train - t.dev_size} images); choose a smaller train.batch_size"
        )
    layers = OmegaConf.to_container(cfg.model.layers, resolve=True)
    if not layers:
        raise ConfigError(f"model {cfg.model.name!r} has no layers; see conf/model/*.yaml")
    validate_layers(layers, input_shape=tuple(info.shape), n_classes=info.n_classes)


# Keys that do not change a run's numbers: a run may be resumed or reused across them.
NOT_A_RESULT = ("progress", "train.resume")


def flat_config(d: dict, prefix: str = "") -> dict:
    """``{"train": {"steps": 5}}`` -> ``{"train.steps": 5}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(saved_yaml: str, current_yaml: str, ignore=NOT_A_RESULT) -> list[str]:
    """The keys whose values differ between two resolved configs (as written to config.yaml)."""
    import yaml

    a = flat_config(yaml.safe_load(saved_yaml) or {})
    b = flat_config(yaml.safe_load(current_yaml) or {})
    return sorted(k for k in a.keys() | b.keys() if k not in ignore and a.get(k) != b.get(k))


def _example(key: str) -> Any:
    defaults = {"train.steps": 2000, "train.batch_size": 128, "train.eval_every": 100,
                "train.dev_size": 5000, "train.eval_chunk": 1000, "train.checkpoint_every": 500,
                "optimizer.lr": 1e-3, "optimizer.eps": 1e-8}
    return defaults[key]
