"""A run's figures, drawn by processes forked at the start of the run.

matplotlib takes ~0.8 s to import and a run's four figures ~2-3 s to draw on one core: together
about a third of a 2000-step MNIST DNN run if drawn at its end. So :meth:`FigureDrawer.start`
forks a process as soon as the data is loaded, before the engine starts its threads (a fork
copies only the calling thread; in a sweep's later points the earlier points' pool exists but
idles, and the drawing processes never call into it). That process imports matplotlib and
draws a small figure while the run compiles and trains, lays out what it can of the figures
before their data (``prepare``: their axes, ticks, labels and colour bar), then waits. At
the end, :meth:`FigureDrawer.draw` hands it the test predictions and the log and returns at
once; the run evaluates its other splits and writes its files meanwhile, and
:meth:`FigureDrawer.wait` collects the outcome. With two cores the drawing process forks once
more (it has no threads of its own) and the two draw one half of the figures each.

The drawing processes ignore the signals the run handles (a Ctrl-C reaches the whole process
group; the run decides what to do) and die with the run (Linux's ``PR_SET_PDEATHSIG``): none
outlives it. Where a fork is unavailable or unsafe -- not Linux, or JAX, TensorFlow or PyTorch
already loaded, whose threads a fork would leave half-copied -- the figures are drawn in the
run's own process, one after the other.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import warnings
from collections.abc import Callable

from ..errors import CnnvsdnnError

# Libraries whose own threads make a fork unsafe (JAX says so when one happens).
_THREADED_RUNTIMES = ("jax", "tensorflow", "torch")
_PR_SET_PDEATHSIG = 1

# halves(test_probs, log) -> two lists of calls that draw and write one figure each
Halves = Callable[[object, object], list[list[Callable[[], object]]]]


def can_fork() -> bool:
    """True where the figures can be drawn by forked processes (see the module's text)."""
    return (sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
            and not any(m in sys.modules for m in _THREADED_RUNTIMES))


class FigureDrawer:
    """Draws a run's figures; a context manager that ends its processes on the way out.
    ``signals``: those the run handles (``run/loop.py``), which the drawing processes ignore."""

    def __init__(self, signals: tuple):
        self._signals = tuple(signals)
        self._halves = None
        self._proc = self._conn = None
        self._sent = False
        self._failure = None  # of a drawing made here, or of a process found dead

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def started(self) -> bool:
        return self._halves is not None

    def start(self, halves: Halves, cores: int, prepare: Callable[[], object] | None = None
              ) -> None:
        """Get ready to draw ``halves(test_probs, log)``: in a forked process when
        :func:`can_fork`, in two when ``cores`` >= 2. That process calls ``prepare()`` while
        the run trains (what it makes is there for ``halves``; drawn here, it is not called)."""
        self._halves = halves
        if not can_fork():
            return
        ctx = multiprocessing.get_context("fork")
        self._conn, there = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="cnnvsdnn-figures",
                                 args=(there, self._conn, os.getpid(), self._signals, halves,
                                       prepare, cores >= 2))
        # the run's signals wait until the new process ignores them (else one arriving in
        # between would run the run's handler there)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, self._signals)
        try:
            with warnings.catch_warnings():  # Python 3.12+ warns of forking a threaded process
                warnings.simplefilter("ignore", DeprecationWarning)
                self._proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        there.close()

    def draw(self, test_probs, log) -> None:
        """Start drawing (returns at once when a process draws; else draws here)."""
        if self._halves is None:
            return
        if self._proc is None:
            self._failure = _attempt([d for half in self._halves(test_probs, log) for d in half])
            return
        try:
            self._conn.send((test_probs, log))
            self._sent = True
        except OSError:  # it died (the OOM killer, say): wait() says so
            self._failure = _died(self._proc)

    def wait(self) -> None:
        """Wait for the figures; the drawing's failure is raised here as one error (an
        OSError stays an OSError, so a full disk is told as any other)."""
        failure, self._failure = self._failure, None
        if self._sent:
            try:
                failure = self._conn.recv()
            except EOFError:  # killed (the OOM killer, say)
                failure = _died(self._proc)
            self._sent = False
            self.close()
        if failure is not None and failure[0] == "os":
            raise OSError(*failure[1:])
        if failure is not None:
            raise CnnvsdnnError(failure[1])

    def close(self) -> None:
        """End the drawing process: closing the pipe ends its wait; a drawing in progress
        finishes its files first (no torn or temporary file is left)."""
        if self._proc is None:
            return
        self._conn.close()
        self._proc.join()
        self._proc = self._conn = None


def _died(proc) -> tuple[str, str]:
    """The failure of a drawing process that ended without a word."""
    proc.join()
    return ("error", f"the process drawing the figures ended with code {proc.exitcode}; "
                     f"train.figures=false runs without figures")


def _detach(parent: int, signals: tuple) -> None:
    """In a drawing process: ignore the run's ``signals``, and die with ``parent``, the process
    that forked this one (checked after asking, in case it died before)."""
    for s in signals:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: the pipe's end still ends the wait
        pass
    if os.getppid() != parent:
        os._exit(0)


def _serve(conn, runs_end, parent: int, signals: tuple, halves: Halves, prepare,
           two: bool) -> None:
    """The drawing process: warm matplotlib up, prepare, wait for the run's end, draw, report."""
    runs_end.close()  # the fork copied it: open here, the run's close would never end recv
    _detach(parent, signals)
    from ..evaluation.figures import warm_up

    warm_up()
    if prepare is not None:
        _attempt([prepare])  # a failure here is met again, and told, when that figure is drawn
    try:
        test_probs, log = conn.recv()
    except EOFError:  # the run ended without results: nothing to draw
        return
    first, second = halves(test_probs, log)
    failure = None
    if two:
        ctx = multiprocessing.get_context("fork")
        here, there = ctx.Pipe(duplex=False)
        # (the signals are ignored here already, and a fork keeps that)
        helper = ctx.Process(target=_draw_half, args=(first, there, os.getpid(), signals),
                             name="cnnvsdnn-figures")
        helper.start()
        there.close()
        failure = _attempt(second)
        try:
            failure = here.recv() or failure
        except EOFError:
            failure = failure or _died(helper)
        helper.join()
    else:
        failure = _attempt(first + second)
    try:
        conn.send(failure)
    except OSError:  # the run is gone
        pass


def _draw_half(draws: list, conn, parent: int, signals: tuple) -> None:
    _detach(parent, signals)
    conn.send(_attempt(draws))


def _attempt(draws: list):
    """Run every one of ``draws`` (one failed figure does not cost the others); None, or the
    first failure as a message the run raises again."""
    failure = None
    for draw in draws:
        try:
            draw()
        except OSError as ex:
            failure = failure or ("os", ex.errno, ex.strerror, ex.filename)
        except Exception as ex:  # one line for the run, never a traceback
            failure = failure or ("error", str(ex) if isinstance(ex, CnnvsdnnError) else
                                  f"drawing the figures failed: {type(ex).__name__}: {ex}")
    return failure
