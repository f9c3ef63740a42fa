"""Ctrl-C and SIGTERM: one handler for the process, the same for every command and for a Session
run from Python.

- SIGTERM (kill, systemd, docker stop) is Ctrl-C: both raise KeyboardInterrupt, which every command
  turns into finalized outputs, one line and exit 130. SIGINT is set explicitly: a process started
  in the background inherits it ignored, and `kill -INT` must still stop it.
- Once a run is stopping, signals are only counted ("held"), never raised: from the first signal of
  a run (`running()`), and from `hold()` (a run is finalizing its recording; a command is writing
  its results or printing its report) until the handler is removed. So no second impatient Ctrl-C
  can leave a broken file or cost the report; whoever installed the handler reads `held` and
  exits 130. Outside a run a signal is raised every time, so a library that swallowed the first
  one cannot make the program deaf to the next.
- `deferring_signals()`: a signal landing in the block acts at its end. For work a
  KeyboardInterrupt must not cut in two: MediaPipe's create call starts a graph, and raised as it
  returns, before Python holds the graph, the interrupt left it running with nobody to close it
  (its threads then logged over our last line).
- `received` counts every signal: when a library swallows our KeyboardInterrupt and raises its own
  error instead (pybind11 turns one mid-import into "ImportError: initialization failed"), the CLI
  still reports an interrupt, not an internal error.
- Python does not raise an exception from a `__del__` or a weakref callback, it reports it
  ("Exception ignored in ...", with a traceback). Our KeyboardInterrupt landing in one (an import's
  module-lock callback) was lost: the run went on to its end and exited 0. It is raised again, in
  the main thread, a moment later. Other such reports after a stop signal are the complaints of
  cleanup code the interrupt cut short (ctypes' temporary file closed twice), and stay quiet.
  Raised again inside a `deferring()` block, it too waits for the block's end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    def __init__(self) -> None:
        self.received = 0  # every signal since the handler was installed
        self.held = 0  # those that arrived while holding
        self.holding = False
        self._in_run = False
        self._deferring = 0  # nesting depth of `deferring()` blocks
        self._deferred = False  # a signal arrived in one
        self._finalizing = False  # `hold()` was called
        self._again = False  # a KeyboardInterrupt Python swallowed is to be raised again
        self.report = sys.unraisablehook  # how other unraisable exceptions are reported

    def __call__(self, signum, frame) -> None:
        if self._again:  # not counted again: `received` has it from its first landing
            self._again = False
            if self._finalizing:
                return
            if self._deferring:
                self._deferred = True
                return
            raise KeyboardInterrupt
        self.received += 1
        if self.holding:
            self.held += 1
            return
        if self._deferring:
            self._deferred = True
            return
        self._stop()

    def _stop(self) -> None:
        if self._in_run:  # the run is stopping now: nothing may cut its finalization short
            self.holding = True
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferring(self):
        """Signals in the block take effect at its end (see `deferring_signals`)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            due = self._deferred and not self._deferring
            if due:
                self._deferred = False
        if due:  # not when the block raised: its error goes up, and `received` tells the CLI
            if self.holding:
                self.held += 1
            else:
                self._stop()

    def running(self) -> None:
        """A run starts: the first signal raises, later ones are held. A signal held before it
        (between two runs of one command) stops it at once."""
        self._in_run = True
        self.holding = self._finalizing = False
        if self.held:
            self.holding = True
            raise KeyboardInterrupt

    def hold(self) -> None:
        """From now until the handler is removed, signals are only counted."""
        self.holding = self._finalizing = True

    def unraisable(self, report) -> None:
        """`sys.unraisablehook` while the handler is installed (see the module's docstring)."""
        if issubclass(report.exc_type, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
            # from another thread, once the hook has returned: run from here, the handler would
            # raise inside the hook, and Python would report that too. Should it land in a finalizer
            # again, that one is reported here again.
            self._again = True
            again = threading.Timer(0.01, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
            again.daemon = True
            again.start()
        elif not self.received or os.environ.get("EMOVIEW_DEBUG"):
            self.report(report)


_installed: StopSignals | None = None


@contextlib.contextmanager
def handling_stop_signals(exiting: bool = False):
    """The process's StopSignals for the block: installed here, or the one already installed.

    Signal handlers live in the main thread only; elsewhere the block gets a handler that never
    fires. `exiting`: the program ends after the block, so late signals are ignored rather than
    allowed to change the exit code of a finished run while the interpreter shuts down.
    """
    global _installed
    if _installed is not None or threading.current_thread() is not threading.main_thread():
        yield _installed or StopSignals()
        return
    handler = StopSignals()
    previous: dict[int, object] = {}
    try:  # a signal landing between the two installs still gets both handlers restored
        sys.unraisablehook = handler.unraisable
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, handler)
        _installed = handler
        yield handler
    finally:
        _installed = None
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if exiting else old)
        if not exiting:  # exiting, the interpreter's shutdown may still report what the interrupt cut short
            sys.unraisablehook = handler.report


def deferring_signals():
    """A block that a stop signal cannot cut short; the signal acts when the block ends. Only where
    our handler runs (the main thread, with it installed); elsewhere the block is plain."""
    if _installed is None or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _installed.deferring()


def hold_signals() -> None:
    """Hold signals from now on (see `StopSignals.hold`); nothing to do when no handler is installed."""
    if _installed is not None:
        _installed.hold()
