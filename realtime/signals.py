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
- `received` counts every signal: when a library swallows our KeyboardInterrupt and raises its own
  error instead (pybind11 turns one mid-import into "ImportError: initialization failed"), the CLI
  still reports an interrupt, not an internal error.
"""

from __future__ import annotations

import contextlib
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    def __init__(self) -> None:
        self.received = 0  # every signal since the handler was installed
        self.held = 0  # those that arrived while holding
        self.holding = False
        self._in_run = False

    def __call__(self, signum, frame) -> None:
        self.received += 1
        if self.holding:
            self.held += 1
            return
        if self._in_run:  # the run is stopping now: nothing may cut its finalization short
            self.holding = True
        raise KeyboardInterrupt

    def running(self) -> None:
        """A run starts: the first signal raises, later ones are held. A signal held before it
        (between two runs of one command) stops it at once."""
        self._in_run = True
        self.holding = False
        if self.held:
            self.holding = True
            raise KeyboardInterrupt

    def hold(self) -> None:
        """From now until the handler is removed, signals are only counted."""
        self.holding = True


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
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, handler)
        _installed = handler
        yield handler
    finally:
        _installed = None
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if exiting else old)


def hold_signals() -> None:
    """Hold signals from now on (see `StopSignals.hold`); nothing to do when no handler is installed."""
    if _installed is not None:
        _installed.hold()
