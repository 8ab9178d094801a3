"""The numba engine's layers: one class per type of the registry (``engines/layer_types.py``,
which defines what each type computes), holding its parameter views and work buffers.

A layer's ``workspace(cap, train)`` allocates every buffer it needs for up to ``cap`` samples
once; ``forward``/``backward`` then only slice them (``[:B]`` keeps C order), so a training step
allocates no arrays. Every layer runs numba kernels (``kernels.py``); dense layers call BLAS's
sgemm from them, split over threads as the model's :class:`~.threads.ThreadPlan` says.
"""

import numba
import numpy as np

from . import kernels as K
from .threads import ThreadPlan

# numba thread ids run from 0 to this - 1, whatever set_num_threads later chooses
_SLOTS = numba.config.NUMBA_NUM_THREADS


class Layer:
    """Parameterless base: identity shapes, no buffers."""

    def __init__(self, spec, in_shape, out_shape):
        self.spec, self.in_shape, self.out_shape = spec, tuple(in_shape), tuple(out_shape)
        self.p, self.g = {}, {}
        self.plan = ThreadPlan()  # set by the model

    def bind(self, params, grads):
        """Views of this layer's parameters and gradients ({"w": ..., "b": ...})."""
        self.p, self.g = params, grads

    @property
    def n_params(self):
        return sum(v.size for v in self.p.values())

    def workspace(self, cap, train):
        return {}

    def describe(self):
        return self.spec["type"]


class _Fusing(Layer):
    """A layer whose kernels can apply the activation layer after it (saves two passes)."""

    act, alpha = 0, np.float32(1.0)  # 0 none, 1 ReLU, 2 ELU(alpha); set by fuse()

    def fuse(self, activation):
        self.act = 1 if activation.fn == "relu" else 2
        self.alpha = activation.alpha
        activation.fused = True


class Dense(_Fusing):

    def workspace(self, cap, train):
        ws = {"out": np.empty((cap, *self.out_shape), np.float32)}
        if train:  # (evaluation splits along the batch: no partial sums, no gradients)
            ws["part"] = np.empty((_SLOTS, cap, *self.out_shape), np.float32)  # K.dense_fwd_split
            ws["dx"] = np.empty((cap, *self.in_shape), np.float32)
            ws["dz"] = np.empty((cap, *self.out_shape), np.float32)
        return ws

    def _blocks(self, batch):
        """Threads to split this layer's matmuls over (1: one BLAS call each)."""
        return self.plan.blocks_for(batch * self.p["w"].size)

    def forward(self, x, ws, train):
        x = np.ascontiguousarray(x)  # the kernels pass row strides to BLAS (no copy if C-order)
        z = ws["out"][: x.shape[0]]
        nb = self._blocks(x.shape[0])
        if nb > 1 and not train:  # evaluation: whole rows per thread, no partial sums
            K.dense_fwd_rows(x, self.p["w"], self.p["b"], z, nb, self.act, self.alpha)
        elif nb > 1:
            K.dense_fwd_split(x, self.p["w"], self.p["b"], z, ws["part"], nb, self.act,
                              self.alpha)
        else:
            K.dense_fwd(x, self.p["w"], self.p["b"], z, self.act, self.alpha)
        return z

    def forward_rows(self, X, idx, x, ws):
        """The training forward pass of the batch X[idx] / 255 (X (N, inputs) uint8 rows) as
        the model's first layer: the batch is scaled into ``x`` (B, inputs), by the threads
        of the split matmul when it is split (``K.dense_fwd_split_rows``)."""
        B = idx.shape[0]
        z = ws["out"][:B]
        nb = self._blocks(B)
        if nb > 1:
            K.dense_fwd_split_rows(X, idx, x, self.p["w"], self.p["b"], z, ws["part"], nb,
                                   self.act, self.alpha)
        else:
            K.gather_u8(X, idx, x)
            K.dense_fwd(x, self.p["w"], self.p["b"], z, self.act, self.alpha)
        return z

    def backward(self, x, out, dout, ws, need_dx):
        x, dout = np.ascontiguousarray(x), np.ascontiguousarray(dout)
        B = x.shape[0]
        nb = self._blocks(B)
        dx = ws["dx"][:B] if need_dx else ws["dx"][:0]
        args = (x, dout, out, self.p["w"], self.g["w"], self.g["b"], dx, ws["dz"][:B], need_dx)
        if nb > 1:
            K.dense_bwd_split(*args, nb, self.act, self.alpha)
        else:
            K.dense_bwd(*args, self.act, self.alpha)
        return dx if need_dx else None

    def describe(self):
        return f"dense {self.in_shape[0]}->{self.out_shape[0]}"


