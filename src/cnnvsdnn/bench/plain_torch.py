"""The study's training protocol written plainly in PyTorch, as a user would; ``cnnvsdnn bench
--e2e`` times it beside ``cnnvsdnn train`` (run as a script, so only what it imports loads):

    python src/cnnvsdnn/bench/plain_torch.py --dataset mnist --threads 2 --layers '[{"type":
        "flatten"}, {"type": "dense", "units": 128}, {"type": "activation", "fn": "relu"},
        {"type": "dense", "units": 10}]'

The same decoded splits (``load_splits``: the seed's random 5000-image development split), the
same network (the registry's PyTorch layers) and He-normal initialisation, PyTorch's fastest CPU
optimiser (``Adam(fused=True)``), batches of 128 from a reshuffle every epoch, every step's
cost and accuracy kept, the development split evaluated every 100 steps (chunks of 1000), a
checkpoint (model and optimiser) every 500 steps and at the end, then probabilities and accuracy
on the three splits. The last line printed is JSON: ``{"loop_s", "steps", "accuracy"}``.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

from cnnvsdnn.data import load_splits
from cnnvsdnn.engines import init_params, network
from cnnvsdnn.engines.torch import build_torch_model


def main():
    p = argparse.ArgumentParser(description="the study's protocol in plain PyTorch")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--layers", required=True, help="the model's layer list as JSON")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--dev-size", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-verify", action="store_true", help="accept a copy of the dataset "
                   "whose checksum differs")
    p.add_argument("--out", default=None, help="folder for the checkpoint and log (a new one)")
    a = p.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="plain-torch-")
    torch.set_num_threads(a.threads)

    data = load_splits(a.dataset, dev_size=a.dev_size, seed=a.seed, verify=not a.no_verify,
                       progress=False)
    (Xtr, ytr), (Xdev, ydev), (Xte, yte) = data.train, data.dev, data.test
    net = network(json.loads(a.layers), data.info.shape, data.info.n_classes)
    model = build_torch_model(net, params=init_params(net, np.random.default_rng(a.seed)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           fused=True)
    Xtr_t, ytr_t = torch.from_numpy(Xtr).permute(0, 3, 1, 2), torch.from_numpy(ytr)

    def probs(X):
        out = []
        with torch.no_grad():
            for s in range(0, len(X), 1000):
                x = torch.from_numpy(X[s:s + 1000]).permute(0, 3, 1, 2).float().div_(255)
                out.append(torch.softmax(model(x), 1).numpy())
        return np.concatenate(out)

    def checkpoint():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, f"{out}/ckpt.tmp")
        os.replace(f"{out}/ckpt.tmp", f"{out}/checkpoint.pt")

    rng = np.random.default_rng(a.seed)
    order, pos = rng.permutation(len(ytr)), 0
    log, dev_log = [], []
    t0 = time.perf_counter()
    for step in range(1, a.steps + 1):
        if pos + 128 > len(order):  # a new epoch: reshuffle, the rest of the old one first
            order, pos = np.concatenate([order[pos:], rng.permutation(len(ytr))]), 0
        idx = torch.from_numpy(order[pos:pos + 128])
        pos += 128
        x, y = Xtr_t[idx].float().div_(255), ytr_t[idx]
        opt.zero_grad(set_to_none=True)
        z = model(x)
        loss = torch.nn.functional.cross_entropy(z, y)
        loss.backward()
        opt.step()
        log.append((step, loss.item(), (z.argmax(1) == y).float().mean().item()))
        if step % 100 == 0:
            pd = probs(Xdev)
            dev_log.append((step, float(-np.log(pd[np.arange(len(ydev)), ydev] + 1e-12).mean()),
                            float((pd.argmax(1) == ydev).mean())))
            print(f"step {step}: cost {log[-1][1]:.4f}, dev accuracy {dev_log[-1][2]:.4f}",
                  flush=True)
        if step % 500 == 0 or step == a.steps:
            checkpoint()
    loop_s = time.perf_counter() - t0
    acc = {name: float((probs(X).argmax(1) == y).mean())
           for name, X, y in (("train", Xtr, ytr), ("dev", Xdev, ydev), ("test", Xte, yte))}
    np.savez(f"{out}/log.npz", train=np.array(log), dev=np.array(dev_log))
    print(json.dumps({"loop_s": loop_s, "steps": a.steps, "accuracy": acc}), flush=True)


if __name__ == "__main__":
    main()
