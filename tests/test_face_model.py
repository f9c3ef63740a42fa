"""Face-model resolution and the verified download, against a real HTTP server on 127.0.0.1."""

import functools
import http.server
import threading

import pytest

from emoview.realtime import face_model as fm
from emoview.realtime.errors import ModelError


@pytest.fixture
def server(tmp_path, face_model):
    """Serves the real face_landmarker.task and a corrupted copy from a local folder."""
    root = tmp_path / "www"
    root.mkdir()
    data = face_model.read_bytes()
    (root / "face_landmarker.task").write_bytes(data)
    corrupt = bytearray(data)
    corrupt[len(corrupt) // 2] ^= 0xFF
    (root / "corrupt.task").write_bytes(bytes(corrupt))
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(fm.FACE_MODEL_ENV, raising=False)
    return tmp_path / "cache" / "emoview"


def test_download_is_verified_and_cached(server, empty_cache, monkeypatch):
    monkeypatch.setenv(fm.FACE_MODEL_URL_ENV, f"{server}/face_landmarker.task")
    path = fm.resolve_face_model()
    assert path == empty_cache / "face_landmarker.task"
    assert fm.sha256_of(path) == fm.FACE_MODEL_SHA256
    monkeypatch.setenv(fm.FACE_MODEL_URL_ENV, f"{server}/gone.task")
    assert fm.resolve_face_model() == path  # second time: from the cache, no download


def test_corrupted_download_is_refused_and_not_cached(server, empty_cache, monkeypatch):
    monkeypatch.setenv(fm.FACE_MODEL_URL_ENV, f"{server}/corrupt.task")
    with pytest.raises(ModelError, match="sha256"):
        fm.resolve_face_model()
    assert list(empty_cache.iterdir()) == []  # neither the model nor a temp file is left


def test_offline_without_a_model_says_where_to_put_it(empty_cache, monkeypatch):
    monkeypatch.setenv(fm.FACE_MODEL_URL_ENV, "http://127.0.0.1:9/face_landmarker.task")
    with pytest.raises(ModelError, match="could not download the face model.*put it at"):
        fm.resolve_face_model()


def test_explicit_and_environment_paths_are_verified(tmp_path, face_model, empty_cache, monkeypatch):
    assert fm.resolve_face_model(face_model) == face_model
    truncated = tmp_path / "truncated.task"
    truncated.write_bytes(face_model.read_bytes()[:1000])
    with pytest.raises(ModelError, match="sha256"):
        fm.resolve_face_model(truncated)
    monkeypatch.setenv("EMOVIEW_FACE_MODEL", str(tmp_path / "missing.task"))
    with pytest.raises(ModelError, match="not found"):
        fm.resolve_face_model()
