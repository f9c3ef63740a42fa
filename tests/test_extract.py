"""`emoview extract` on real FER2013/CK+ images and a real video: cache, resume, atomicity, errors."""

from __future__ import annotations

import numpy as np
import pytest

from emoview.realtime.commands.cli import main
from emoview.train.extract import dataset_files, entry_path, extract, load_entry, save_atomic, settings_tag


@pytest.fixture()
def few_images(tmp_path, shared):
    """A small image dataset: real FER2013 and CK+ files in class folders (symlinks, nothing copied)."""
    root = tmp_path / "images"
    picks = {
        "happy": sorted((shared / "data" / "fer2013" / "val" / "happy").iterdir())[:3],
        "anger": sorted((shared / "data" / "ckplus48" / "anger").iterdir())[:2],
        "surprise": sorted((shared / "data" / "ckplus48" / "surprise").iterdir())[:2],
    }
    for label, paths in picks.items():
        (root / label).mkdir(parents=True)
        for path in paths:
            (root / label / path.name).symlink_to(path)
    return root


def test_extract_real_images_then_resume(few_images, tmp_path, face_model):
    files = dataset_files(few_images)
    assert len(files) == 7 and all(kind == "image" for kind, _ in files)
    cache = tmp_path / "cache"
    stats = extract(files, cache, face_model, workers=2)
    assert stats["extracted"] == 7 and stats["detection_rate"] == 1.0
    for _, path in files:
        entry = load_entry(cache, path)
        assert bool(entry["found"]) and entry["points"].shape == (478, 3) and entry["blendshapes"].shape == (52,)
        assert 0.0 <= entry["blendshapes"].min() and entry["blendshapes"].max() <= 1.0
        h, w = entry["size"]
        xy = entry["points"][:, :2]
        assert (xy.min(axis=0) > -0.2 * w).all() and (xy.max(axis=0) < 1.2 * w).all()  # in the 48x48 crop's pixels
    again = extract(files, cache, face_model, workers=2)
    assert again["extracted"] == 0 and again["cached"] == 7 and again["detection_rate"] == 1.0
    assert str(entry_path(cache, files[0][1])).startswith(str(cache / settings_tag()))


def test_interrupted_write_is_not_an_entry(tmp_path, monkeypatch):
    import emoview.train.extract as extract_module

    target = tmp_path / "cache" / "x.png.npz"

    def dies_halfway(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(extract_module.np, "savez", dies_halfway)
    with pytest.raises(OSError):
        save_atomic(target, points=np.zeros(3))
    assert not target.exists() and not list(target.parent.iterdir())  # nothing a resume could mistake
    monkeypatch.undo()
    save_atomic(target, points=np.ones(3))
    assert np.load(target)["points"].tolist() == [1.0, 1.0, 1.0]


def test_extract_a_video_folder(tmp_path, samples, face_model):
    root = tmp_path / "videos"
    root.mkdir()
    (root / "clip.mp4").symlink_to(samples / "single_face.mp4")
    (root / "labels.csv").write_text("file,label\nclip.mp4,happy\n")
    cache = tmp_path / "cache"
    stats = extract(dataset_files(root), cache, face_model, workers=1)
    entry = load_entry(cache, root / "clip.mp4")
    assert entry["points"].shape == (72, 478, 3) and entry["found"].shape == (72,)
    assert entry["found"].mean() > 0.9 and stats["detection_rate"] == pytest.approx(entry["found"].mean())


def test_cli_reports_detection_rate_and_errors(few_images, tmp_path, face_model, capsys):
    assert main(["extract", str(few_images), "--cache", str(tmp_path / "c"), "--face-model", str(face_model)]) == 0
    assert "faces found in 100.00 %" in capsys.readouterr().err
    assert main(["extract", str(tmp_path / "nope"), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    (tmp_path / "empty").mkdir()
    assert main(["extract", str(tmp_path / "empty"), "--cache", str(tmp_path / "c")]) == 2
    assert "holds no dataset" in capsys.readouterr().err
