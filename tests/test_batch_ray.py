"""`--ray`: the same batch on Ray actors gives the same timelines and cache entries as local workers,
and an actor that dies costs one retry. One local Ray for the module (2 CPUs, no dashboard). What
happens after the last try (a failed row, a rerun) is the same code for both backends
(`workers.Attempts`, `batch.Batch`), tested with local workers in test_batch.py."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from emoview.realtime.commands.cli import main
from emoview.train.extract import entry_path, extract, load_entry

from test_batch import per_second, read_index

if importlib.util.find_spec("ray") is None:
    message = "needs Ray: pip install -e '.[ray]' (as .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory, samples):
    root = tmp_path_factory.mktemp("ray") / "videos"
    for name, sample in (("day1/clip.mp4", "single_face.mp4"), ("day2/clip.mp4", "face_noface.mov"), ("empty.mp4", "no_face.mp4")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(samples / sample)
    return root


def analyze(*args) -> int:
    return main(["analyze", *map(str, args)])


def test_ray_gives_the_same_seconds_as_a_local_worker_and_survives_a_dead_actor(videos, random_model, face_model, tmp_path, monkeypatch):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    common = ("--model", random_model, "--face-model", face_model)
    assert analyze(videos, "--out", local, "--workers", 1, *common) == 0
    monkeypatch.setenv("EMOVIEW_TEST_DIE_ON", "clip.mp4")  # the first clip an actor starts kills it, once
    monkeypatch.setenv("EMOVIEW_TEST_DIE_MARKER", str(tmp_path / "died"))
    assert analyze(videos, "--out", on_ray, "--ray", "--workers", 2, *common) == 0
    assert (tmp_path / "died").exists()
    index = read_index(on_ray)
    assert {row["status"] for row in index.values()} == {"ok"} and len(index) == 3
    assert sorted(index[str(videos / key)]["attempts"] for key in ("day1/clip.mp4", "day2/clip.mp4")) == ["1", "2"]
    for key in ("day1/clip.mp4", "day2/clip.mp4", "empty.mp4"):
        assert per_second(on_ray / f"{key}.timeline.json") == per_second(local / f"{key}.timeline.json")
        made = json.loads((on_ray / f"{key}.timeline.json").read_text())
        assert made["model"]["path"] == str(random_model)  # the user's path, not the actor's copy
    assert json.loads((on_ray / "index.json").read_text())["backend"] == "ray"
    (on_ray / "empty.mp4.timeline.json").unlink()  # as if its worker had died for good: a rerun does that one only
    monkeypatch.delenv("EMOVIEW_TEST_DIE_ON")
    assert analyze(videos, "--out", on_ray, "--ray", "--workers", 2, *common) == 0
    again = read_index(on_ray)
    assert [again[str(videos / key)]["status"] for key in ("day1/clip.mp4", "day2/clip.mp4", "empty.mp4")] == ["skipped", "skipped", "ok"]


def test_extraction_on_ray_fills_the_local_cache_as_local_workers_do(shared, face_model, tmp_path):
    from emoview.realtime.ray_backend import RayPool
    from emoview.train.extract import TASK

    images = sorted((shared / "data" / "fer2013" / "val" / "happy").iterdir())[:33]  # two jobs of images (32 + 1)
    files = [("image", path) for path in images] + [("video", shared / "data" / "samples" / "single_face.mp4")]
    pool = RayPool(TASK, {"files": {"face_model": str(face_model)}}, workers=2)
    on_ray = extract(files, tmp_path / "ray", face_model, pool=pool)
    local = extract(files, tmp_path / "local", face_model, workers=2)
    assert on_ray["extracted"] == local["extracted"] == len(files) and on_ray["failed"] == 0
    assert on_ray["detection_rate"] == local["detection_rate"] > 0.9
    for _, path in files:
        assert entry_path(tmp_path / "ray", path).relative_to(tmp_path / "ray") == entry_path(tmp_path / "local", path).relative_to(tmp_path / "local")
        a, b = load_entry(tmp_path / "ray", path), load_entry(tmp_path / "local", path)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_more_actors_than_the_cluster_has_cpus_is_refused_not_waited_for(videos, tmp_path, capsys):
    assert analyze(videos, "--out", tmp_path, "--ray", "--workers", 3) == 2  # the module's Ray has 2 CPUs
    err = capsys.readouterr().err.strip().splitlines()
    assert "need 3 CPUs and this Ray cluster has 2; use at most --workers 2" in err[-1]
