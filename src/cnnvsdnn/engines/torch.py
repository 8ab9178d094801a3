"""PyTorch as a peer engine (``cnnvsdnn bench``, the cross-check tests): the same network,
each layer as its registry entry builds it, our parameters copied in.

Variants (``variant=``): ``eager`` with ``torch.optim.Adam()``; ``fused`` with
``Adam(fused=True)`` (PyTorch's fastest optimiser on a CPU); ``compile``: the model under
``torch.compile`` with fused Adam. PyTorch's Adam is the textbook form. Needs the ``bench``
extra (``pip install 'cnnvsdnn[bench]'``); PyTorch is imported on first use.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..errors import ConfigError
from .base import Engine, split_flat
from .layer_types import Network, network

VARIANTS = ("eager", "fused", "compile")
_KIT = None


def load_torch():
    """``(torch, kit)``: the module and the kit the registry's ``torch`` builders take."""
    global _KIT
    if _KIT is None:
        try:
            import torch
        except ImportError as ex:
            raise ConfigError(f"the torch engine needs PyTorch ({ex}): pip install "
                              f"'cnnvsdnn[bench]'") from None

        class NHWCFlatten(torch.nn.Module):
            """Our flatten order is (H, W, C); PyTorch's tensors are NCHW."""

            def forward(self, x):
                return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1) if x.dim() == 4 else x

        _KIT = SimpleNamespace(torch=torch, nn=torch.nn, NHWCFlatten=NHWCFlatten)
    return _KIT.torch, _KIT


def build_torch_model(layers, input_shape=None, n_classes=10, params=None):
    """The network as ``torch.nn.Sequential`` (NCHW input), with ``params`` (ours, named as
    ``Network.param_shapes()``) copied in when given."""
    torch, kit = load_torch()
    net = layers if isinstance(layers, Network) else network(layers, input_shape, n_classes)
    mods = [t.torch(spec, kit, shape)
            for t, spec, shape in zip(net.types(), net.specs, net.in_shapes)]
    model = torch.nn.Sequential(*mods)
    if params is not None:
        with torch.no_grad():
            for i, m in enumerate(mods):
                t = net.types()[i]
                w, b = params.get(f"{i}.{t.name}.w"), params.get(f"{i}.{t.name}.b")
                if w is None:
                    continue
                # our dense w is (in, out); PyTorch's Linear holds (out, in); conv agree
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T if w.ndim == 2 else w,
                                                                     dtype=np.float32)))
                m.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))
    return model


def torch_params(net: Network, model) -> dict[str, np.ndarray]:
    """The model's parameters named and laid out as ours."""
    out = {}
    for i, (t, m) in enumerate(zip(net.types(), model)):
        if hasattr(m, "weight") and m.weight is not None:
            w = m.weight.detach().numpy()
            out[f"{i}.{t.name}.w"] = w.T.copy() if w.ndim == 2 else w.copy()
            out[f"{i}.{t.name}.b"] = m.bias.detach().numpy().copy()
    return out


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, net, params, adam, batch_size, threads, variant="eager"):
        super().__init__(net, params, adam, batch_size, threads)
        if variant not in VARIANTS:
            raise ConfigError(f"torch variant {variant!r} is not one of {', '.join(VARIANTS)}")
        if adam.eps_sign != "plus":
            raise ConfigError("the torch engine computes torch.optim.Adam, whose eps is added; "
                              "optimizer.eps_sign=minus needs the numba or keras engine")
        torch, _ = load_torch()
        torch.set_num_threads(threads)
        self.torch, self.variant = torch, variant
        self.model = build_torch_model(net, params=params)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=adam.lr,
                                    betas=(adam.beta1, adam.beta2), eps=adam.eps,
                                    fused=variant != "eager")
        self.loss = torch.nn.CrossEntropyLoss()
        self.forward = torch.compile(self.model) if variant == "compile" else self.model
        self._X, self._Xt = None, None

    def _tensor(self, X):
        if self._X is not X:  # the dataset as a tensor once, not per batch
            self._X, self._Xt = X, self.torch.from_numpy(np.ascontiguousarray(X))
        return self._Xt

    def train_step(self, X, idx, y):
        torch = self.torch
        Xt = self._tensor(X)
        x = Xt[torch.from_numpy(np.asarray(idx))].permute(0, 3, 1, 2).float().div_(255)
        yt = torch.from_numpy(np.asarray(y, np.int64))
        self.opt.zero_grad(set_to_none=True)
        z = self.forward(x)
        loss = self.loss(z, yt)
        loss.backward()
        self.opt.step()
        acc = (z.detach().argmax(1) == yt).float().mean()
        return loss.item(), acc.item()

    def predict_proba(self, X, chunk=1000):
        torch = self.torch
        out = []
        with torch.no_grad():
            for s in range(0, len(X), chunk):
                x = torch.from_numpy(np.ascontiguousarray(X[s:s + chunk]))
                z = self.forward(x.permute(0, 3, 1, 2).float().div_(255))
                out.append(torch.softmax(z, 1).numpy())
        return np.concatenate(out).astype(np.float32)

    def layer_params(self):
        return torch_params(self.net, self.model)

    def load_state(self, state):
        """Parameters and Adam's moments and step from another engine's ``state()`` (the
        bench starts every engine from the same trained state)."""
        torch = self.torch
        named = {k: split_flat(self.net, state[k]) for k in ("params", "adam_m", "adam_v")}

        def tensor(a):  # ours -> PyTorch's layout (a dense weight is (out, in) there)
            return torch.from_numpy(np.ascontiguousarray(a.T if a.ndim == 2 else a))

        with torch.no_grad():
            for i, (t, m) in enumerate(zip(self.net.types(), self.model)):
                for p, key in ((getattr(m, "weight", None), "w"), (getattr(m, "bias", None), "b")):
                    name = f"{i}.{t.name}.{key}"
                    if p is None or name not in named["params"]:
                        continue
                    p.copy_(tensor(named["params"][name]))
                    self.opt.state[p] = {
                        "step": torch.tensor(float(state["adam_t"]), dtype=torch.float32),
                        "exp_avg": tensor(named["adam_m"][name]).clone(),
                        "exp_avg_sq": tensor(named["adam_v"][name]).clone()}

    def info(self):
        return {**super().info(), "variant": self.variant, "torch": self.torch.__version__}

    def about(self):
        how = {"eager": "Adam()", "fused": "Adam(fused=True)",
               "compile": "torch.compile, Adam(fused=True)"}[self.variant]
        return f"PyTorch {self.torch.__version__}: {how}, {self.threads} threads", None
