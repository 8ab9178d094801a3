"""The run's figure-drawing processes (run/drawing.py): real forks, real files, real signals."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from cnnvsdnn.errors import CnnvsdnnError
from cnnvsdnn.run.drawing import FigureDrawer, can_fork
from cnnvsdnn.run.loop import _Signals

RUN_SIGNALS = _Signals.SIGNALS  # the signals a run handles, which its drawing processes ignore

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="drawing processes only on Linux"),
    pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning"),  # JAX, if a test loaded it
]


def _write(path):
    return lambda: path.write_text(str(os.getpid()))


def _fail(ex):
    def draw():
        raise ex
    return draw


def _draw(halves, cores, probs="p", log="l"):
    """Start, draw and wait, as a run does; the halves see what draw() was given."""
    seen = []

    def make(test_probs, run_log):
        seen.append((test_probs, run_log))
        return halves

    with FigureDrawer(RUN_SIGNALS) as drawer:
        drawer.start(make, cores)
        drawer.draw(probs, log)
        drawer.wait()
    return seen


@pytest.fixture
def forkable(monkeypatch):
    for name in ("jax", "tensorflow", "torch"):  # another test of this process may load them
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert can_fork()


def test_two_cores_draw_in_two_processes_other_than_the_run(tmp_path, forkable):
    a, b = tmp_path / "a", tmp_path / "b"
    _draw([[_write(a)], [_write(b)]], cores=2)
    pids = {a.read_text(), b.read_text(), str(os.getpid())}
    assert len(pids) == 3  # the gains' half, the other half and this process: all different


def test_one_core_draws_both_halves_in_one_process(tmp_path, forkable):
    a, b = tmp_path / "a", tmp_path / "b"
    _draw([[_write(a)], [_write(b)]], cores=1)
    assert a.read_text() == b.read_text() != str(os.getpid())


def test_a_loaded_threaded_runtime_draws_here(tmp_path, forkable, monkeypatch):
    """With PyTorch (or JAX, TensorFlow) loaded no fork is made: the run's process draws."""
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    a, b = tmp_path / "a", tmp_path / "b"
    seen = _draw([[_write(a)], [_write(b)]], cores=2, probs="probs", log="log")
    assert a.read_text() == b.read_text() == str(os.getpid())
    assert seen == [("probs", "log")]


@pytest.mark.parametrize("cores", [1, 2])
def test_prepare_runs_in_the_drawing_process_before_the_end_and_both_halves_see_it(
        tmp_path, forkable, cores):
    """What ``prepare`` makes (the gains figure's layout) is made while the run goes on, in the
    drawing process, and is there for the half that draws it; a failing prepare costs nothing
    but its head start."""
    ready = {}

    def prepare():
        ready["by"] = os.getpid()
        (tmp_path / "prepared").write_text(str(os.getpid()))

    def using(path):
        return lambda: path.write_text(f"{ready.get('by')} {os.getpid()}")

    with FigureDrawer(RUN_SIGNALS) as drawer:
        drawer.start(lambda p, log: [[using(tmp_path / "a")], [using(tmp_path / "b")]], cores,
                     prepare)
        deadline = time.monotonic() + 30  # made before the run hands anything over
        while not (tmp_path / "prepared").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        drawer.draw("p", "l")
        drawer.wait()
    by = (tmp_path / "prepared").read_text()
    assert by != str(os.getpid()) and "by" not in ready  # not in the run's process
    for half in "ab":
        assert (tmp_path / half).read_text().split()[0] == by

    with FigureDrawer(RUN_SIGNALS) as drawer:
        drawer.start(lambda p, log: [[_write(tmp_path / "c")], []], cores,
                     _fail(ValueError("no layout")))
        drawer.draw("p", "l")
        drawer.wait()  # no error: the drawing itself went well
    assert (tmp_path / "c").exists()


@pytest.mark.parametrize("cores,failing_half", [(2, 0), (2, 1), (1, 0)])
def test_a_drawing_failure_is_the_runs_one_line_error(tmp_path, forkable, cores, failing_half):
    """The drawing's failure is raised in the run, after the other half's file is written; an
    OSError stays an OSError (a full disk is told as any other)."""
    cases = [(CnnvsdnnError("cannot draw this"), CnnvsdnnError, "^cannot draw this$"),
             (ValueError("bad axis"), CnnvsdnnError,
              "^drawing the figures failed: ValueError: bad axis$"),
             (OSError(28, "No space left on device", "g.png"), OSError, "No space left")]
    for i, (ex, raised, match) in enumerate(cases):
        ok = tmp_path / f"ok{i}"
        halves = [[_write(ok)], [_fail(ex)]] if failing_half else [[_fail(ex)], [_write(ok)]]
        with pytest.raises(raised, match=match) as info:
            _draw(halves, cores)
        assert ok.exists()
        if raised is OSError:
            assert info.value.errno == 28 and info.value.filename == "g.png"


def test_a_run_that_ends_without_results_ends_its_drawing_process(tmp_path, forkable):
    drawer = FigureDrawer(RUN_SIGNALS)
    with drawer:
        drawer.start(lambda p, log: [[_write(tmp_path / "a")], []], cores=2)
        pid = drawer._proc.pid
    assert drawer._proc is None and not _alive(pid)  # joined: no zombie, no stray process
    assert not (tmp_path / "a").exists()


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_drawing_processes_ignore_the_runs_signals_and_die_with_it(tmp_path):
    """A Ctrl-C reaches the whole process group: the drawing process ignores it (the run
    decides). A run killed with SIGKILL takes its drawing process with it."""
    script = textwrap.dedent("""
        import os, signal, sys, time
        from cnnvsdnn.run.drawing import FigureDrawer
        from cnnvsdnn.run.loop import _Signals
        d = FigureDrawer(_Signals.SIGNALS)
        d.start(lambda p, log: [[], []], cores=2)
        print(d._proc.pid, flush=True)
        sys.stdin.readline()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    pid = int(run.stdout.readline())
    for sig in RUN_SIGNALS:
        os.kill(pid, sig)
    time.sleep(0.5)
    assert _alive(pid), "the drawing process died of a signal the run handles"
    run.stdin.write("\n")
    run.stdin.flush()
    assert run.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the drawing process outlived the run"


def test_a_drawing_process_found_dead_is_one_line(tmp_path, forkable):
    """Killed before the run's end (the OOM killer, say): the run says so in one line."""
    with FigureDrawer(RUN_SIGNALS) as drawer:
        drawer.start(lambda p, log: [[_write(tmp_path / "a")], []], cores=2)
        os.kill(drawer._proc.pid, signal.SIGKILL)
        drawer._proc.join()
        drawer.draw("p", "l")
        with pytest.raises(CnnvsdnnError, match="ended with code -9; train.figures=false"):
            drawer.wait()
    assert not (tmp_path / "a").exists()
