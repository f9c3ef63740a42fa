"""`emoview serve` over plain HTTP, as curl, OBS or a script use it: a real server in a subprocess."""

import csv
import http.client
import io
import json
import signal
import ssl
import subprocess
import sys
import urllib.request

import pytest

from serving import events, get_json, h264_frames, mjpeg_frames, request, require, sample_jpeg, serving

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # the shipped model's


@pytest.fixture
def web():
    require("starlette", "uvicorn")


@pytest.fixture
def video(samples):
    return samples / "WolfgangLanger_Pexels.mp4"


def test_video_session_streams_frames_events_timeline_and_records(tmp_path, video, face_model, web):
    with serving(tmp_path, "--video", video, "--loop", "--face-model", face_model) as server:
        frames = mjpeg_frames(server.url + "/stream.mjpg", 3)
        assert len(frames) == 3 and all(f.shape == (360, 640, 3) for f in frames)
        assert min(f.std() for f in frames) > 20  # a picture, not a blank

        status, session = get_json(server.url + "/session.json")
        assert status == 200 and session["labels"] == list(LABELS) and not session["browser_camera"]

        with_face = events(server.url + "/events", 0, until=lambda e: e.get("faces"))[-1]
        face = with_face["faces"][0]
        assert set(face) >= {"id", "box", "label", "probabilities"}
        assert len(face["box"]) == 4 and face["label"] in LABELS
        assert list(face["probabilities"]) == list(LABELS) and sum(face["probabilities"].values()) == pytest.approx(1, abs=0.01)
        assert with_face["state"] == "running" and with_face["fps"] > 0 and with_face["latency_ms"] > 0

        status, started = get_json(server.url + "/record/start", b"")
        assert status == 200, started
        assert get_json(server.url + "/record/start", b"")[0] == 409  # already recording
        first = with_face["frame"]
        events(server.url + "/events", 0, until=lambda e: e.get("frame", -1) > first + 40)
        status, stopped = get_json(server.url + "/record/stop", b"")
        assert status == 200 and stopped["path"] == started["recording"] and stopped["frames"] > 0
        assert h264_frames(stopped["path"]) == ("h264", stopped["frames"])
        assert get_json(server.url + "/record/stop", b"")[0] == 409  # nothing to stop

        status, timeline = get_json(server.url + "/timeline.json")
        assert status == 200 and timeline["seconds"] >= 1 and timeline["faces"]
        assert timeline["summary"]["complete"] is False  # the session goes on
        status, body, headers = request(server.url + "/timeline.csv")
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        assert rows and set(rows[0]) >= {"face", "t", "present", "label", *(f"p_{name}" for name in LABELS)}

        status, missing = get_json(server.url + "/no/such/page")
        assert status == 404 and "/stream.mjpg" in missing["error"]
        status, refused = get_json(server.url + "/frame", sample_jpeg(video))
        assert status == 409 and "--browser-camera" in refused["error"]
        assert get_json(server.url + "/record/start", method="GET")[0] == 405
        assert len(mjpeg_frames(server.url + "/stream.mjpg", 1)) == 1  # still going
    assert server.proc.returncode == 130
    err = server.stderr()
    assert "Traceback" not in err and f"recorded {stopped['frames']} frames to {stopped['path']} (h264)" in err


def test_browser_camera_answers_each_frame_and_refuses_bad_ones(tmp_path, samples, face_model, web):
    clip = samples / "WolfgangLanger_Pexels.mp4"
    with serving(tmp_path, "--browser-camera", "--face-model", face_model) as server:
        status, session = get_json(server.url + "/session.json")
        assert session["browser_camera"] and session["max_frame_bytes"] == 5 * 1024 * 1024

        answers = [get_json(server.url + "/frame", sample_jpeg(clip, i * 10, (640, 480)))[1] for i in range(6)]
        assert all(len(a["faces"]) == 1 for a in answers)
        assert len({a["faces"][0]["id"] for a in answers}) == 1  # one tracked face, not six
        assert [a["frame"] for a in answers] == sorted({a["frame"] for a in answers})
        assert answers[-1]["faces"][0]["box"] != answers[0]["faces"][0]["box"]

        status, bad = get_json(server.url + "/frame", b"this is not an image")
        assert status == 415 and "not an image" in bad["error"]
        status, empty = get_json(server.url + "/frame", b"")
        assert status == 415
        status, huge = oversized_post(server.url, declared=True)
        assert status == 413 and "5 MB" in huge["error"]
        status, huge = oversized_post(server.url, declared=False)  # chunked: refused once past the limit
        assert status == 413 and "5 MB" in huge["error"]

        after = [get_json(server.url + "/frame", sample_jpeg(clip, i, (640, 480))) for i in (51, 52, 53)]
        assert all(status == 200 and answer["state"] == "running" for status, answer in after)  # the session went on
        assert after[0][1]["frame"] > answers[-1]["frame"] and any(answer["faces"] for _, answer in after)
    assert server.proc.returncode == 130
    assert "Traceback" not in server.stderr()


