"""Every dataset reader on its real fixture in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from emoview.realtime.errors import InputError
from emoview.train.read_afewva import NAMES, VAClusters, fit_clusters, name_centroids, read_afewva
from emoview.realtime.ferplus import majority, read_ferplus
from emoview.train.read_images import read_image_folder
from emoview.train.read_ravdess import parse_name, read_openface_csv, read_ravdess_folder
from emoview.train.read_videos import is_video_folder, read_video_folder


def test_ckplus_folder_subjects_and_labels(shared):
    items = read_image_folder(shared / "data" / "ckplus48")
    assert len(items) == 747
    assert {it.label for it in items} == {"angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"}
    assert len({it.subject for it in items}) == 94
    first = items[0]
    assert first.folder == "anger" and first.label == "angry"
    assert first.subject == first.path.name[:4] and first.subject.startswith("S")


def test_fer_folder_has_no_subjects(shared):
    items = read_image_folder(shared / "data" / "fer2013" / "val")
    assert len(items) == 3543
    assert all(it.subject is None for it in items)
    assert sum(it.label == "disgust" for it in items) == 55


def test_image_folder_errors(tmp_path):
    with pytest.raises(InputError, match="no emotion class folders"):
        read_image_folder(tmp_path)
    (tmp_path / "happy").mkdir()
    with pytest.raises(InputError, match="no images"):
        read_image_folder(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        read_image_folder(tmp_path / "missing")


def test_ferplus_majority_rule():
    #              neu hap sur sad ang dis fea con unk NF
    assert majority(np.array([2, 0, 0, 1, 7, 0, 0, 0, 0, 0])) == "angry"  # single vote dropped
    assert majority(np.array([4, 4, 0, 0, 2, 0, 0, 0, 0, 0])) is None  # no majority
    assert majority(np.array([0, 0, 0, 0, 0, 0, 0, 8, 2, 0])) is None  # contempt is not a FER class
    assert majority(np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 10])) is None  # not a face


def test_ferplus_labels_csv(shared):
    rows = read_ferplus(shared / "data" / "fer2013" / "labels.csv")
    assert len(rows) == 28325 + 3543
    row = rows[(shared / "data" / "fer2013" / "train" / "angry" / "Training_10118481.png").resolve()]
    assert row.fer_label == "angry" and row.label == "angry" and row.votes.sum() == 10
    labels = {r.label for r in rows.values()}
    assert labels == {None, "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}


def test_ravdess_fixture(shared):
    path = shared / "data" / "ravdess" / "01-01-03-02-01-01-01.first60frames.csv"
    track = read_openface_csv(path)
    assert track.points.shape == (60, 68, 2)
    assert track.label == "happy" and track.subject == "actor01" and track.intensity == 2
    assert track.ok.all()
    assert track.points[0, 0].tolist() == pytest.approx([503.0, 264.4], abs=1e-3)  # x_0, y_0 of frame 1
    assert [t.label for t in read_ravdess_folder(path.parent)] == ["happy"]


def test_ravdess_file_names():
    assert parse_name("01-01-08-01-02-02-24.csv") == {"emotion": "surprise", "intensity": 1, "actor": 24}
    assert parse_name("02-01-02-02-01-01-12.csv")["emotion"] == "calm"
    assert parse_name("OpenFace_Test.csv") is None


def test_openface_spaced_header(shared):
    track = read_openface_csv(shared / "data" / "samples" / "OpenFace_Test.csv")
    assert track.points.shape == (100, 68, 2)
    assert track.label is None and track.subject is None
    assert np.isfinite(track.points).all() and track.points[..., 0].max() > 100


def test_afewva_clip_and_label(shared):
    [clip] = read_afewva(shared / "data" / "afewva" / "001")
    assert clip.points.shape == (42, 68, 2) and clip.valence.shape == clip.arousal.shape == (42,)
    assert clip.frames[0] == "00000" and clip.actor == "Bruce Campbell"
    clusters = fit_clusters([clip])
    label = clusters.label(float(clip.valence.mean()), float(clip.arousal.mean()))
    assert label in NAMES
    assert read_afewva(shared / "data" / "afewva")[0].clip == "001"  # a folder of clips works too


def test_va_clusters_are_named_by_centroids_and_saved(tmp_path):
    rng = np.random.default_rng(0)
    centres = {"Happy": (6, 2), "Anger": (-6, 6), "Sad": (-5, -5), "Neutral": (0.5, 0), "Shock": (0, 8)}
    clips = []
    for name, (v, a) in centres.items():
        va = rng.normal((v, a), 0.5, (200, 2)).astype(np.float32)
        clips.append(type("Clip", (), {"valence": va[:, 0], "arousal": va[:, 1]}))
    clusters = fit_clusters(clips)
    for name, (v, a) in centres.items():
        assert clusters.label(v, a) == name
    clusters.save(tmp_path / "va.json")
    again = VAClusters.load(tmp_path / "va.json")
    assert again.names == clusters.names and np.allclose(again.centroids, clusters.centroids, atol=1e-3)
    assert fit_clusters(clips).to_dict() == clusters.to_dict()  # deterministic
    assert sorted(name_centroids(np.array(list(centres.values()), float))) == sorted(NAMES)


def test_video_folder(tmp_path, samples):
    (tmp_path / "clip.mp4").symlink_to(samples / "single_face.mp4")
    (tmp_path / "labels.csv").write_text("file,label,subject\nclip.mp4,Happiness,p1\n")
    assert is_video_folder(tmp_path)
    [item] = read_video_folder(tmp_path)
    assert item.label == "happy" and item.subject == "p1"
    (tmp_path / "labels.csv").write_text("file,label\nclip.mp4,bored\n")
    with pytest.raises(InputError, match="unknown emotion"):
        read_video_folder(tmp_path)
