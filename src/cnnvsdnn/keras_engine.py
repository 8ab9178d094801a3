"""The reference engine (``engine=keras``): the same layer list trained in Keras 3 (TensorFlow).

The study checked its from-scratch CNN against a structurally equal Keras model and printed it
as the third column of its tables (SPEC section 8). This module builds that model from our
layer list and trains it with one of two protocols (``engine.protocol``):

- ``study``: what the study did -- Keras's defaults (Glorot-uniform weights, zero biases,
  ``keras.optimizers.Adam()`` with lr 1e-3 and epsilon 1e-7, ``fit``'s batch size 32 and
  per-epoch shuffle), 10 epochs (20 on SVHN), the development split as ``validation_data``.
  ``log.h5`` gets ``train/*`` every step and ``dev/*`` at the end of every epoch.
- ``ours``: like for like with the numba engine -- the very initial weights the numba engine
  draws for the seed (copied over), the same batches (``train.BatchOrder``), ``train.steps``
  steps and Adam exactly as SPEC section 4 (``TextbookAdam`` below); ``dev/*`` every
  ``train.eval_every`` steps.

Either way the run directory holds the files of a numba run (SPEC section 9), with
``"engine": "keras"`` and ``"protocol"`` in ``metrics.json`` and the parameters in ``params.npz``
in the numba engine's layout, so ``report``, ``score`` and ``summarize`` need not know.

Parameter layouts: ours conv ``w`` (F,C,K,K), Keras ``kernel`` (K,K,C,F); dense ``w`` (in,out)
in both; both flatten NHWC activations in (H,W,C) order, so dense weights after a flatten need
no permutation. TensorFlow is imported on first use only (``import cnnvsdnn.keras_engine`` and
:func:`check_config` are cheap).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from cnnvsdnn.errors import CnnvsdnnError, ConfigError

PROTOCOLS = ("study", "ours")
STUDY_EPOCHS = {"svhn": 20}  # the study's epochs per dataset; 10 for the others
STUDY_DEFAULT_EPOCHS = 10
# Set before TensorFlow loads (a user's own setting wins): the TF backend, no C++ log lines,
# and oneDNN off -- with it on, TensorFlow prints a notice on stderr that no log level silences,
# and its results depend on the thread count. TF_ENABLE_ONEDNN_OPTS=1 makes conv steps ~1.7x
# faster (same cross-check tolerances).
_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow"}
_K = None  # the loaded keras module and our Keras classes (see _keras)


# ------------------------------------------------------------------------------ loading keras
class _Keras:
    """keras, tensorflow and the two small Keras classes we need, created on first use."""

    def __init__(self):
        for k, v in _ENV.items():
            os.environ.setdefault(k, v)
        try:
            import keras
            import tensorflow as tf
        except ImportError as ex:
            raise ConfigError(f"engine=keras needs Keras 3 with TensorFlow ({ex}); install the "
                              f"optional extra: pip install 'cnnvsdnn[reference]'") from None
        if not keras.__version__.startswith("3.") or keras.backend.backend() != "tensorflow":
            raise ConfigError(f"engine=keras needs Keras 3 on the TensorFlow backend, found keras "
                              f"{keras.__version__} on {keras.backend.backend()!r}; unset "
                              f"KERAS_BACKEND or reinstall with pip install 'cnnvsdnn[reference]'")
        self.keras, self.tf = keras, tf
        ops = keras.ops

        class TextbookAdam(keras.optimizers.Adam):
            """Adam exactly as SPEC section 4 (and the numba engine): eps is added to
            sqrt(v_hat). Keras's own Adam computes ``theta -= alpha m / (sqrt(v) + eps)`` with
            ``alpha = lr sqrt(1-b2^t)/(1-b1^t)``: its eps stands for eps*sqrt(1-b2^t) of the
            textbook form, a different optimiser whenever sqrt(v_hat) is near eps."""

            def update_step(self, gradient, variable, learning_rate):
                dt = variable.dtype
                lr, g = ops.cast(learning_rate, dt), ops.cast(gradient, dt)
                t = ops.cast(self.iterations + 1, dt)
                b1, b2 = ops.cast(self.beta_1, dt), ops.cast(self.beta_2, dt)
                m = self._momentums[self._get_variable_index(variable)]
                v = self._velocities[self._get_variable_index(variable)]
                self.assign(m, b1 * m + (1 - b1) * g)
                self.assign(v, b2 * v + (1 - b2) * ops.square(g))
                m_hat = m / (1 - ops.power(b1, t))
                v_hat = v / (1 - ops.power(b2, t))
                self.assign_sub(variable, lr * m_hat / (ops.sqrt(v_hat) + self.epsilon))

        class LastBatch(keras.metrics.Metric):
            """The value of ``fn`` on the last batch (not a running mean), so ``fit`` can log
            every step's own cost and accuracy as the numba engine does."""

            def __init__(self, fn, name):
                super().__init__(name=name)
                self.fn = fn
                self.value = self.add_variable(shape=(), initializer="zeros", name="value")

            def update_state(self, y_true, y_pred, sample_weight=None):
                self.value.assign(ops.cast(ops.mean(self.fn(y_true, y_pred)), self.value.dtype))

            def result(self):
                return ops.convert_to_tensor(self.value)

        self.TextbookAdam, self.LastBatch = TextbookAdam, LastBatch