def oversized_post(url: str, declared: bool) -> tuple[int, dict]:
    """A frame over 5 MB: announced by Content-Length (answered before the body is sent), or chunked."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", "/frame")
        conn.putheader("Content-Type", "image/jpeg")
        if declared:
            conn.putheader("Content-Length", str(6 * 1024 * 1024))
            conn.endheaders()
            conn.send(b"\xff" * 1000)
        else:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for size in (1024 * 1024,) * 5 + (1,):
                conn.send(b"%x\r\n" % size + b"\xff" * size + b"\r\n")
            conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_sigterm_while_recording_finalizes_the_file(tmp_path, samples, face_model, web):
    with serving(tmp_path, "--video", samples / "WolfgangLanger_Pexels.mp4", "--loop", "--face-model", face_model) as server:
        status, started = get_json(server.url + "/record/start", b"")
        assert status == 200
        first = events(server.url + "/events", 0, until=lambda e: "frame" in e)[-1]["frame"]  # recording may start before frame 0
        events(server.url + "/events", 0, until=lambda e: e.get("frame", -1) > first + 30)
    assert server.proc.returncode == 130
    err = server.stderr()
    assert "interrupted" in err and "Traceback" not in err
    codec, frames = h264_frames(started["recording"])
    assert codec == "h264" and frames > 0
    assert f"recorded {frames} frames to {started['recording']}" in err


def test_video_end_keeps_the_page_and_final_timeline(tmp_path, samples, face_model, web):
    with serving(tmp_path, "--video", samples / "single_face.mp4", "--fast", "--face-model", face_model) as server:
        last = events(server.url + "/events", 0, until=lambda e: e["state"] == "ended")[-1]
        assert last["frames"] == 72
        status, timeline = get_json(server.url + "/timeline.json")
        assert timeline["summary"]["complete"] is True and timeline["summary"]["frames_analysed"] == 72
        assert len(mjpeg_frames(server.url + "/stream.mjpg", 1)) == 1  # the last frame stays on show
        assert get_json(server.url + "/record/start", b"")[0] == 409
    assert "single_face.mp4 ended: the page, its last frame and the timeline stay up" in server.stderr()
    assert "72 frames (end of input)" in server.stderr()


def emoview(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "emoview", *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def test_without_the_web_extra_one_line_says_how_to_get_it():
    hide = "import sys; sys.modules['uvicorn'] = None; sys.modules['starlette'] = None; from emoview.realtime.commands.cli import main; sys.exit(main())"
    run = subprocess.run([sys.executable, "-c", hide, "serve", "--video", "x.mp4"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "pip install 'emoview[web]'" in run.stderr


def test_user_errors_are_one_line(tmp_path, samples, face_model, web):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = emoview("serve", "--video", samples / "single_face.mp4", "--port", port, "--face-model", face_model)
    assert run.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in run.stderr and "Traceback" not in run.stderr
    for args, words in [
        (("--video", tmp_path / "missing.mp4"), "does not exist"),
        (("--camera", "0", "--loop"), "--loop and --fast are for --video"),
        (("--browser-camera", "--record-dir", tmp_path / "nope"), "is not a folder"),
        (("--browser-camera", "--ssl-certfile", tmp_path / "cert.pem"), "go together"),
        (("--video", samples / "single_face.mp4", "--browser-camera"), "not allowed with"),
        (("--browser-camera", "--width", "1280"), "--width set what a camera captures"),
    ]:
        run = emoview("serve", *args, "--port", "0", "--face-model", face_model)
        assert run.returncode == 2, (args, run.stderr)
        assert words in run.stderr and run.stderr.strip().count("\n") == 0, run.stderr


def test_port_zero_and_https_print_the_chosen_url(tmp_path, samples, face_model, web):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([sys.executable, "-m", "emoview", "serve", "--browser-camera", "--port", "0", "--face-model", str(face_model),
                             "--record-dir", str(tmp_path), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "emoview serve:" not in line and proc.poll() is None:
            line = proc.stderr.readline()
        assert "emoview serve: browser camera at https://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        unverified = ssl.create_default_context()
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE  # our own self-signed certificate
        with urllib.request.urlopen(url + "session.json", timeout=60, context=unverified) as response:
            assert response.status == 200 and json.loads(response.read())["browser_camera"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    assert proc.returncode == 130


def test_loop_plays_the_video_again(tmp_path, samples, face_model, web):
    with serving(tmp_path, "--video", samples / "single_face.mp4", "--loop", "--fast", "--face-model", face_model) as server:
        later = events(server.url + "/events", 0, until=lambda e: e.get("frame", -1) >= 100)[-1]  # the file has 72 frames
        assert later["state"] == "running" and later["faces"] and later["t"] > 72 / 30
    assert server.proc.returncode == 130
