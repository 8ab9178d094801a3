"""What a config asks the training loop to do: steps, batches, evaluations, initialisation,
optimiser, engine options (the one place that turns ``train.*``, ``optimizer.*``,
``model.init`` and ``engine.*`` into the loop's plan). The protocol's switches that act on the
loop act here: ``train.last_batch`` (how an epoch's last batch is filled), ``optimizer.eps_sign``
(Adam's ε sign) and ``model.init``; the data's (``train.dev_split``,
``data.cifar10_decode``) act in ``data.load_splits``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from omegaconf import DictConfig

from ..engines import AdamSettings

# The study's Keras runs (its reference column): Keras's defaults -- Glorot-uniform weights,
# zero biases, keras.optimizers.Adam() (lr 1e-3, epsilon 1e-7, Keras's form), fit's reshuffle
# per epoch and smaller last batch -- with the batch size its code passed to fit
# (engine.fit_batch_size, 128), for 10 epochs (20 on SVHN), the development split evaluated
# after every epoch.
KERAS_STUDY_EPOCHS = {"svhn": 20}
KERAS_STUDY_DEFAULT_EPOCHS = 10
KERAS_STUDY_ADAM = AdamSettings(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7, form="keras")


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    eval_every: int
    last_batch: str  # how an epoch's last partial batch is filled (batches.LAST_BATCH)
    init: str  # layer_types.init_params scheme
    adam: AdamSettings
    engine_options: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # what metrics.json records of the schedule


def study_epochs(cfg: DictConfig) -> int:
    """engine.epochs, or the study's: 20 on SVHN, 10 on the others."""
    e = cfg.engine.get("epochs")
    return int(e) if e is not None else KERAS_STUDY_EPOCHS.get(cfg.dataset.name,
                                                                KERAS_STUDY_DEFAULT_EPOCHS)


def _value(v) -> str:
    return v.value if hasattr(v, "value") else str(v)


def init_scheme(cfg: DictConfig) -> str:
    """``model.init``, or its default: he_normal (the study's), glorot_uniform under Keras's
    own fit (``engine=keras engine.protocol=study``: Keras's default initialiser)."""
    init = cfg.model.get("init")
    if init is not None:
        return _value(init)
    keras_fit = cfg.engine.name == "keras" and str(cfg.engine.protocol) == "study"
    return "glorot_uniform" if keras_fit else "he_normal"


def schedule(cfg: DictConfig, n_train: int) -> Schedule:
    """The plan of a run of ``cfg`` on a training split of ``n_train`` images."""
    t, o = cfg.train, cfg.optimizer
    adam = AdamSettings(lr=o.lr, beta1=o.beta1, beta2=o.beta2, eps=o.eps,
                        eps_sign=_value(o.get("eps_sign", "plus")))
    last, init = _value(t.get("last_batch", "next_epoch")), init_scheme(cfg)
    if cfg.engine.name != "keras":
        return Schedule(t.steps, t.batch_size, t.eval_every, last, init, adam)
    if str(cfg.engine.protocol) == "ours":  # like for like with the numba engine
        return Schedule(t.steps, t.batch_size, t.eval_every, last, init, adam,
                        {"softmax_output": False},
                        {"protocol": "ours", "batch_size": t.batch_size})
    epochs, batch = study_epochs(cfg), int(cfg.engine.fit_batch_size)
    per_epoch = math.ceil(n_train / batch)
    return Schedule(epochs * per_epoch, batch, per_epoch, "smaller", init,
                    KERAS_STUDY_ADAM, {"softmax_output": True},
                    {"protocol": "study", "epochs": epochs, "batch_size": batch})
