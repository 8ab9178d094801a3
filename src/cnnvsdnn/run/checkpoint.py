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
import os
from pathlib import Path

import numpy as np

from ..errors import CnnvsdnnError
from .files import CHECKPOINT

_OWN = ("step", "order", "pos", "rng_state", "config", "engine_revision")


def save(run_dir: Path, *, step: int, engine_state: dict, order, pos: int, rng_state: dict,
         config_yaml: str, engine_revision: int) -> Path:
    path = Path(run_dir) / CHECKPOINT
    tmp = path.with_name(path.name + ".tmp")
    buf = io.BytesIO()
    np.savez(buf, step=step, **engine_state, order=order, pos=pos,
             rng_state=json.dumps(rng_state), config=config_yaml,
             engine_revision=engine_revision)
    try:
        with open(tmp, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as ex:
        raise CnnvsdnnError(f"cannot write the checkpoint {path} ({ex.strerror}); "
                            f"check the disk and the run directory's permissions") from None
    return path


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
    return out
