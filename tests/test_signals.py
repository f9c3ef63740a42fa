"""One handler for Ctrl-C and SIGTERM (`realtime/signals.py`), in-process with real signals.

The end-to-end guarantees (a signal at any moment of a real run, repeated signals while a recording
is finalized) are in test_faults.py and test_cli_live.py; these pin down the rules they rest on.
"""

from __future__ import annotations

import signal
import threading

import pytest

from emoview.realtime.signals import handling_stop_signals, hold_signals


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


def test_without_a_handler_holding_is_a_no_op():
    hold_signals()
    with pytest.raises(KeyboardInterrupt):
        send(signal.SIGINT)  # pytest's own handler, untouched
