"""The study's training protocol written plainly in JAX, as a user would; ``cnnvsdnn bench
--e2e`` times it beside ``cnnvsdnn train`` (run as a script, so only what it imports loads):

    python src/cnnvsdnn/bench/plain_jax.py --dataset mnist --threads 2 --layers '[...]'

The protocol of ``plain_torch.py`` (same splits, network, initialisation, batches, evaluation
every 100 steps, checkpoints every 500 and at the end, final accuracy on the three splits), with
the whole training step -- batch gather, forward, loss, gradients, ``optax.adam`` -- in one
``jax.jit`` function, the dataset on the device once. ``--threads`` below the core count limits
the process to that many cores before XLA starts its thread pool.
"""

import argparse
import json
import os
import pickle
import tempfile
import time

import numpy as np

from cnnvsdnn.data import load_splits
from cnnvsdnn.engines import init_params, network
from cnnvsdnn.engines.jax import build_forward


def main():
    p = argparse.ArgumentParser(description="the study's protocol in plain JAX")
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
    out = a.out or tempfile.mkdtemp(prefix="plain-jax-")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if 0 < a.threads < len(cores):
        os.sched_setaffinity(0, cores[:a.threads])

    import jax  # after the affinity: XLA sizes its thread pool when it loads
    import jax.numpy as jnp
    import optax

    data = load_splits(a.dataset, dev_size=a.dev_size, seed=a.seed, verify=not a.no_verify,
                       progress=False)
    (Xtr, ytr), (Xdev, ydev), (Xte, yte) = data.train, data.dev, data.test
    net = network(json.loads(a.layers), data.info.shape, data.info.n_classes)
    _, logits = build_forward(net)
    params = {k: jnp.asarray(v, jnp.float32)
              for k, v in init_params(net, np.random.default_rng(a.seed)).items()}
    opt = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        z = logits(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(z, y).mean(), z

    @jax.jit
    def step_fn(params, opt_state, X, idx, y):
        x = X[idx].astype(jnp.float32) / 255.0
        (loss, z), g = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, \
            jnp.mean(jnp.argmax(z, axis=1) == y)

    @jax.jit
    def proba(params, X):
        return jax.nn.softmax(logits(params, X.astype(jnp.float32) / 255.0), axis=1)

    def probs(X):
        return np.concatenate([np.asarray(proba(params, X[s:s + 1000]))
                               for s in range(0, len(X), 1000)])

    def checkpoint():
        with open(f"{out}/ckpt.tmp", "wb") as f:
            pickle.dump(jax.device_get((params, opt_state)), f)
        os.replace(f"{out}/ckpt.tmp", f"{out}/checkpoint.pkl")

    Xtr_d, ytr_d = jnp.asarray(Xtr), jnp.asarray(ytr, jnp.int32)
    rng = np.random.default_rng(a.seed)
    order, pos = rng.permutation(len(ytr)), 0
    log, dev_log = [], []
    t0 = time.perf_counter()
    for step in range(1, a.steps + 1):
        if pos + 128 > len(order):  # a new epoch: reshuffle, the rest of the old one first
            order, pos = np.concatenate([order[pos:], rng.permutation(len(ytr))]), 0
        idx = jnp.asarray(order[pos:pos + 128], jnp.int32)
        pos += 128
        params, opt_state, loss, acc = step_fn(params, opt_state, Xtr_d, idx, ytr_d[idx])
        log.append((step, float(loss), float(acc)))
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
