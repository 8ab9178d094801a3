"""What a config asks the training loop to do: steps, batches, evaluations, initialisation,
optimiser, engine options (the one place that turns ``train.*``, ``optimizer.*`` and
``engine.*`` into the loop's plan)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from omegaconf import DictConfig

from ..engines import AdamSettings

# The study's Keras runs (its reference column): Keras's defaults -- Glorot-uniform weights,
# zero biases, keras.optimizers.Adam() (lr 1e-3, epsilon 1e-7, Keras's form), fit's batch size
# 32 with a reshuffle per epoch and a smaller last batch -- for 10 epochs (20 on SVHN), the
# development split evaluated after every epoch.
KERAS_STUDY_EPOCHS = {"svhn": 20}
KERAS_STUDY_DEFAULT_EPOCHS = 10
KERAS_STUDY_ADAM = AdamSettings(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7, form="keras")


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    eval_every: int
    wrap: bool  # the last partial batch of an epoch takes from the next epoch (BatchOrder)
    init: str  # layer_types.init_params scheme
    adam: AdamSettings
    engine_options: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # what metrics.json records of the schedule


def study_epochs(cfg: DictConfig) -> int:
    """engine.epochs, or the study's: 20 on SVHN, 10 on the others."""
    e = cfg.engine.get("epochs")
    return int(e) if e is not None else KERAS_STUDY_EPOCHS.get(cfg.dataset.name,
                                                                KERAS_STUDY_DEFAULT_EPOCHS)


def schedule(cfg: DictConfig, n_train: int) -> Schedule:
    """The plan of a run of ``cfg`` on a training split of ``n_train`` images."""
    t, o = cfg.train, cfg.optimizer
    adam = AdamSettings(lr=o.lr, beta1=o.beta1, beta2=o.beta2, eps=o.eps)
    if cfg.engine.name != "keras":
        return Schedule(t.steps, t.batch_size, t.eval_every, True, "he_normal", adam)
    if str(cfg.engine.protocol) == "ours":  # like for like with the numba engine
        return Schedule(t.steps, t.batch_size, t.eval_every, True, "he_normal", adam,
                        {"softmax_output": False},
                        {"protocol": "ours", "batch_size": t.batch_size})
    epochs, batch = study_epochs(cfg), int(cfg.engine.fit_batch_size)
    per_epoch = math.ceil(n_train / batch)
    return Schedule(epochs * per_epoch, batch, per_epoch, False, "glorot_uniform",
                    KERAS_STUDY_ADAM, {"softmax_output": True},
                    {"protocol": "study", "epochs": epochs, "batch_size": batch})