class Conv(_Fusing):
    def __init__(self, spec, in_shape, out_shape):
        super().__init__(spec, in_shape, out_shape)
        self.k, self.z, self.s = spec["kernel"], spec["padding"], spec["stride"]
        # the zero-bordered input planes' height and row length (see kernels.py)
        self.hp, self.wp = self.in_shape[0] + 2 * self.z, self.in_shape[1] + 2 * self.z

    def workspace(self, cap, train):
        H, W, C = self.in_shape
        Ho, Wo, F = self.out_shape
        Hp, Wp = self.hp, self.wp
        plane = Ho * (Wp if self.s == 1 else Wo)  # see kernels.py on the planar layout
        ws = {
            "out": np.empty((cap, Ho, Wo, F), np.float32),
            # zero border is written once here and never touched again
            "xp": np.zeros((cap if train else _SLOTS, C, Hp * Wp), np.float32),
            "zp": np.empty((_SLOTS, F, plane), np.float32),
        }
        if train:
            ws["dzp"] = np.zeros((_SLOTS, F, plane), np.float32)  # junk columns stay 0
            ws["dxp"] = np.empty((_SLOTS, C, Hp * Wp), np.float32)
            ws["dwp"] = np.empty((cap, F, C, self.k, self.k), np.float32)
            ws["dbp"] = np.empty((cap, F), np.float32)
            ws["dx"] = np.empty((cap, H, W, C), np.float32)
        return ws

    def forward(self, x, ws, train):
        out = ws["out"][: x.shape[0]]
        K.conv_fwd(x, self.p["w"], self.p["b"], out, ws["xp"], ws["zp"], self.s, self.z, train,
                   self.act, self.alpha)
        return out

    def forward_rows(self, X, idx, ws):
        """The training forward pass of the batch X[idx] / 255, read from the uint8 dataset X
        by the conv's own threads (the model's first layer: no batch gather before it)."""
        out = ws["out"][: idx.shape[0]]
        K.conv_fwd_rows(X, idx, self.p["w"], self.p["b"], out, ws["xp"], ws["zp"], self.s,
                        self.z, self.act, self.alpha)
        return out

    def pad_planes(self, X):
        """uint8 images X (N, H, W, C) / 255, each padded into its planes (N, C, Hp*Wp) as
        the forward pass pads a sample: a split evaluated again and again is padded once
        (:meth:`forward_planes`)."""
        planes = np.zeros((len(X), self.in_shape[2], self.hp * self.wp), np.float32)
        K.pad_planes_u8(X, planes, self.z, self.wp)
        return planes

    def forward_planes(self, planes, ws):
        """The evaluation forward pass of images padded by :meth:`pad_planes`."""
        out = ws["out"][: planes.shape[0]]
        K.conv_fwd_planes(planes, self.p["w"], self.p["b"], out, ws["zp"], self.s,
                          self.wp, self.act, self.alpha)
        return out

    def backward(self, x, out, dout, ws, need_dx):  # x unused (None after forward_rows)
        B = dout.shape[0]
        dwp, dbp = ws["dwp"][:B], ws["dbp"][:B]
        dx = ws["dx"][:B] if need_dx else ws["dx"][:0]
        K.conv_bwd(dout, out, self.p["w"], ws["xp"], ws["dzp"], ws["dxp"], dwp, dbp, dx,
                   self.s, self.z, need_dx, self.act, self.alpha)
        K.sum_samples(dwp.reshape(B, -1), self.g["w"].reshape(-1))
        K.sum_samples(dbp, self.g["b"])
        return dx if need_dx else None

    def describe(self):
        return (f"conv {self.spec['filters']} filters {self.k}x{self.k} pad {self.z} "
                f"stride {self.s}")


