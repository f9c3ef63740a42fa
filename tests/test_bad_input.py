"""The bad-input matrix: every row is the real `emoview` CLI in a subprocess, as a user runs it.

An error row must exit non-zero (2) with exactly one line on stderr that says what is wrong and,
after a ';', what to do, and never a Python traceback; nothing is filtered out of stderr, so a
native library (MediaPipe, OpenCV, FFmpeg) writing to it fails the row too. Damaged videos and
folders with unreadable images are not errors: what can be read is analysed and recorded, with a
warning, exit 0.

How the awkward rows are made for real:
- camera that opens but sends no frames: `--camera` takes anything OpenCV opens as a stream; an
  mp4 cut right after its index (moov) opens (isOpened) and never decodes a frame, which drives
  the real CameraSource start-up wait exactly as a dead webcam or a silent stream does.
- truncated / corrupt-in-the-middle videos: a sample remuxed with its index first (as downloads
  and web videos are), then cut at 60 % or overwritten with random bytes in the middle.
- `--record` folder not writable: a read-only tmpfs mounted for the test (we are root: os.access
  and chmod cannot stop root); a plain chmod 555 folder when not root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

REPO = Path(__file__).resolve().parents[1]


def emoview(*args, timeout=240):
    env = {k: v for k, v in os.environ.items() if k != "EMOVIEW_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "emoview", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env,
    )


def one_line_error(run, *patterns) -> str:
    """Exit 2, one stderr line `emoview...: error: <what is wrong>; <what to do>`, no traceback."""
    lines = run.stderr.splitlines()
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{run.stderr}"
    assert "Traceback" not in run.stderr + run.stdout
    line = lines[0]
    assert re.match(r"^emoview( \w+)?: error: ", line), line
    message = line.split(": error: ", 1)[1]
    wrong, _, todo = message.partition("; ")
    assert wrong and todo, f"the message must say what is wrong; what to do: {line}"
    for pattern in patterns:
        assert re.search(pattern, line), f"{pattern!r} not in {line!r}"
    return line


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


# -- inputs made for the matrix ----------------------------------------------------------------


def remux_index_first(src: Path, dst: Path) -> bytes:
    """The same video with its moov (index) at the front, as web and camera-app videos are."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)
    return dst.read_bytes()


