"""One handler for Ctrl-C and SIGTERM (`realtime/signals.py`), in-process with real signals.

The end-to-end guarantees (a signal at any moment of a real run, repeated signals while a recording
is finalized) are in test_faults.py and test_cli_live.py; these pin down the rules they rest on.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from emoview.realtime.signals import deferring_signals, handling_stop_signals, hold_signals


def send(sig: int) -> None:
    # to this (the main) thread itself, so it is handled before pthread_kill() returns to Python code;
    # os.kill(pid) may go to any thread of the process (MediaPipe's, left by earlier tests), and the
    # handler then runs a little later, outside the `pytest.raises` block
    signal.pthread_kill(threading.get_ident(), sig)


def test_sigterm_is_ctrl_c_and_outside_a_run_every_signal_raises():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with handling_stop_signals() as signals:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
            with pytest.raises(KeyboardInterrupt):
                send(sig)
        assert (signals.received, signals.held) == (3, 0)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_in_a_run_the_first_signal_raises_and_later_ones_are_held():
    with handling_stop_signals() as signals:
        signals.running()
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGINT)
        send(signal.SIGTERM)  # the run is stopping: counted, not raised
        send(signal.SIGINT)
        assert (signals.received, signals.held) == (3, 2)


def test_held_signals_stay_held_until_the_handler_is_removed_and_stop_the_next_run():
    with handling_stop_signals() as signals:
        hold_signals()  # e.g. a command writing its results
        send(signal.SIGTERM)
        assert signals.held == 1
        with pytest.raises(KeyboardInterrupt):  # a second run of the same command (bench) stops at once
            signals.running()


def test_one_handler_however_deeply_nested():
    with handling_stop_signals() as outer:
        handler = signal.getsignal(signal.SIGINT)
        with handling_stop_signals() as inner:
            assert inner is outer and signal.getsignal(signal.SIGTERM) is handler
        assert signal.getsignal(signal.SIGINT) is handler  # the inner block does not uninstall it


@pytest.fixture
def pythons_own_handler():
    """Python's Ctrl-C handler, as a program started in the foreground has it (started in the
    background by a shell, it inherits SIGINT ignored, and so would this test)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_without_a_handler_holding_is_a_no_op(pythons_own_handler):
    hold_signals()
    with pytest.raises(KeyboardInterrupt):
        send(signal.SIGINT)  # Python's own handler, untouched


def test_a_signal_in_a_deferring_block_acts_when_the_block_ends():
    finished = False
    with handling_stop_signals() as signals:
        with pytest.raises(KeyboardInterrupt):
            with deferring_signals():
                with deferring_signals():  # nested: the outermost end acts
                    send(signal.SIGTERM)
                    send(signal.SIGINT)
                finished = True  # not cut short
        assert finished and (signals.received, signals.held) == (2, 0)
        with deferring_signals():  # the signals were spent: a quiet block ends quietly
            pass
        signals.running()
        with pytest.raises(KeyboardInterrupt):  # in a run, as without the block: the first one stops it...
            with deferring_signals():
                send(signal.SIGINT)
        with deferring_signals():
            send(signal.SIGINT)  # ...and later ones are held
        assert signals.held == 1


def test_a_block_that_fails_keeps_its_error_and_the_signal_is_still_counted():
    with handling_stop_signals() as signals:
        with pytest.raises(ValueError), deferring_signals():
            send(signal.SIGTERM)
            raise ValueError("a library gave up")  # the CLI sees `received` and reports an interrupt
        assert signals.received == 1
        with deferring_signals():
            pass  # nothing left over to raise


def test_without_a_handler_deferring_is_a_no_op(pythons_own_handler):
    with pytest.raises(KeyboardInterrupt), deferring_signals():
        send(signal.SIGINT)  # Python's own handler raises at once


class Finalized:
    """Python runs `__del__` as the last reference goes, and only reports what it raises."""

    def __init__(self, action) -> None:
        self.action = action

    def __del__(self) -> None:
        self.action()


def test_a_keyboard_interrupt_python_swallowed_in_a_finalizer_is_raised_again():
    with handling_stop_signals() as signals:
        with pytest.raises(KeyboardInterrupt):
            Finalized(lambda: send(signal.SIGTERM))  # our handler raises in __del__: only reported
            time.sleep(1)  # raised again here, a moment later
        assert signals.received == 1
        signals.running()  # in a run, the one signal that stops it is raised again too...
        with pytest.raises(KeyboardInterrupt):
            Finalized(lambda: send(signal.SIGINT))
            time.sleep(1)
        send(signal.SIGINT)  # ...and the run being stopped, later ones are held
        assert (signals.received, signals.held) == (3, 1)


def test_a_swallowed_interrupt_raised_again_inside_a_deferring_block_waits_for_its_end():
    with handling_stop_signals() as signals:
        finished = False
        with pytest.raises(KeyboardInterrupt):
            Finalized(lambda: send(signal.SIGTERM))  # swallowed; raised again 10 ms later...
            with deferring_signals():
                time.sleep(0.5)  # ...which lands here
                finished = True
        assert finished and signals.received == 1


def test_after_a_signal_what_cleanup_code_raises_is_quiet_and_before_it_is_reported(monkeypatch):
    def complain():
        raise FileNotFoundError("a temporary file the interrupt had already removed")

    reports = []
    hook = lambda report: reports.append(report.exc_type)  # noqa: E731
    monkeypatch.setattr(sys, "unraisablehook", hook)
    with handling_stop_signals():
        Finalized(complain)
        assert reports == [FileNotFoundError]  # a bug of ours or a library's, as Python says it
        with pytest.raises(KeyboardInterrupt):
            send(signal.SIGINT)
        Finalized(complain)
        assert reports == [FileNotFoundError]  # the interrupt cut it short: not worth a traceback
    assert sys.unraisablehook is hook  # given back as the handler goes


def test_python_m_emoview_exits_with_its_code_after_an_interrupt_caught_inside_an_exec(tmp_path):
    """A Ctrl-C that ended an exec() of source text (a dataclass being made as a module loads) and
    was caught must not turn `python -m emoview`'s exit code into death by SIGINT."""
    (tmp_path / "emoview_interrupted_in_exec.py").write_text(
        "import runpy\n"
        "from emoview.realtime.commands import cli\n"
        "def main():\n"
        "    try:\n"
        "        exec('raise KeyboardInterrupt')  # where a dataclass makes its __init__\n"
        "    except KeyboardInterrupt:  # as the CLI catches it\n"
        "        return 130\n"
        "cli.main = main\n"
        "runpy.run_module('emoview', run_name='__main__')  # what `python -m emoview` runs\n"
    )
    done = subprocess.run([sys.executable, "-m", "emoview_interrupted_in_exec"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 130, (done.returncode, done.stderr)
