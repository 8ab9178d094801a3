"""The run's training log, ``log.h5``.

Layout: datasets ``train/step``, ``train/cost``, ``train/accuracy`` (every step) and ``dev/step``,
``dev/cost``, ``dev/accuracy`` (every ``eval_every`` steps), all 1-D, chunked and resizable;
the resolved config YAML is the root attribute ``config``.

Crash safety: the file is written in HDF5 SWMR mode, which keeps the file on disk readable
whatever is flushed when, so a run killed at any moment (even ``kill -9``) leaves a file that
:func:`read_log` can read; the writer calls :meth:`RunLog.flush` after each group of appends
(one flush costs about as much as the appends, so not after each). Rows are
padded with fill values (step -1) until written, and ``step`` is written after ``cost`` and
``accuracy``, so the reader keeps the prefix of rows whose step is set and whose three arrays
all exist. Resuming rewrites the log from what :func:`read_log` recovers (into a temporary
file, then an atomic rename).

Reading a damaged file must fail at once: a killed SWMR writer leaves the superblock flagged
"open for write", which only an SWMR reader accepts, and HDF5's SWMR reader retries every
metadata read that fails its checksum for minutes, inside C, deaf to Ctrl-C (a truncated file
hung ``report`` and ``train.resume=true``). So :func:`read_log` reads the file into memory,
clears those flags as ``h5clear`` would (recomputing the superblock's Jenkins lookup3
checksum) and opens the copy as an ordinary reader, which reports a truncated or damaged file
in one error.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import h5py
import numpy as np

from ..errors import ConfigError

__all__ = ["FIELDS", "GROUPS", "RunLog", "read_log"]

GROUPS = ("train", "dev")
FIELDS = ("step", "cost", "accuracy")
_DTYPES = {"step": np.int64, "cost": np.float64, "accuracy": np.float64}
_FILL = {"step": -1, "cost": np.nan, "accuracy": np.nan}
_CHUNKS = {"train": 4096, "dev": 256}


class RunLog:
    """Append-only writer of ``log.h5``; use as a context manager.

    ``resume=True`` keeps the rows of an existing log (use :meth:`truncate_after` to drop those
    past the checkpoint being resumed); otherwise an existing file is replaced.
    """

    def __init__(self, path: str | Path, config_yaml: str, resume: bool = False):
        self.path = Path(path)
        old = read_log(self.path) if resume and self.path.exists() else None
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self._file = _create(tmp, config_yaml, old)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"cannot write the training log {tmp} ({exc}); "
                              f"check that the run directory is writable") from None
        self._file.close()
        os.replace(tmp, self.path)  # a crash before this leaves the old log untouched
        self._file = h5py.File(self.path, "r+", libver="latest")
        self._file.swmr_mode = True  # from here on, readers always see a consistent file

    # -- writing ---------------------------------------------------------------------------
    def append_train(self, steps, cost, accuracy) -> None:
        """Append a batch of per-step rows (the trainer buffers up to 500 steps per call)."""
        self._append("train", steps, cost, accuracy)

    def append_dev(self, step, cost, accuracy) -> None:
        """Append development-set evaluations: one (numbers) or several (sequences)."""
        self._append("dev", step, cost, accuracy)

    def _append(self, group: str, steps, cost, accuracy) -> None:
        cols = {"step": np.asarray(steps, dtype=np.int64).ravel(),
                "cost": np.asarray(cost, dtype=np.float64).ravel(),
                "accuracy": np.asarray(accuracy, dtype=np.float64).ravel()}
        m = cols["step"].size
        if any(c.size != m for c in cols.values()):
            raise ValueError(f"{group} log rows differ in length: "
                             f"{[c.size for c in cols.values()]}")
        if m == 0:
            return
        g = self._file[group]
        n = g["step"].shape[0]
        for name in ("cost", "accuracy", "step"):  # step last: a set step marks a whole row
            ds = g[name]
            ds.resize((n + m,))
            ds[n:] = cols[name]

    def truncate_after(self, step: int) -> None:
        """Drop the rows with ``step`` greater than the given one in both groups (on resume)."""
        for group in GROUPS:
            g = self._file[group]
            keep = int(np.count_nonzero(g["step"][:] <= step))
            for name in FIELDS:
                g[name].resize((keep,))
        self._file.flush()

    @property
    def last_step(self) -> int | None:
        """The last training step logged, or None for an empty log."""
        ds = self._file["train/step"]
        return int(ds[-1]) if ds.shape[0] else None

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self._file.id.valid:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _create(path: Path, config_yaml: str, old: dict | None) -> h5py.File:
    """A new log file holding ``old``'s rows, if any (not yet in SWMR mode)."""
    f = h5py.File(path, "w", libver="latest")
    f.attrs["config"] = config_yaml
    for group in GROUPS:
        for name in FIELDS:
            data = old[group][name] if old else np.empty(0, _DTYPES[name])
            f.create_dataset(f"{group}/{name}", data=data.astype(_DTYPES[name]),
                             maxshape=(None,), chunks=(_CHUNKS[group],),
                             fillvalue=_FILL[name])
    return f