def load_keras() -> _Keras:
    """Import Keras/TensorFlow once (quietly); ConfigError if the extra is not installed."""
    global _K
    if _K is None:
        _K = _Keras()
    return _K


# ------------------------------------------------------------------------------ the model
def build_keras_model(layers: list[dict], input_shape: tuple, n_classes: int,
                      init: str = "glorot_uniform", softmax: bool = True):
    """The Keras model of our layer list. ``softmax=False`` ends in the logits (for a loss
    ``from_logits``); ``init`` names the Keras initializer of every kernel (biases are zero).

    Padding Z is explicit zero padding: ``ZeroPadding2D(Z)`` then a ``valid`` Conv2D.
    """
    from cnnvsdnn.engine.spec import normalize_layers

    specs, _ = normalize_layers(layers, input_shape, n_classes)  # defaults filled in, checked
    k = load_keras().keras
    L = k.layers
    out = [k.Input(shape=tuple(input_shape))]
    for i, spec in enumerate(specs):
        t = spec["type"]
        if t == "conv":
            if spec["padding"]:
                out.append(L.ZeroPadding2D(spec["padding"], name=f"pad{i}"))
            out.append(L.Conv2D(spec["filters"], spec["kernel"], strides=spec["stride"],
                                padding="valid", kernel_initializer=init, name=f"conv{i}"))
        elif t == "maxpool":
            out.append(L.MaxPooling2D(spec["size"], strides=spec["stride"], padding="valid",
                                      name=f"maxpool{i}"))
        elif t == "dense":
            out.append(L.Dense(spec["units"], kernel_initializer=init, name=f"dense{i}"))
        elif t == "activation" and spec["fn"] == "elu":
            out.append(L.ELU(alpha=spec["alpha"], name=f"elu{i}"))
        elif t == "activation":
            out.append(L.Activation(spec["fn"], name=f"{spec['fn']}{i}"))
        else:  # flatten (normalize_layers accepts no other type)
            out.append(L.Flatten(name=f"flatten{i}"))
    if softmax:
        out.append(L.Activation("softmax", name="softmax"))
    return k.Sequential(out, name="reference")


def to_keras_weights(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Our per-layer arrays (w, b of each layer in order) in Keras's layout: conv w (F,C,K,K)
    becomes the kernel (K,K,C,F); dense (in,out) and biases are the same."""
    return [a.transpose(2, 3, 1, 0) if a.ndim == 4 else a for a in arrays]


def from_keras_weights(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The inverse of :func:`to_keras_weights`."""
    return [a.transpose(3, 2, 0, 1) if a.ndim == 4 else a for a in arrays]


def copy_params_to_keras(np_model, kmodel) -> None:
    """Give the Keras model the numba model's current parameters."""
    ours = list(np_model.layer_params().values())
    kvars = kmodel.trainable_weights
    if len(ours) != len(kvars):
        raise CnnvsdnnError(f"internal: {len(ours)} numba parameter arrays but {len(kvars)} "
                            f"Keras weights; the two model builders disagree")
    for var, a in zip(kvars, to_keras_weights(ours), strict=True):
        if tuple(var.shape) != a.shape:
            raise CnnvsdnnError(f"internal: Keras weight {var.path} has shape {tuple(var.shape)},"
                                f" the numba engine's {a.shape}")
        var.assign(np.ascontiguousarray(a, dtype=np.float32))


def keras_layer_params(np_model, kmodel) -> dict[str, np.ndarray]:
    """The Keras model's parameters named and laid out as ``np_model.layer_params()``."""
    names = list(np_model.layer_params())
    return dict(zip(names, from_keras_weights([v.numpy() for v in kmodel.trainable_weights]),
                    strict=True))


_LUT = (np.arange(256) / 255).astype(np.float32)  # uint8 -> [0,1], as the numba engine scales


def to_float(X: np.ndarray) -> np.ndarray:
    """uint8 images to float32 in [0, 1] (x/255, the numba engine's rounding)."""
    return _LUT[X]


def predict_proba(kmodel, X: np.ndarray, chunk: int = 1000, logits: bool = False) -> np.ndarray:
    """Class probabilities (N,K) float32 of uint8 images, ``chunk`` images at a time."""
    k = load_keras().keras
    out = []
    for s in range(0, len(X), chunk):
        y = kmodel(to_float(X[s:s + chunk]), training=False)
        out.append((k.ops.softmax(y) if logits else y).numpy().astype(np.float32, copy=False))
    return np.concatenate(out) if out else np.zeros((0, kmodel.output_shape[-1]), np.float32)


# ------------------------------------------------------------------------------ config
def check_config(cfg: DictConfig) -> None:
    """Reject engine=keras settings that make no sense, without importing TensorFlow."""
    e = cfg.engine
    protocol = str(e.get("protocol", "study"))
    if protocol not in PROTOCOLS:
        raise ConfigError(f"engine.protocol={protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if e.get("epochs") is not None and not e.epochs > 0:
        raise ConfigError(f"engine.epochs={e.epochs} must be positive, or null for the study's "
                          f"(10; 20 on svhn)")
    if not e.get("fit_batch_size", 32) > 0:
        raise ConfigError(f"engine.fit_batch_size={e.fit_batch_size} must be positive; the "
                          f"study used Keras's default, 32")
    if cfg.train.resume:
        raise ConfigError("engine=keras runs cannot be resumed (no checkpoints); rerun without "
                          "train.resume=true in a new hydra.run.dir")


def study_epochs(cfg: DictConfig) -> int:
    """engine.epochs, or the study's: 20 on SVHN, 10 on the others."""
    e = cfg.engine.get("epochs")
    return int(e) if e is not None else STUDY_EPOCHS.get(cfg.dataset.name, STUDY_DEFAULT_EPOCHS)


def _set_threads(tf, threads: int) -> None:
    try:  # only possible before TensorFlow's first op; later calls keep the first setting
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2) if threads else 0)
    except RuntimeError:
        pass


