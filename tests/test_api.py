"""The Python API (`import emoview`) on the real sample media: the README's example as written,
the analyzer, timelines, stills, errors, and clean exits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

import emoview
from emoview.realtime.commands.cli import main
from emoview.realtime.errors import InputError

from conftest import FER_LABELS, REPO, SHARED


@pytest.fixture(autouse=True)
def face_model_env(monkeypatch, face_model):
    monkeypatch.setenv("EMOVIEW_FACE_MODEL", str(face_model))


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """In a folder beside a `shared` that is ../shared, exactly as the README's paths assume."""
    work = tmp_path / "project"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED)
    monkeypatch.chdir(work)
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"1 \(\d+, \d+, \d+, \d+\) \w+ [01]\.\d+ \(478, 3\)", lines[0]), lines
    dominant, seconds = lines[1].split()
    assert dominant in FER_LABELS and int(seconds) == 3  # 72 frames at 24 fps
    assert json.loads((work / "timeline.json").read_text())["seconds"] == 3
    assert len(lines) == 2 + 5 and all(re.fullmatch(r"\(\d+, \d+, \d+, \d+\) \w+", line) for line in lines[2:])


def test_import_is_cheap_and_the_api_loads_no_model_framework_until_used():
    code = (
        "import sys, emoview; heavy = ('mediapipe', 'onnxruntime', 'cv2', 'numpy');"
        "first = [m for m in heavy if m in sys.modules];"
        "emoview.EmotionAnalyzer, emoview.analyze_video, emoview.predict, emoview.Timeline;"
        "later = [m for m in heavy[:2] if m in sys.modules];"
        "print(first, later); sys.exit(bool(first or later))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(emoview.__all__) <= set(dir(emoview))
    with pytest.raises(AttributeError):
        emoview.nothing_here


def frames_of(path, count=None):
    video = cv2.VideoCapture(str(path))
    frames = []
    while count is None or len(frames) < count:
        ok, frame = video.read()
        if not ok:
            break
        frames.append((frame, video.get(cv2.CAP_PROP_POS_MSEC)))
    video.release()
    return frames


def test_analyzer_follows_one_face_through_a_video(samples, random_model):
    frames = frames_of(samples / "single_face.mp4", 30)
    with emoview.EmotionAnalyzer(model=random_model, max_faces=3) as analyzer:
        per_frame = [analyzer(frame, timestamp_ms=ts) for frame, ts in frames]
    assert all(len(faces) == 1 for faces in per_frame)
    assert {faces[0].id for faces in per_frame} == {1}  # the same face keeps its id
    face = per_frame[-1][0]
    height, width = frames[-1][0].shape[:2]
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 < width and 0 <= y0 < y1 < height
    assert list(face.probabilities) == list(FER_LABELS) and abs(sum(face.probabilities.values()) - 1) < 1e-4
    assert face.label in FER_LABELS and face.confidence == max(face.probabilities.values())
    assert face.landmarks.shape == (478, 3)
    inside = (face.landmarks[:, 0] >= x0 - 1) & (face.landmarks[:, 0] <= x1 + 1)
    assert inside.mean() > 0.98


def test_analyzer_without_timestamps_and_its_errors(samples, random_model):
    frame = cv2.imread(str(samples / "single_face.jpg"))
    analyzer = emoview.EmotionAnalyzer(model=random_model)
    assert [len(analyzer.analyze(frame)) for _ in range(3)] == [1, 1, 1]  # wall-clock timestamps
    with pytest.raises(TypeError, match="numpy array"):
        analyzer("not an image")
    with pytest.raises(ValueError, match="uint8"):
        analyzer(frame.astype(np.float32))
    with pytest.raises(ValueError, match="must come in order"):
        analyzer(frame, timestamp_ms=-5)
    analyzer.close()
    analyzer.close()
    with pytest.raises(RuntimeError, match="closed"):
        analyzer(frame)
    assert analyzer.labels == FER_LABELS


def test_analyze_video_gives_the_timeline_analyze_writes(samples, random_model, tmp_path):
    timeline = emoview.analyze_video(samples / "single_face.mp4", model=random_model)
    assert timeline.seconds == 3 and list(timeline.faces) == ["1"]
    assert timeline.summary["frames_analysed"] == 72 and timeline.summary["complete"]
    assert timeline.data["video"]["frames"] == 72 and timeline.data["model"]["labels"] == list(FER_LABELS)

    assert json.loads(timeline.to_json(tmp_path / "t.json")) == json.loads((tmp_path / "t.json").read_text())
    rows = timeline.to_csv().splitlines()
    assert rows[0].startswith("face,t,present,label,frames,p_angry") and len(rows) == 1 + 3
    assert timeline.plot(tmp_path / "t.png").stat().st_size > 10_000

    argv = ["analyze", str(samples / "single_face.mp4"), "--out", str(tmp_path / "cli"), "--model", str(random_model)]
    assert main(argv) == 0
    written = json.loads((tmp_path / "cli" / "timeline.json").read_text())
    assert written["faces"] == timeline.data["faces"]  # the same numbers as the command


def test_to_dataframe_names_pandas_when_it_is_missing(samples, random_model, monkeypatch):
    timeline = emoview.analyze_video(samples / "single_face.mp4", model=random_model)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(ImportError, match=r"^Timeline.to_dataframe needs pandas: pip install pandas$"):
        timeline.to_dataframe()


def test_to_dataframe_with_pandas(samples, random_model):
    pytest.importorskip("pandas")
    timeline = emoview.analyze_video(samples / "single_face.mp4", model=random_model)
    frame = timeline.to_dataframe()
    assert len(frame) == 3 and frame["p_happy"].dtype == float
    assert list(frame.columns[:5]) == ["face", "t", "present", "label", "frames"]


def test_predict_finds_every_face_the_cli_finds(samples, random_model, tmp_path):
    photo = samples / "multi_face.jpg"
    faces = emoview.predict(photo, model=random_model)
    assert len(faces) == 5 and [face.id for face in faces] == list(range(1, len(faces) + 1))
    out = tmp_path / "out.json"
    assert main(["predict", str(photo), "--json", str(out), "--model", str(random_model)]) == 0
    item = json.loads(out.read_text())["items"][0]
    assert [tuple(f["box"]) for f in item["faces"]] == [face.box for face in faces]
    assert [f["label"] for f in item["faces"]] == [face.label for face in faces]
    from_array = emoview.predict(cv2.imread(str(photo)), model=random_model)
    assert [f.box for f in from_array] == [f.box for f in faces]


def test_predict_errors_say_what_to_pass(tmp_path, random_model):
    with pytest.raises(InputError, match="does not exist"):
        emoview.predict(tmp_path / "nope.jpg", model=random_model)
    (tmp_path / "notes.jpg").write_text("text")
    with pytest.raises(InputError, match="not a readable image"):
        emoview.predict(tmp_path / "notes.jpg", model=random_model)
    with pytest.raises(TypeError):
        emoview.predict(42, model=random_model)


def test_an_analyzer_never_closed_exits_silently(samples, random_model, face_model):
    code = (
        "import cv2, emoview;"
        f"a = emoview.EmotionAnalyzer(model={str(random_model)!r});"
        f"a(cv2.imread({str(samples / 'single_face.jpg')!r}));"
        f"b = emoview.EmotionAnalyzer(model={str(random_model)!r}, max_faces=2);"
        "c = emoview.EmotionAnalyzer(); c.close(); del c;"
        "print('done')"
    )
    env = dict(os.environ, EMOVIEW_FACE_MODEL=str(face_model))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout == "done\n"
    assert run.stderr == ""
