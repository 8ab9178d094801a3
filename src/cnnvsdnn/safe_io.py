"""Writing files so that a crash, a full disk or a bad path never leaves a torn or stray file.

Every file the program writes goes through :func:`atomic_write`: the bytes go to a temporary
file beside the target, which is synced and renamed over the target only when complete, and
removed when anything fails; an ``OSError`` (no space, no permission, a folder in the way)
becomes one line that names the path. :func:`check_output` vets a user-given output path
before any work is done.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import CnnvsdnnError, ConfigError

_HINTS = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space",
          errno.EACCES: "choose a writable place", errno.EPERM: "choose a writable place",
          errno.EROFS: "choose a writable place", errno.EISDIR: "it is a folder; give a file",
          errno.ENOTDIR: "a part of the path is a file, not a folder",
          errno.ENOENT: "its folder does not exist"}


def io_error(ex: OSError, path: Path, what: str = "write") -> CnnvsdnnError:
    """An ``OSError`` as a one-line error naming ``path`` and what to do."""
    hint = _HINTS.get(ex.errno, "check the path and the disk")
    return CnnvsdnnError(f"cannot {what} {path} ({ex.strerror or ex}); {hint}")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], sync: bool = False) -> Path:
    """Write ``path`` with ``write(f)`` into a temporary file, then rename it into place.
    ``sync``: fsync before the rename (checkpoints: the rename must not outlive the data)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as ex:
        tmp.unlink(missing_ok=True)
        raise io_error(ex, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))


def check_output(path: str | Path, *, force: bool = False, what: str = "output file",
                 flag: str = "the output path") -> Path:
    """A user-given file to write: not a folder, in a writable folder, and (unless ``force``)
    not an existing file, which would be lost. ConfigError (one line) otherwise."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"the {what} {path} is a folder; give a file name for {flag}")
    parent = path.parent.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the {what} {path}: {parent} is not a writable folder; "
                          f"choose another {flag}")
    if path.exists() and not force:
        raise ConfigError(f"the {what} {path} exists; choose another {flag}, or add --force "
                          f"to replace it")
    return path


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """A user-given folder to write into: a folder (or creatable), and writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a folder; choose another {flag}")
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write into {path}: {p} is not a writable folder; choose "
                          f"another {flag}")
    return path