class MaxPool(Layer):
    def __init__(self, spec, in_shape, out_shape):
        super().__init__(spec, in_shape, out_shape)
        self.size, self.s = spec["size"], spec["stride"]

    def workspace(self, cap, train):
        ws = {"out": np.empty((cap, *self.out_shape), np.float32),
              "arg": np.empty((cap, *self.out_shape), np.int32)}
        if train:
            ws["dx"] = np.empty((cap, *self.in_shape), np.float32)
        return ws

    def forward(self, x, ws, train):
        B = x.shape[0]
        out = ws["out"][:B]
        K.maxpool_fwd(x, out, ws["arg"][:B], self.size, self.s)
        return out

    def backward(self, x, out, dout, ws, need_dx):
        if not need_dx:
            return None
        B = x.shape[0]
        dx = ws["dx"][:B]
        K.maxpool_bwd(dout, ws["arg"][:B], dx, self.size, self.s)
        return dx

    def describe(self):
        return f"maxpool {self.size}x{self.size} stride {self.s}"


class AvgPool(Layer):
    def __init__(self, spec, in_shape, out_shape):
        super().__init__(spec, in_shape, out_shape)
        self.size, self.s = spec["size"], spec["stride"]

    def workspace(self, cap, train):
        ws = {"out": np.empty((cap, *self.out_shape), np.float32)}
        if train:
            ws["dx"] = np.empty((cap, *self.in_shape), np.float32)
        return ws

    def forward(self, x, ws, train):
        out = ws["out"][: x.shape[0]]
        K.avgpool_fwd(x, out, self.size, self.s)
        return out

    def backward(self, x, out, dout, ws, need_dx):
        if not need_dx:
            return None
        dx = ws["dx"][: x.shape[0]]
        K.avgpool_bwd(dout, dx, self.size, self.s)
        return dx

    def describe(self):
        return f"avgpool {self.size}x{self.size} stride {self.s}"


class Activation(Layer):
    def __init__(self, spec, in_shape, out_shape):
        super().__init__(spec, in_shape, out_shape)
        self.fn, self.alpha = spec["fn"], np.float32(spec["alpha"])
        self.fused = False  # True: the conv/dense before applies it; this one passes through

    def workspace(self, cap, train):
        if self.fused:
            return {}
        ws = {"out": np.empty((cap, *self.out_shape), np.float32)}
        if train:
            ws["dx"] = np.empty((cap, *self.in_shape), np.float32)
        return ws

    def forward(self, x, ws, train):
        if self.fused:
            return x
        out = ws["out"][: x.shape[0]]
        if self.fn == "relu":
            K.relu_fwd(x.reshape(-1), out.reshape(-1))
        else:
            K.elu_fwd(x.reshape(-1), out.reshape(-1), self.alpha)
        return out

    def backward(self, x, out, dout, ws, need_dx):
        if not need_dx:
            return None
        if self.fused:
            return dout
        dx = ws["dx"][: x.shape[0]]
        if self.fn == "relu":
            K.relu_bwd(x.reshape(-1), dout.reshape(-1), dx.reshape(-1))
        else:
            K.elu_bwd(x.reshape(-1), out.reshape(-1), dout.reshape(-1), dx.reshape(-1),
                      self.alpha)
        return dx

    def describe(self):
        name = self.fn if self.fn == "relu" else f"elu alpha {float(self.alpha):g}"
        return f"{name} (in the layer before)" if self.fused else name


class Flatten(Layer):
    """A view: (B, H, W, C) -> (B, H*W*C), so the flattened order is H, W, C (as Keras)."""

    def forward(self, x, ws, train):
        return x.reshape(x.shape[0], -1)

    def backward(self, x, out, dout, ws, need_dx):
        return dout.reshape(x.shape) if need_dx else None


# one class per entry of layer_types.LAYER_TYPES (a test checks they match)
NUMBA_LAYERS = {"dense": Dense, "conv": Conv, "maxpool": MaxPool, "avgpool": AvgPool,
                "activation": Activation, "flatten": Flatten}
