"""`emoview --images`: one canvas for images of every size, face ids per image, a window that waits."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from emoview.realtime.commands import live
from emoview.realtime.session import Session
from emoview.realtime.sources import ImageFolderSource

from conftest import REPO


def emoview(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "emoview", *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture
def photos(tmp_path, samples) -> Path:
    """Mixed sizes: a 1000x667 group photo, a 572x562 portrait, a small crop, a 2400x1000 panorama."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(samples / "multi_face.jpg", folder / "a_group.jpg")
    portrait = cv2.imread(str(samples / "single_face.jpg"))
    cv2.imwrite(str(folder / "b_portrait.png"), portrait)
    cv2.imwrite(str(folder / "c_crop.png"), portrait[150:420, 170:400])
    return folder


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(container.streams.video[0])]


def test_a_recording_of_mixed_sizes_uses_the_largest_canvas_and_letterboxes(photos, tmp_path, random_model, face_model):
    out = tmp_path / "photos.mp4"
    run = emoview("--images", photos, "--record", out, "--no-display", "--model", random_model, "--face-model", face_model)
    assert run.returncode == 0, run.stderr
    frames = frames_of(out)
    assert len(frames) == 3 and {f.shape for f in frames} == {(666, 1000, 3)}  # the group photo's size, even
    portrait = frames[1]  # 572x562 scaled to 666 high: 678 wide, centred on black
    assert portrait[:, :150].max() < 40 and portrait[:, -150:].max() < 40
    assert portrait[:, 200:800].mean() > 60
    crop = frames[2]  # 230x270: scaled up to the canvas height, not drawn small in a corner
    assert crop[:, 420:580].mean() > 60 and crop[:, :150].max() < 40


def test_the_canvas_is_capped_at_1920x1080(tmp_path, samples):
    folder = tmp_path / "wide"
    folder.mkdir()
    cv2.imwrite(str(folder / "panorama.jpg"), cv2.resize(cv2.imread(str(samples / "multi_face.jpg")), (2400, 1000)))
    cv2.imwrite(str(folder / "tall.jpg"), np.zeros((1500, 300, 3), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    with ImageFolderSource(folder) as source:
        width, height = source.canvas_size()
    assert (width, height) == (1728, 1080)  # the widest and the tallest, 2400x1500, scaled by 1080/1500
    assert width % 2 == 0 and height % 2 == 0


def test_face_ids_restart_with_every_image(tmp_path, samples, random_model, face_model):
    folder = tmp_path / "twice"
    folder.mkdir()
    for name in ("1.jpg", "2.jpg"):
        shutil.copy(samples / "multi_face.jpg", folder / name)
    parser = argparse.ArgumentParser()
    live.configure(parser)
    args = parser.parse_args(["--images", str(folder), "--model", str(random_model), "--face-model", str(face_model)])
    ids = []
    with contextlib.ExitStack() as stack:
        analyzer = live.open_analyzer(args, stack, stills=True)
        source = stack.enter_context(ImageFolderSource(folder))
        Session(source, analyzer, on_result=lambda r: ids.append([face.id for face in r.faces])).run()
    assert ids == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]


@pytest.mark.parametrize("argv,message", [
    (["--seconds", "0"], "must be more than 0 seconds"),
    (["--seconds", "soon"], "is not a number of seconds"),
])
def test_seconds_is_validated(samples, argv, message, tmp_path):
    run = emoview("--images", tmp_path, *argv)
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.splitlines()) == 1


def test_seconds_belongs_to_images(samples, random_model, face_model):
    run = emoview("--video", samples / "single_face.mp4", "--seconds", "2", "--no-display", "--model", random_model, "--face-model", face_model)
    assert run.returncode == 2 and "--seconds is how long each image of --images stays" in run.stderr


def test_seconds_sets_how_long_each_image_holds_in_a_recording(photos, tmp_path, random_model, face_model):
    out = tmp_path / "slow.mp4"
    run = emoview("--images", photos, "--seconds", "2.5", "--record", out, "--no-display", "--model", random_model, "--face-model", face_model)
    assert run.returncode == 0, run.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(stream)]
    assert times == pytest.approx([0.0, 2.5, 5.0])


@pytest.mark.skipif(not shutil.which("xvfb-run") or not shutil.which("xdotool"), reason="needs xvfb-run and xdotool (CI installs them)")
def test_window_waits_for_keys_and_pages_back(photos, tmp_path, random_model, face_model):
    """space: next; left: back to an image already shown (not analysed again; at the first, it
    stays); right: forward through those; q: quit. Three analysed images and a stop by the user
    prove the paging: without it, the same keys would run past the last image to the end of input."""
    err = tmp_path / "err.txt"
    script = f"""
{sys.executable} -m emoview --images {photos} --model {random_model} --face-model {face_model} 2>{err} &
pid=$!
for i in $(seq 1 300); do w=$(xdotool search --name 'emoview - ' 2>/dev/null | head -1); [ -n "$w" ] && break; sleep 0.1; done
[ -n "$w" ] || {{ echo "no window"; kill $pid; exit 3; }}
press() {{ xdotool windowactivate --sync $w key $1 2>/dev/null || xdotool key --window $w $1; }}
showing() {{ for i in $(seq 1 1800); do xdotool search --name "image $1\\$" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "image $1 never shown"; kill $pid; exit 4; }}
showing 1; press space; showing 2; press Left; showing 1; press Left; sleep 1; press Right; showing 2; press space; showing 3; press q
wait $pid
echo "exit=$?"
"""
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", "bash", "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    log = err.read_text() if err.exists() else ""
    assert "exit=0" in run.stdout, run.stdout + run.stderr + log
    assert "3 frames (stopped by user)" in log, log