# ------------------------------------------------------------------------------ training
def train_keras(cfg: DictConfig, run_dir: Path) -> float:
    """Train ``cfg.model`` on ``cfg.dataset`` in Keras and write the run directory (the files
    of :func:`cnnvsdnn.train.train`). Returns the development accuracy."""
    from cnnvsdnn.engine import build_model
    from cnnvsdnn.runlog import RunLog
    from cnnvsdnn.train import LOG, finish_run, load_splits, prepare_run_dir

    started = time.perf_counter()
    config_yaml = prepare_run_dir(cfg, run_dir)  # validates, check_config included
    run_dir = Path(run_dir)
    t, protocol = cfg.train, str(cfg.engine.protocol)
    K = load_keras()
    from cnnvsdnn.parallel import effective_threads

    threads = effective_threads(cfg)  # this job's share of the CPUs in a parallel sweep
    _set_threads(K.tf, threads)
    K.keras.utils.set_random_seed(cfg.seed)  # Glorot init and fit's shuffling (study protocol)
    K.tf.config.experimental.enable_op_determinism()

    # --- data: the same splits as the numba engine
    data = load_splits(cfg)
    shape, n_classes = tuple(data.info.shape), data.info.n_classes
    layers = OmegaConf.to_container(cfg.model.layers, resolve=True)
    # the numba model names and lays out the saved parameters (and gives "ours" its init)
    init_seq, order_seq = np.random.SeedSequence(cfg.seed).spawn(2)
    np_model = build_model(layers, input_shape=shape, n_classes=n_classes,
                           rng=np.random.default_rng(init_seq), batch_size=t.batch_size)

    title = f"{cfg.dataset.name} {cfg.model.name} seed {cfg.seed} (keras, {protocol})"
    loop_started = time.perf_counter()
    with RunLog(run_dir / LOG, config_yaml) as log:
        if protocol == "study":
            kmodel, logits, info = _fit_study(cfg, K, layers, shape, n_classes, log, title,
                                              data.train, data.dev)
        else:
            kmodel, logits, info = _fit_ours(cfg, K, layers, shape, n_classes, log, title,
                                             np_model, data.train, data.dev,
                                             np.random.default_rng(order_seq))
    loop_seconds = time.perf_counter() - loop_started

    # --- the result, as train.train writes it
    def predict(X):
        return predict_proba(kmodel, X, chunk=t.eval_chunk, logits=logits)

    named = keras_layer_params(np_model, kmodel)
    flat = np.concatenate([a.ravel() for a in named.values()]).astype(np.float32)
    extra = {"protocol": protocol, "threads": threads,
             **{k: v for k, v in info.items() if k != "steps"},
             "versions": {"keras": K.keras.__version__, "tensorflow": K.tf.__version__}}
    return finish_run(cfg, run_dir, data, title, predict, flat, named, steps=info["steps"],
                      started=started, loop_seconds=loop_seconds, extra=extra)


