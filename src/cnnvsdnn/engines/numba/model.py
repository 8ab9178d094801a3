"""A sequential model: one flat float32 parameter buffer, layers holding views into it."""

import math

import numpy as np

from ...errors import CnnvsdnnError, ConfigError, DataError
from ..layer_types import Network, init_params, network
from . import kernels as K
from .layers import NUMBA_LAYERS, Activation, Conv, Dense, Flatten, _Fusing
from .threads import ThreadPlan

# Pixels of an evaluation chunk from which scaling it to float32 is split over the threads
# (a 128-image MNIST batch, 0.1 M, is not worth waking them; a 1,000-image chunk is).
SCALE_SPLIT_MIN = 1 << 18


class PaddedPlanes:
    """Images padded once into the first conv layer's planes (:meth:`Model.eval_input`), which
    :meth:`Model.predict_proba` evaluates as the images themselves, without padding them again."""

    def __init__(self, data):
        self.data = data  # (N, C, Hp*Wp) float32

    def __len__(self):
        return len(self.data)


class Model:
    """``layers``: a YAML layer list or a :class:`Network`. The parameters are ``params`` (a
    dict named as ``Network.param_shapes()``) or else drawn from ``rng`` by ``init``."""

    def __init__(self, layers, input_shape=None, n_classes=10, rng=None, batch_size=128,
                 init="he_normal", params=None, threads: ThreadPlan | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be an integer >= 1")
        net = layers if isinstance(layers, Network) else network(layers, input_shape, n_classes)
        self.net, self.specs = net, list(net.specs)
        self.input_shape, self.n_classes, self.batch_size = net.input_shape, net.n_classes, \
            batch_size
        self.layers = [NUMBA_LAYERS[s["type"]](s, i, o)
                       for s, i, o in zip(net.specs, net.in_shapes, net.out_shapes)]
        shapes = net.param_shapes()
        self.n_params = sum(math.prod(s) for s in shapes.values())
        self.params = np.zeros(self.n_params, np.float32)
        self.grads = np.zeros(self.n_params, np.float32)
        self._views = {}  # "i.type.name" -> (param view, grad view)
        off = 0
        for name, shape in shapes.items():
            n = math.prod(shape)
            self._views[name] = (self.params[off:off + n].reshape(shape),
                                 self.grads[off:off + n].reshape(shape))
            off += n
        for i, layer in enumerate(self.layers):
            prefix = f"{i}.{layer.spec['type']}."
            mine = {k[len(prefix):]: v for k, v in self._views.items() if k.startswith(prefix)}
            layer.bind({k: p for k, (p, _) in mine.items()}, {k: g for k, (_, g) in mine.items()})
        for a, b in zip(self.layers, self.layers[1:]):
            if isinstance(a, _Fusing) and isinstance(b, Activation):
                a.fuse(b)
        if params is None:  # drawn in layer order: same seed, same params
            params = init_params(net, np.random.default_rng(0) if rng is None else rng, init)
        self.load_layer_params(params)
        self.use_threads(threads or ThreadPlan())
        # input gradient only where some earlier layer has parameters (never for layer 0)
        self._need_dx, seen = [], False
        for layer in self.layers:
            self._need_dx.append(seen)
            seen = seen or layer.n_params > 0
        self._train_ws = [layer.workspace(batch_size, True) for layer in self.layers]
        self._dlogits = np.empty((batch_size, self.n_classes), np.float32)
        self._xb = np.empty((batch_size, *self.input_shape), np.float32)  # a gathered batch
        self._eval = (0, None, None)  # (chunk, workspaces, input buffer)

    # ------------------------------------------------------------------ training
    def loss_and_grad(self, x, y):
        """Mean softmax cross-entropy and batch accuracy of float32 images ``x``; fills
        ``self.grads``."""
        x = self._check_x(x, np.float32)
        self._check_batch(x.shape[0], y)
        return self._backprop([x, self.layers[0].forward(x, self._train_ws[0], True)], y)

    def loss_and_grad_rows(self, X, idx, y):
        """:meth:`loss_and_grad` of the batch ``X[idx] / 255`` of a uint8 dataset, the training
        step's way in: a first conv or dense layer (after a flatten) reads the rows itself,
        in its own parallel pass (``forward_rows``); other models gather them into a batch
        buffer first. The numbers are the same bit for bit."""
        X, idx = self._check_rows(X, idx)
        B = idx.shape[0]
        self._check_batch(B, y)
        first, ws = self.layers[0], self._train_ws[0]
        if isinstance(first, Conv):
            return self._backprop([None, first.forward_rows(X, idx, ws)], y)
        x, rows = self._xb[:B], X.reshape(len(X), -1)
        if isinstance(first, Flatten) and len(self.layers) > 1 \
                and isinstance(self.layers[1], Dense):
            flat = first.forward(x, ws, True)  # a view of the batch buffer it fills
            return self._backprop([x, flat, self.layers[1].forward_rows(
                rows, idx, flat, self._train_ws[1])], y)
        K.gather_u8(rows, idx, x.reshape(B, -1))
        return self._backprop([x, first.forward(x, ws, True)], y)

    def _check_batch(self, B, y):
        if not 1 <= B <= self.batch_size or len(y) != B:
            raise CnnvsdnnError(
                f"batch of {B} images and {len(y)} labels; need 1..{self.batch_size} of each"
            )

    def _backprop(self, acts, y):
        """The rest of the forward pass from ``acts`` (the input, then the outputs of the
        first layers), the loss, and the backward pass."""
        n = len(acts) - 1  # layers done
        for layer, ws in zip(self.layers[n:], self._train_ws[n:]):
            acts.append(layer.forward(acts[-1], ws, True))
        B = acts[-1].shape[0]
        d = self._dlogits[:B]
        cost, acc, bad = K.softmax_ce(acts[-1], np.asarray(y), d)
        if bad >= 0:
            raise DataError(
                f"label {y[bad]} at batch position {bad} is outside 0..{self.n_classes - 1}; "
                f"check the dataset's labels"
            )
        for i in range(len(self.layers) - 1, -1, -1):
            d = self.layers[i].backward(acts[i], acts[i + 1], d, self._train_ws[i],
                                        self._need_dx[i])
        return float(cost), float(acc)

    def warm_up(self, X_uint8):
        """Compile (or load from numba's cache) every kernel of a training step and of
        evaluation: a full training batch of the first images of ``X_uint8`` (repeated if
        there are fewer; labels 0), and 64 of them evaluated. Parameters stay as they are;
        ``grads`` are overwritten by the next step."""
        if not len(X_uint8):
            X_uint8 = np.zeros((1, *self.input_shape), np.uint8)
        idx = np.arange(self.batch_size) % len(X_uint8)  # full: the threaded paths a step takes
        self.loss_and_grad_rows(X_uint8, idx, np.zeros(idx.size, np.int64))
        # enough images that evaluation takes its threaded paths (dense layers split along the
        # batch): compiled here, not inside the first development evaluation of the loop
        self.predict_proba(X_uint8[:64])
        if isinstance(self.layers[0], Conv):  # and the development split's way (eval_input)
            self.predict_proba(self.eval_input(X_uint8[:64]))

    # ------------------------------------------------------------------ evaluation
    def eval_input(self, X):
        """uint8 images ``X`` made ready, once, for a split evaluated again and again (the
        development split): padded into the first conv layer's planes (a
        :class:`PaddedPlanes`; a quarter of a 32x32x3 evaluation's convolution was that
        padding), or else scaled to float32 (8 % of a 32x32x3 DNN's evaluation was the
        scaling). :meth:`predict_proba` gives the same bits for it as for ``X``."""
        X = self._check_x(X, np.uint8)
        if isinstance(self.layers[0], Conv):
            return PaddedPlanes(self.layers[0].pad_planes(X))
        return self.scale(X)

    def predict_proba(self, X, chunk=1000):
        """Class probabilities (N, K) float32 for uint8 (scaled by 1/255) or float images, or
        the :class:`PaddedPlanes` of :meth:`eval_input`."""
        N = len(X)
        if chunk < 1:
            raise ConfigError(f"chunk={chunk} must be >= 1")
        out = np.empty((N, self.n_classes), np.float32)
        if N == 0:
            return out
        planes = isinstance(X, PaddedPlanes)
        if not planes:
            if X.dtype != np.uint8:
                X = X.astype(np.float32, copy=False)
            X = self._check_x(X, X.dtype)  # one copy here at most, never one per chunk
        chunk = min(chunk, N)
        if self._eval[0] != chunk:  # keep one set of eval buffers, sized for this chunk
            self._eval = (chunk, [layer.workspace(chunk, False) for layer in self.layers],
                          np.empty((chunk, *self.input_shape), np.float32))
        _, wss, xbuf = self._eval
        done = 1 if planes else 0  # layers the chunk has passed before the loop below
        for lo in range(0, N, chunk):
            hi = min(lo + chunk, N)
            if planes:
                a = self.layers[0].forward_planes(X.data[lo:hi], wss[0])
            elif X.dtype == np.uint8:  # a contiguous block: scaled over the threads
                a = self.scale(X[lo:hi], out=xbuf[: hi - lo])
            else:
                a = np.ascontiguousarray(X[lo:hi])
            for layer, ws in zip(self.layers[done:], wss[done:]):
                a = layer.forward(a, ws, False)
            K.softmax_rows(a, out[lo:hi])
        return out

    def scale(self, X, out=None):
        """uint8 images ``X`` / 255 as float32 (the values :meth:`gather` gives), over the
        threads when there are enough pixels; written into ``out`` if given."""
        if out is None:
            out = np.empty(X.shape, np.float32)
        rows = (len(X), math.prod(X.shape[1:]))
        K.scale_u8_blocks(X.reshape(rows), out.reshape(rows),
                          self.plan.threads if out.size >= SCALE_SPLIT_MIN else 1)
        return out

    def gather(self, X, idx, out=None):
        """X[idx] / 255 as float32 (B, H, W, C), written into ``out`` if given."""
        X, idx = self._check_rows(X, idx)
        if out is None:
            out = np.empty((len(idx), *self.input_shape), np.float32)
        elif out.shape != (len(idx), *self.input_shape) or out.dtype != np.float32 \
                or not out.flags.c_contiguous:
            raise CnnvsdnnError(f"gather out must be C-contiguous float32 {(len(idx),)}+input")
        K.gather_u8(X.reshape(len(X), -1), idx, out.reshape(len(idx), -1))
        return out

    def _check_rows(self, X, idx):
        """A uint8 dataset and a batch's indices into it, checked (the kernels index freely)."""
        X = np.asarray(X)
        if not X.flags.c_contiguous:  # a copy per batch would silently cost a dataset copy
            raise CnnvsdnnError("the training images must be a C-contiguous uint8 array; "
                                "pass np.ascontiguousarray(X) once")
        X = self._check_x(X, np.uint8)
        idx = np.asarray(idx)
        if idx.ndim != 1 or idx.dtype.kind not in "iu" or \
                (idx.size and (idx.min() < 0 or idx.max() >= len(X))):
            raise CnnvsdnnError(f"batch indices must be a 1-D integer array in 0..{len(X) - 1}")
        return X, idx

    def _check_x(self, x, dtype):
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            raise DataError(
                f"images of shape {x.shape[1:]} do not fit the model's input {self.input_shape}"
                f"; build the model with the dataset's (height, width, channels)"
            )
        if x.dtype != dtype:
            raise DataError(f"images must be {np.dtype(dtype).name}, got {x.dtype}")
        return np.ascontiguousarray(x)

    # ------------------------------------------------------------------ parameters
    def layer_params(self):
        """Named views into ``params``: {"0.conv.w": (F,C,K,K), "0.conv.b": (F,), ...}."""
        return {name: p for name, (p, _) in self._views.items()}

    def layer_grads(self):
        return {name: g for name, (_, g) in self._views.items()}

    def load_layer_params(self, params: dict):
        """Set every parameter from a dict named as :meth:`layer_params` names them."""
        if set(params) != set(self._views):
            raise DataError(f"parameters {sorted(params)} do not fit this model's "
                            f"{sorted(self._views)}; load them into the model they came from")
        for name, (p, _) in self._views.items():
            if np.shape(params[name]) != p.shape:
                raise DataError(f"parameter {name} has shape {np.shape(params[name])}, this "
                                f"model needs {p.shape}")
            p[...] = params[name]

    def use_threads(self, plan: ThreadPlan) -> None:
        """Follow ``plan`` (from ``set_threads``) from the next call on."""
        self.plan = plan
        for layer in self.layers:
            layer.plan = plan

    def load_params(self, flat):
        flat = np.asarray(flat)
        if flat.shape != (self.n_params,):
            raise DataError(
                f"saved parameters have shape {flat.shape}, this model needs ({self.n_params},);"
                f" load them into the model they were saved from"
            )
        self.params[...] = flat

    def summary(self):
        lines = []
        for i, layer in enumerate(self.layers):
            lines.append(f"{i:>2} {layer.describe():<28} out {str(layer.out_shape):<14} "
                         f"{layer.n_params:>8} params")
        lines.append(f"   total {self.n_params} params")
        return lines


def build_model(layers, input_shape, n_classes=10, rng=None, batch_size=128, init="he_normal",
                threads=None):
    """Build a model from its YAML layer list (see ``layer_types.normalize_layers``)."""
    return Model(layers, input_shape, n_classes=n_classes, rng=rng, batch_size=batch_size,
                 init=init, threads=threads)
