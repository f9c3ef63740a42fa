"""Result files are whole or absent: a failing write leaves the previous file and no stray temp file."""

from __future__ import annotations

import os

import pytest

from emoview.realtime.files import unwritable, write_text, write_with


def test_write_text_replaces_whole_file_with_normal_permissions(tmp_path):
    target = tmp_path / "timeline.json"
    target.write_text("old")
    write_text(target, '{"new": 1}\n')
    assert target.read_text() == '{"new": 1}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.json"]


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "timeline.png"
    target.write_text("previous")

    def half_then_fail(tmp):
        tmp.write_text("half a pic")
        raise KeyboardInterrupt  # a second Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        write_with(target, half_then_fail)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]


def test_unwritable_tries_for_real(tmp_path):
    assert unwritable(tmp_path) is None
    assert unwritable(tmp_path / "missing")  # a folder that is not there cannot take a file


def test_a_target_that_is_not_a_regular_file_is_written_to_not_replaced(tmp_path):
    """`--json /dev/null` as root once renamed a file onto /dev/null; a FIFO stands in for it here."""
    import stat
    import threading

    fifo = tmp_path / "results.pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_text(fifo, '{"faces": []}\n')
    reader.join(timeout=10)
    assert received == ['{"faces": []}\n']
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["results.pipe"]
