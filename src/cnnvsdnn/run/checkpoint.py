"""Checkpoints: everything a run needs to continue bit for bit, written atomically.

A checkpoint holds the step, the engine's state (for the numba engine: the parameters
``params`` and Adam's ``adam_m``, ``adam_v``, ``adam_t``), the batch order (the current epoch's
permutation, the position in it and the shuffling generator's state), the resolved config and
the engine revision that wrote it. It is written to a temporary name, synced, then renamed over
the old one, so a crash at any instant leaves either the old or the new checkpoint, never a torn
one.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import CnnvsdnnError
from ..safe_io import atomic_write
from .files import CHECKPOINT

_OWN = ("step", "order", "pos", "rng_state", "config", "engine_revision")


def _encode(*, step: int, engine_state: dict, order, pos: int, rng_state: dict,
            config_yaml: str, engine_revision: int) -> io.BytesIO:
    buf = io.BytesIO()
    np.savez(buf, step=step, **engine_state, order=order, pos=pos,
             rng_state=json.dumps(rng_state), config=config_yaml,
             engine_revision=engine_revision)
    return buf


class Saver:
    """The training loop's checkpoints, written behind it: :meth:`save` copies the state into
    memory at once (that step's numbers) and a background thread writes and syncs the file
    while training goes on -- the sync alone waits 10-40 ms for the disk, ~1.5 % of a CIFAR-10
    run's loop. One write at a time; :meth:`wait` before relying on the last one (a resume
    command, the results) raises a failed write's error, as does the next :meth:`save`."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="cnnvsdnn-checkpoint")
        self._pending = None

    def save(self, **state) -> None:
        self.wait()
        buf = _encode(**state)
        self._pending = self._pool.submit(atomic_write, self.run_dir / CHECKPOINT,
                                          lambda f: f.write(buf.getbuffer()), sync=True)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> Saver:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown()


def load(run_dir: Path) -> dict:
    """``{"step", "engine_state": {...}, "order", "pos", "rng_state", "config",
    "engine_revision"}``; a one-line error if the file is damaged."""
    path = Path(run_dir) / CHECKPOINT
    try:
        with np.load(path, allow_pickle=False) as z:
            ck = {k: z[k] for k in z.files}
        out = {"step": int(ck["step"]), "order": ck["order"], "pos": int(ck["pos"]),
               "rng_state": json.loads(str(ck["rng_state"])), "config": str(ck["config"]),
               # checkpoints written before revisions were recorded come from revision 1
               "engine_revision": int(ck["engine_revision"]) if "engine_revision" in ck else 1}
    except Exception as ex:  # a damaged file: say so, never resume from it
        raise CnnvsdnnError(f"the checkpoint {path} is unreadable ({type(ex).__name__}); "
                            f"start a new run in another hydra.run.dir") from None
    out["engine_state"] = {k: (int(v) if v.ndim == 0 else v) for k, v in ck.items()
                           if k not in _OWN}
    if not out["engine_state"]:
        raise CnnvsdnnError(f"{path} holds no engine state (is it a run's params.npz?); "
                            f"start a new run in another hydra.run.dir")
    return out