def _diverged(step: int) -> CnnvsdnnError:
    return CnnvsdnnError(f"training diverged at step {step}: the cost is not finite; with "
                         f"engine.protocol=ours try a smaller optimizer.lr")


def _fit_study(cfg, K, layers, shape, n_classes, log, title, train, dev):
    """The study's protocol: ``model.fit`` with Keras's defaults; see the module docstring."""
    from cnnvsdnn.progress import TrainingProgress

    keras = K.keras
    (X_train, y_train), (X_dev, y_dev) = train, dev
    epochs, batch = study_epochs(cfg), int(cfg.engine.fit_batch_size)
    per_epoch = math.ceil(y_train.size / batch)  # fit's last batch of an epoch is smaller
    total = epochs * per_epoch
    kmodel = build_keras_model(layers, shape, n_classes, init="glorot_uniform", softmax=True)
    scce = keras.losses.sparse_categorical_crossentropy
    acc = keras.metrics.sparse_categorical_accuracy
    kmodel.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                   metrics=["accuracy", K.LastBatch(scce, "batch_cost"),
                            K.LastBatch(acc, "batch_accuracy")])

    class Logger(keras.callbacks.Callback):
        """Every step's own batch cost/accuracy to log.h5; the dev split after every epoch."""

        def __init__(self, bar):
            super().__init__()
            self.bar, self.step, self.dev_acc = bar, 0, float("nan")
            self.buf: list[tuple[int, float, float]] = []

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            cost, a = float(logs["batch_cost"]), float(logs["batch_accuracy"])
            self.buf.append((self.step, cost, a))
            if not math.isfinite(cost):
                self.flush()
                raise _diverged(self.step)
            if len(self.buf) >= 500:
                self.flush()
            self.bar.update(self.step, cost, a, self.dev_acc)

        def on_epoch_end(self, epoch, logs=None):
            self.flush()
            self.dev_acc = float(logs["val_accuracy"])
            log.append_dev(self.step, float(logs["val_loss"]), self.dev_acc)
            log.flush()

        def flush(self):
            if self.buf:
                log.append_train(*np.array(self.buf).T)
                self.buf = []

    with TrainingProgress(total, title, enabled=cfg.progress) as bar, \
            warnings.catch_warnings():
        # Keras's own np.array(tensor) on fit's logs warns under NumPy 2; not ours to fix
        warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a "
                                "copy keyword", category=DeprecationWarning)
        logger = Logger(bar)
        kmodel.fit(to_float(X_train), y_train, batch_size=batch, epochs=epochs, shuffle=True,
                   validation_data=(to_float(X_dev), y_dev), verbose=0, callbacks=[logger])
    return kmodel, False, {"steps": logger.step, "epochs": epochs, "batch_size": batch}


def _fit_ours(cfg, K, layers, shape, n_classes, log, title, np_model, train, dev, order_rng):
    """Like for like with the numba engine: its initial weights, batches, steps and Adam."""
    from cnnvsdnn.progress import TrainingProgress
    from cnnvsdnn.train import BatchOrder, cross_entropy

    tf = K.tf
    t, o = cfg.train, cfg.optimizer
    (X_train, y_train), (X_dev, y_dev) = train, dev
    kmodel = build_keras_model(layers, shape, n_classes, softmax=False)
    copy_params_to_keras(np_model, kmodel)
    opt = K.TextbookAdam(learning_rate=o.lr, beta_1=o.beta1, beta_2=o.beta2, epsilon=o.eps)
    variables = kmodel.trainable_variables

    @tf.function(reduce_retracing=True)
    def step_fn(x, y):
        with tf.GradientTape() as tape:
            z = kmodel(x, training=True)
            cost = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z))
        opt.apply(tape.gradient(cost, variables), variables)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(z, 1), y), tf.float32))
        return cost, acc

    batches = BatchOrder(y_train.size, t.batch_size, order_rng)
    buf, dev_acc = [], float("nan")
    with TrainingProgress(t.steps, title, enabled=cfg.progress) as bar:
        for step in range(1, t.steps + 1):
            idx = next(batches)
            cost, acc = (float(v) for v in step_fn(to_float(X_train[idx]), y_train[idx]))
            buf.append((step, cost, acc))
            if not math.isfinite(cost) or step % t.eval_every == 0 or step == t.steps:
                log.append_train(*np.array(buf).T)
                buf = []
                if not math.isfinite(cost):
                    raise _diverged(step)
            if step % t.eval_every == 0:
                p_dev = predict_proba(kmodel, X_dev, chunk=t.eval_chunk, logits=True)
                dev_acc = float(np.mean(p_dev.argmax(1) == y_dev))
                log.append_dev(step, cross_entropy(p_dev, y_dev), dev_acc)
                log.flush()
            bar.update(step, cost, acc, dev_acc)
    return kmodel, True, {"steps": t.steps, "batch_size": t.batch_size}
