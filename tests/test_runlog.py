"""log.h5: layout, round trip, resume/truncate, and survival of a SIGKILLed writer."""

import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from cnnvsdnn.errors import ConfigError
from cnnvsdnn.run.log import RunLog, read_log

CONFIG = "dataset: mnist\nmodel: dnn\nseed: 0\n"


def _fill(log, start, stop, eval_every=100):
    steps = np.arange(start, stop)
    log.append_train(steps, 1.0 / steps, steps / stop)
    for s in steps[steps % eval_every == 0]:
        log.append_dev(int(s), 2.0 / s, s / (2 * stop))
    log.flush()  # as the training loop does after each group of appends


def test_layout_and_round_trip(tmp_path):
    path = tmp_path / "log.h5"
    with RunLog(path, CONFIG) as log:
        _fill(log, 1, 101)
        _fill(log, 101, 351)
        assert log.last_step == 350
    with h5py.File(path, "r") as f:
        for group in ("train", "dev"):
            for name in ("step", "cost", "accuracy"):
                ds = f[f"{group}/{name}"]
                assert ds.ndim == 1 and ds.maxshape == (None,) and ds.chunks is not None
        assert f.attrs["config"] == CONFIG
    out = read_log(path)
    assert out["config"] == CONFIG
    np.testing.assert_array_equal(out["train"]["step"], np.arange(1, 351))
    np.testing.assert_allclose(out["train"]["cost"], 1.0 / np.arange(1, 351))
    np.testing.assert_array_equal(out["dev"]["step"], [100, 200, 300])
    np.testing.assert_allclose(out["dev"]["accuracy"], [100 / 202, 200 / 702, 300 / 702])
    assert out["train"]["step"].dtype == np.int64


def test_readable_while_writing(tmp_path):
    path = tmp_path / "log.h5"
    with RunLog(path, CONFIG) as log:
        _fill(log, 1, 201)
        out = read_log(path)  # a watcher reads the live file
        assert len(out["train"]["step"]) == 200 and len(out["dev"]["step"]) == 2


def test_resume_truncates_and_continues(tmp_path):
    path = tmp_path / "log.h5"
    with RunLog(path, CONFIG) as log:
        _fill(log, 1, 451)
    with RunLog(path, CONFIG + "resume: true\n", resume=True) as log:
        assert log.last_step == 450
        log.truncate_after(300)
        assert log.last_step == 300
        _fill(log, 301, 501)
    out = read_log(path)
    np.testing.assert_array_equal(out["train"]["step"], np.arange(1, 501))
    np.testing.assert_array_equal(out["dev"]["step"], [100, 200, 300, 400, 500])
    np.testing.assert_allclose(out["train"]["cost"], 1.0 / np.arange(1, 501))
    assert out["config"].endswith("resume: true\n")


def test_without_resume_replaces(tmp_path):
    path = tmp_path / "log.h5"
    with RunLog(path, CONFIG) as log:
        _fill(log, 1, 101)
    with RunLog(path, CONFIG):
        pass
    assert read_log(path)["train"]["step"].size == 0


def test_rows_must_match(tmp_path):
    with RunLog(tmp_path / "log.h5", CONFIG) as log, pytest.raises(ValueError):
        log.append_train(np.arange(3), np.zeros(3), np.zeros(2))


def test_missing_or_bad_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_log(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ConfigError, match="not a readable HDF5"):
        read_log(bad)


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from cnnvsdnn.run.log import RunLog
    log = RunLog(sys.argv[1], "seed: 0\\n")
    step = 0
    while True:
        steps = np.arange(step + 1, step + 101)
        log.append_train(steps, np.log(steps), 1.0 / steps)
        step += 100
        log.append_dev(step, 0.5, 0.25)
        log.flush()
        if step == 2000:
            print("ready", flush=True)
""")


def test_survives_sigkill_and_resumes(tmp_path):
    path = tmp_path / "log.h5"
    with subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(0.3)  # let it write on: it is mid-append at the kill most likely
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    out = read_log(path)
    train, dev = out["train"], out["dev"]
    n = len(train["step"])
    assert n >= 2000 and len(train["cost"]) == n and len(train["accuracy"]) == n
    np.testing.assert_array_equal(train["step"], np.arange(1, n + 1))
    np.testing.assert_allclose(train["cost"], np.log(train["step"]))
    assert len(dev["step"]) == len(dev["cost"]) == len(dev["accuracy"]) >= 20
    assert out["config"] == "seed: 0\n"

    # The killed file is flagged "open for write"; resume must still work.
    with RunLog(path, "seed: 0\n", resume=True) as log:
        log.truncate_after(1000)
        log.append_train(np.arange(1001, 1011), np.zeros(10), np.zeros(10))
    out = read_log(path)
    np.testing.assert_array_equal(out["train"]["step"], np.arange(1, 1011))
    np.testing.assert_array_equal(out["dev"]["step"], np.arange(100, 1001, 100))