@pytest.fixture(scope="module")
def media(tmp_path_factory, samples):
    d = tmp_path_factory.mktemp("media")
    data = remux_index_first(samples / "single_face.mp4", d / "whole.mp4")
    mdat = data.index(b"mdat") - 4
    assert data.index(b"moov") < mdat  # index first: a cut keeps what comes before it readable
    (d / "truncated.mp4").write_bytes(data[: int(len(data) * 0.6)])
    middle = mdat + (len(data) - mdat) // 2
    (d / "corrupt.mp4").write_bytes(data[:middle] + os.urandom(20_000) + data[middle + 20_000 :])
    (d / "no_frames.mp4").write_bytes(data[: mdat + 8])  # index and an empty media box
    original = (samples / "single_face.mp4").read_bytes()  # index last, as most cameras write
    (d / "cut_before_index.mp4").write_bytes(original[: len(original) // 2])
    (d / "text.mp4").write_text("this is not a video\n")
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory, random_model, face_model):
    """Broken emotion and face models next to the good ones."""
    import onnx
    from onnx import TensorProto, helper

    from emoview.realtime.spec import METADATA_KEY

    d = tmp_path_factory.mktemp("models")
    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "time", 8])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", "time", 8])
    graph = helper.make_graph([helper.make_node("Identity", ["features"], ["probabilities"])], "plain", [x], [y])
    plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    plain.ir_version = 8
    onnx.checker.check_model(plain)
    onnx.save(plain, d / "no_metadata.onnx")

    future = onnx.load(random_model)
    entry = next(p for p in future.metadata_props if p.key == METADATA_KEY)
    spec = json.loads(entry.value)
    spec["version"] = 99
    entry.value = json.dumps(spec)
    onnx.save(future, d / "future_spec.onnx")

    (d / "notes.onnx").write_text("not a model\n")
    blob = face_model.read_bytes()
    (d / "truncated.task").write_bytes(blob[: len(blob) // 3])
    (d / "tampered.task").write_bytes(blob[:1000] + bytes([blob[1000] ^ 0xFF]) + blob[1001:])
    return d


@contextlib.contextmanager
def read_only_folder(path: Path):
    """A folder nobody may write to, root included: a read-only tmpfs (or chmod 555 when not root)."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def live(face_model, random_model):
    """`emoview` (the live command) headless, with the test models unless a row overrides them."""

    def run(*args, model=None, face=None):
        return emoview(*args, "--no-display", "--model", model or random_model, "--face-model", face or face_model)

    return run


# -- cameras and videos ----------------------------------------------------------------------


def test_camera_that_does_not_exist(live):
    one_line_error(live("--camera", "42"), r"camera 42 could not be opened", r"--camera|--video")


def test_camera_that_opens_but_sends_no_frames(live, media):
    one_line_error(live("--camera", media / "no_frames.mp4"), r"opened but sent no frames", r"check the camera")


def test_video_missing(live, tmp_path):
    one_line_error(live("--video", tmp_path / "nope.mp4"), r"nope\.mp4 does not exist", r"check the path")


def test_video_is_a_folder(live, tmp_path):
    one_line_error(live("--video", tmp_path), r"is a folder", r"--images")


def test_video_is_not_a_video(live, media):
    one_line_error(live("--video", media / "text.mp4"), r"text\.mp4 cannot be opened as a video", r"another file")


def test_video_cut_before_its_index_cannot_be_read(live, media):
    # nothing decodable survives when a camera-style file (index at the end) loses its end
    one_line_error(live("--video", media / "cut_before_index.mp4"), r"cannot be opened as a video|no readable video frames")


@pytest.mark.parametrize("name", ["truncated.mp4", "corrupt.mp4"])
def test_damaged_video_is_analysed_and_recorded_up_to_the_damage(live, media, tmp_path, name):
    out = tmp_path / "out.mp4"
    run = live("--video", media / name, "--record", out)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 3, run.stderr  # summary, recording, warning: no native decoder noise
    analysed = int(re.match(r"(\d+) frames \(end of input\)", lines[0]).group(1))
    assert 0 < analysed < 72
    assert lines[1].startswith(f"recorded {analysed} frames to ")
    assert re.fullmatch(rf"warning: {name} ended after {analysed} of 72 frames: the file is truncated or damaged; .*", lines[2])
    assert frames_in(out) == analysed


def test_image_folder_with_unreadable_files_skips_and_counts_them(live, samples, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(samples / "single_face.jpg", folder / "a.jpg")
    shutil.copy(samples / "multi_face.jpg", folder / "b.jpg")
    (folder / "c.png").write_text("not an image")
    (folder / "d.jpg").write_bytes((samples / "single_face.jpg").read_bytes()[:1500])  # cut short
    out = tmp_path / "out.mp4"
    run = live("--images", folder, "--record", out)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert re.search(r"^2 frames \(end of input\)", run.stderr, re.M)
    assert re.search(r"^skipped 2 unreadable image\(s\), e\.g\. .*c\.png$", run.stderr, re.M)
    assert frames_in(out) == 2


def test_image_folder_with_nothing_readable(live, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_text("no")
    (folder / "b.png").write_bytes(b"\x89PNG broken")
    # with --record: without it a note says only the summary will be printed, before any image is read
    one_line_error(live("--images", folder, "--record", tmp_path / "out.mp4"), r"none of the 2 image files .* could be read")
    assert not (tmp_path / "out.mp4").exists()


# -- the recording ------------------------------------------------------------------------------


def test_record_to_an_existing_file_is_refused_without_overwrite(live, samples, tmp_path):
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"keep me")
    one_line_error(live("--images", samples / "single_face.jpg", "--record", out), r"already exists", r"--overwrite")
    assert out.read_bytes() == b"keep me"


def test_record_overwrite_replaces_the_file(live, samples, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(samples / "single_face.jpg", folder)
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"old")
    run = live("--images", folder, "--record", out, "--overwrite")
    assert run.returncode == 0, run.stderr
    assert frames_in(out) == 1


def test_record_into_a_read_only_folder(live, samples, tmp_path):
    with read_only_folder(tmp_path / "ro") as folder:
        one_line_error(live("--video", samples / "single_face.mp4", "--record", folder / "out.mp4"),
                       r"cannot record to .*out\.mp4", r"choose another path")


def test_record_into_a_missing_folder(live, samples, tmp_path):
    one_line_error(live("--video", samples / "single_face.mp4", "--record", tmp_path / "no" / "out.mp4"),
                   r"folder .* does not exist", r"create it")


def test_record_to_a_folder(live, samples, tmp_path):
    one_line_error(live("--video", samples / "single_face.mp4", "--record", tmp_path), r"is a folder", r"file name")


# -- models -------------------------------------------------------------------------------------


def test_face_model_missing(live, samples, tmp_path):
    one_line_error(live("--video", samples / "single_face.mp4", face=tmp_path / "face_landmarker.task"),
                   r"face model not found", r"--face-model")


@pytest.mark.parametrize("name", ["truncated.task", "tampered.task"])
def test_face_model_damaged_or_wrong_sha256(live, samples, models, name):
    one_line_error(live("--video", samples / "single_face.mp4", face=models / name),
                   r"has sha256 [0-9a-f]{12}…, not the official", r"download .* again")


def test_emotion_model_missing(live, samples, tmp_path):
    one_line_error(live("--video", samples / "single_face.mp4", model=tmp_path / "emotion.onnx"),
                   r"emotion model not found", r"--model PATH")


def test_emotion_model_not_onnx(live, samples, models):
    one_line_error(live("--video", samples / "single_face.mp4", model=models / "notes.onnx"),
                   r"notes\.onnx is not a usable ONNX model", r"--model PATH")


def test_emotion_model_without_emoview_metadata(live, samples, models):
    one_line_error(live("--video", samples / "single_face.mp4", model=models / "no_metadata.onnx"),
                   r"without emoview's feature spec", r"emoview export")


def test_emotion_model_with_an_unknown_spec_version(live, samples, models):
    one_line_error(live("--video", samples / "single_face.mp4", model=models / "future_spec.onnx"),
                   r"spec version 99", r"update emoview or re-export")


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("option,value", [("--window", "0"), ("--window", "-5"), ("--max-faces", "0")])
def test_counts_below_one(live, samples, option, value):
    one_line_error(live("--video", samples / "single_face.mp4", option, value),
                   rf"argument {option}: must be 1 or more, not {value}", r"--help")


@pytest.mark.parametrize("command", [[], ["analyze"], ["bench"], ["eval"]])
def test_min_confidence_outside_0_to_1(samples, tmp_path, command):
    target = {"analyze": [samples / "single_face.mp4"], "eval": [tmp_path]}.get(command[0] if command else "", [])
    one_line_error(emoview(*command, *target, "--min-confidence", "1.2"),
                   r"argument --min-confidence: must be between 0 and 1, not 1.2", r"--help")


def test_debug_shows_the_traceback(face_model, tmp_path):
    run = emoview("--debug", "--video", tmp_path / "nope.mp4", "--no-display", "--face-model", face_model)
    assert run.returncode != 0 and "Traceback" in run.stderr and "InputError" in run.stderr


# -- the other commands --------------------------------------------------------------------------


def test_predict_missing_path(face_model, random_model, tmp_path):
    one_line_error(emoview("predict", tmp_path / "nope.jpg", "--model", random_model, "--face-model", face_model),
                   r"nope\.jpg does not exist", r"pass image files")


def test_predict_with_a_model_that_is_not_onnx(face_model, models, samples):
    one_line_error(emoview("predict", samples / "single_face.jpg", "--model", models / "notes.onnx", "--face-model", face_model),
                   r"not a usable ONNX model")


def class_folders(root: Path, names, image: Path) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        shutil.copy(image, root / name / "x.jpg")
    return root


def test_eval_on_an_empty_folder(face_model, random_model, tmp_path):
    one_line_error(emoview("eval", tmp_path, "--model", random_model, "--face-model", face_model),
                   r"has no class folders this model knows", r"DIR/<class>/<image>")


def test_eval_on_folders_of_unknown_classes(face_model, random_model, samples, tmp_path):
    root = class_folders(tmp_path / "data", ["bananas", "apples"], samples / "single_face.jpg")
    one_line_error(emoview("eval", root, "--model", random_model, "--face-model", face_model),
                   r"folders: apples, bananas", r"DIR/<class>/<image>")


def test_extract_on_an_empty_folder(face_model, tmp_path):
    one_line_error(emoview("extract", tmp_path, "--cache", tmp_path / "cache", "--face-model", face_model),
                   r"holds no dataset")


def test_extract_on_folders_of_unknown_classes(face_model, samples, tmp_path):
    root = class_folders(tmp_path / "data", ["bananas"], samples / "single_face.jpg")
    one_line_error(emoview("extract", root, "--cache", tmp_path / "cache", "--face-model", face_model), r"holds no dataset")


@pytest.mark.parametrize("classes,message", [([], r"train has no emotion class folders"),
                                             (["bananas"], r"train has no emotion class folders")])
def test_train_on_an_empty_dataset_or_unknown_classes(face_model, samples, tmp_path, classes, message):
    data = tmp_path / "data"
    for split in ("fer2013/train", "fer2013/val", "ckplus48"):
        (data / split).mkdir(parents=True)
        class_folders(data / split, classes, samples / "single_face.jpg")
    one_line_error(emoview("train", "fer2013_crop", "--data", data, "--out", tmp_path / "run", "--cache", tmp_path / "cache",
                           "--face-model", face_model), message, r"<root>/<class>/<image>")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_export_of_a_missing_run(tmp_path):
    one_line_error(emoview("export", tmp_path / "runs" / "nope", "--out", tmp_path / "m.onnx"), r"does not exist")


def test_export_of_a_run_without_checkpoint(tmp_path):
    one_line_error(emoview("export", tmp_path, "--out", tmp_path / "m.onnx"), r"best\.pt")


def test_analyze_missing_video(face_model, random_model, tmp_path):
    one_line_error(emoview("analyze", tmp_path / "talk.mp4", "--model", random_model, "--face-model", face_model),
                   r"does not exist")


def test_analyze_not_a_video(face_model, random_model, media, tmp_path):
    one_line_error(emoview("analyze", media / "text.mp4", "--out", tmp_path, "--model", random_model, "--face-model", face_model),
                   r"cannot be opened as a video")


def test_analyze_with_a_damaged_face_model(models, random_model, samples, tmp_path):
    one_line_error(emoview("analyze", samples / "single_face.mp4", "--out", tmp_path, "--model", random_model,
                           "--face-model", models / "truncated.task"), r"sha256")
