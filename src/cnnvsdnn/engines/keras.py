"""The reference engine (``engine=keras``): the same layer list in Keras 3 on TensorFlow.

The study checked its from-scratch CNN against a structurally equal Keras model and printed it
as the third column of its tables. This engine builds that model from the layer registry
(``layer_types.py``: each entry names its Keras layers) and trains it one batch at a time under
the same training loop as every engine (``run/loop.py``), in one of two forms:

- ``softmax_output=True`` with Keras's own Adam (``AdamSettings.form="keras"``): the model as
  the study built it, a softmax output layer and Keras's crossentropy on its probabilities (the
  ``study`` protocol, see ``run/schedule.py``);
- ``softmax_output=False`` with textbook Adam: logits and a stable cross-entropy, the numba
  engine's computation in another framework (the ``ours`` protocol).

Parameter layouts: ours conv ``w`` (F,C,K,K), Keras ``kernel`` (K,K,C,F); dense ``w`` (in,out)
in both; both flatten NHWC activations in (H,W,C) order, so dense weights after a flatten need
no permutation. TensorFlow is imported on first use only.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import CnnvsdnnError, ConfigError
from .base import Engine
from .layer_types import Network, network

# Set before TensorFlow loads (a user's own setting wins): the TF backend, no C++ log lines,
# and oneDNN off -- with it on, TensorFlow prints a notice on stderr that no log level silences,
# and its results depend on the thread count. TF_ENABLE_ONEDNN_OPTS=1 makes conv steps ~1.7x
# faster (same cross-check tolerances).
_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow"}
_K = None  # the loaded keras module and our Keras classes (see _keras)
REVISION = 2  # 2: trained by the common loop, initial weights drawn by layer_types.init_params


# ------------------------------------------------------------------------------ loading keras
class _Keras:
    """keras, tensorflow and our small Keras class, created on first use."""

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
            """Textbook Adam (and the numba engine's): eps is added to sqrt(v_hat). Keras's own
            Adam computes ``theta -= alpha m / (sqrt(v) + eps)`` with ``alpha = lr
            sqrt(1-b2^t)/(1-b1^t)``: its eps stands for eps*sqrt(1-b2^t) of the textbook form,
            a different optimiser whenever sqrt(v_hat) is near eps. A negative epsilon gives
            the study's code's ``/(sqrt(v_hat) - eps)`` (``optimizer.eps_sign=minus``)."""

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

        self.TextbookAdam = TextbookAdam


def load_keras() -> _Keras:
    """Import Keras/TensorFlow once (quietly); ConfigError if the extra is not installed."""
    global _K
    if _K is None:
        _K = _Keras()
    return _K


# ------------------------------------------------------------------------------ the model
def build_keras_model(layers, input_shape: tuple, n_classes: int, softmax: bool = True):
    """The Keras model of a layer list (or :class:`Network`), each layer as its registry entry
    builds it. ``softmax=False`` ends in the logits (for a loss ``from_logits``)."""
    net = layers if isinstance(layers, Network) else network(layers, input_shape, n_classes)
    k = load_keras().keras
    out = [k.Input(shape=tuple(net.input_shape))]
    for i, (t, spec) in enumerate(zip(net.types(), net.specs)):
        out += t.keras(spec, k.layers, str(i))
    if softmax:
        out.append(k.layers.Activation("softmax", name="softmax"))
    return k.Sequential(out, name="reference")


def to_keras_weights(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Our per-layer arrays (w, b of each layer in order) in Keras's layout: conv w (F,C,K,K)
    becomes the kernel (K,K,C,F); dense (in,out) and biases are the same."""
    return [a.transpose(2, 3, 1, 0) if a.ndim == 4 else a for a in arrays]


def from_keras_weights(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The inverse of :func:`to_keras_weights`."""
    return [a.transpose(3, 2, 0, 1) if a.ndim == 4 else a for a in arrays]


def set_keras_params(kmodel, params: dict[str, np.ndarray]) -> None:
    """Give the Keras model our parameters (a dict in storage order, our layout)."""
    kvars = kmodel.trainable_weights
    if len(params) != len(kvars):
        raise CnnvsdnnError(f"internal: {len(params)} parameter arrays but {len(kvars)} Keras "
                            f"weights; the registry's Keras layers disagree with its params")
    for var, a in zip(kvars, to_keras_weights(list(params.values())), strict=True):
        if tuple(var.shape) != a.shape:
            raise CnnvsdnnError(f"internal: Keras weight {var.path} has shape {tuple(var.shape)},"
                                f" ours {a.shape}")
        var.assign(np.ascontiguousarray(a, dtype=np.float32))


def copy_params_to_keras(np_model, kmodel) -> None:
    """Give the Keras model a numba model's current parameters."""
    set_keras_params(kmodel, np_model.layer_params())


def keras_params(names: list[str], kmodel) -> dict[str, np.ndarray]:
    """The Keras model's parameters named ``names`` and laid out as ours."""
    return dict(zip(names, from_keras_weights([v.numpy() for v in kmodel.trainable_weights]),
                    strict=True))


def keras_layer_params(np_model, kmodel) -> dict[str, np.ndarray]:
    """The Keras model's parameters named and laid out as ``np_model.layer_params()``."""
    return keras_params(list(np_model.layer_params()), kmodel)


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


# ------------------------------------------------------------------------------ the engine
class KerasEngine(Engine):
    name = "keras"
    revision = REVISION
    resumable = False  # Keras's optimiser state is not checkpointed

    def __init__(self, net, params, adam, batch_size, threads, softmax_output=False):
        super().__init__(net, params, adam, batch_size, threads)
        K = load_keras()
        tf, keras = K.tf, K.keras
        try:  # only possible before TensorFlow's first op; later calls keep the first setting
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2) if threads
                                                                 else 0)
        except RuntimeError:
            pass
        tf.config.experimental.enable_op_determinism()
        self.softmax_output, self._names = softmax_output, list(params)
        self.kmodel = build_keras_model(net, None, net.n_classes, softmax=softmax_output)
        set_keras_params(self.kmodel, params)
        if adam.form == "keras":  # Keras's own Adam, as the study's model.fit used it
            opt = keras.optimizers.Adam(learning_rate=adam.lr, beta_1=adam.beta1,
                                        beta_2=adam.beta2, epsilon=adam.eps)
        else:
            opt = K.TextbookAdam(learning_rate=adam.lr, beta_1=adam.beta1, beta_2=adam.beta2,
                                 epsilon=adam.signed_eps)
        kmodel, variables = self.kmodel, self.kmodel.trainable_variables
        scce = keras.losses.sparse_categorical_crossentropy

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                z = kmodel(x, training=True)
                if softmax_output:  # the study's form: Keras's crossentropy on probabilities
                    cost = tf.reduce_mean(scce(y, z))
                else:
                    cost = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z))
            opt.apply(tape.gradient(cost, variables), variables)
            acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(z, 1), y), tf.float32))
            return cost, acc

        self._step = step
        self.versions = {"keras": keras.__version__, "tensorflow": tf.__version__}

    def train_step(self, X, idx, y):
        cost, acc = self._step(to_float(X[idx]), np.asarray(y, np.int64))
        return float(cost), float(acc)

    def predict_proba(self, X, chunk=1000):
        return predict_proba(self.kmodel, X, chunk=chunk, logits=not self.softmax_output)

    def layer_params(self):
        return keras_params(self._names, self.kmodel)

    def info(self):
        return {**super().info(), "versions": self.versions}