def read_log(path: str | Path) -> dict:
    """``{"train": {"step", "cost", "accuracy"}, "dev": {...}, "config": str}`` of a log.

    Works on a log whose writer was killed: it keeps, per group, the rows whose three values
    were all written. A truncated or damaged file is a one-line ConfigError, at once.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training log {path} does not exist; give a run directory that "
                          f"holds log.h5")
    hint = "it is damaged or truncated; delete the run directory and train it again"
    try:
        data = path.read_bytes()
        f = h5py.File(io.BytesIO(_clear_write_flags(data)), "r")
    except (OSError, ValueError) as exc:
        why = str(exc).split("(", 1)[-1].rstrip(")") if "(" in str(exc) else str(exc)
        raise ConfigError(f"{path} is not a readable HDF5 training log ({why[:120]}); "
                          f"{hint}") from None
    try:
        out = {}
        for group in GROUPS:
            try:
                cols = {name: f[f"{group}/{name}"][:] for name in FIELDS}
            except KeyError as exc:
                if "Unable to" in str(exc):  # h5py's KeyError for an object it cannot read
                    why = str(exc.args[0]).split("(")[-1].rstrip(")")
                    raise ConfigError(f"{path} is not a readable HDF5 training log (group "
                                      f"{group}: {why}); {hint}") from None
                raise ConfigError(f"{path} lacks {exc} in group {group!r}; it is not a "
                                  f"cnnvsdnn training log") from None
            n = min(c.shape[0] for c in cols.values())
            unset = np.flatnonzero(cols["step"][:n] < 0)
            if unset.size:
                n = int(unset[0])
            out[group] = {name: cols[name][:n].astype(_DTYPES[name]) for name in FIELDS}
        config = f.attrs.get("config", "")
        out["config"] = config.decode() if isinstance(config, bytes) else str(config)
    except (OSError, RuntimeError, ValueError) as exc:  # damage found while reading data
        raise ConfigError(f"{path} is not a readable HDF5 training log ({str(exc)[:120]}); "
                          f"{hint}") from None
    finally:
        f.close()
    return out


_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _clear_write_flags(data: bytes) -> bytes:
    """The file's bytes with the superblock's "open for write" flags cleared (h5clear), so that
    an ordinary (not SWMR) reader opens it. Superblock versions 2 and 3 (``libver="latest"``):
    signature, version, sizes of offsets and lengths, flags, four addresses, lookup3 checksum."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("no HDF5 signature at its start")
    if len(data) < 12 or data[8] < 2 or data[11] == 0:
        return data  # an older superblock, or not flagged: HDF5 reads it as it is
    end = 12 + 4 * data[9]  # the checksum follows the four addresses
    if len(data) < end + 4:
        raise ValueError("truncated superblock")
    if _lookup3(data[:end]) != struct.unpack("<I", data[end:end + 4])[0]:
        raise ValueError("superblock checksum mismatch")
    head = bytearray(data[:end])
    head[11] = 0
    return bytes(head) + struct.pack("<I", _lookup3(bytes(head))) + data[end + 4:]


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, as HDF5's ``H5_checksum_lookup3`` computes it.
    (No maintained Python package offers it; it is 30 lines, checked against the checksum
    HDF5 itself wrote in the tests.)"""
    m = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & m
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & m
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & m
        a = (a - c) & m ^ rot(c, 4)
        c = (c + b) & m
        b = (b - a) & m ^ rot(a, 6)
        a = (a + c) & m
        c = (c - b) & m ^ rot(b, 8)
        b = (b + a) & m
        a = (a - c) & m ^ rot(c, 16)
        c = (c + b) & m
        b = (b - a) & m ^ rot(a, 19)
        a = (a + c) & m
        c = (c - b) & m ^ rot(b, 4)
        b = (b + a) & m
        i += 12
        n -= 12
    if n == 0:
        return c
    tail = data[i:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c = (c ^ b) - rot(b, 14) & m
    a = (a ^ c) - rot(c, 11) & m
    b = (b ^ a) - rot(a, 25) & m
    c = (c ^ b) - rot(b, 16) & m
    a = (a ^ c) - rot(c, 4) & m
    b = (b ^ a) - rot(a, 14) & m
    c = (c ^ b) - rot(b, 24) & m
    return c
