"""Detection pictures: which photos, what is drawn on them, and how untrained weights and failed
runs are labelled."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detbench.data.synthetic import make_synthetic_voc
from detbench.data.voc import VOC_CLASSES
from detbench.report import pictures

DOG = VOC_CLASSES.index("dog")


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures") / "VOCdevkit"
    make_synthetic_voc(root, images=5, seed=3)
    return root


def run(status="ok", untrained=False):
    return {
        "status": status,
        "error": None if status == "ok" else "no GPU 0: MXNet sees 0 GPU(s)",
        "model": "mobilenetv2_yolov3_nano_voc",
        "device": "cpu",
        "weights": {"source": "darknet", "untrained": untrained},
    }


def save_detections(path, ids, rows):
    np.savez(
        path,
        image_ids=np.array(ids, dtype=str),
        image_index=np.array([r[0] for r in rows], dtype=np.int64),
        labels=np.array([r[1] for r in rows], dtype=np.int64),
        scores=np.array([r[2] for r in rows], dtype=np.float32),
        boxes=np.array([r[3] for r in rows], dtype=np.float32).reshape(-1, 4),
    )
    return path


def texts(figure):
    return [t.get_text() for ax in figure.axes for t in ax.texts]


def test_default_photos_are_the_first_three_of_the_split_and_chosen_ones_must_exist():
    split = ["000004", "000001", "000009", "000002"]
    assert pictures.picture_ids(split, []) == ["000004", "000001", "000009"]
    assert pictures.picture_ids(split, ["000002"]) == ["000002"]
    with pytest.raises(ValueError, match="000777 not in the split"):
        pictures.picture_ids(split, ["000777"])


def test_detections_at_or_above_the_score_are_labelled_with_class_and_score(devkit, tmp_path):
    ids = ["000001", "000002", "000003"]
    npz = save_detections(
        tmp_path / "d.npz",
        ids,
        [(0, DOG, 0.9, (10, 20, 80, 90)), (0, 0, 0.29, (1, 1, 5, 5)), (2, 14, 0.3, (3, 3, 50, 60))],
    )
    figure = pictures.build_pictures(devkit, "test", run(), npz, ids, 0.3)
    assert sorted(texts(figure)) == ["dog 0.90", "person 0.30"]
    assert [ax.get_title() for ax in figure.axes] == ids
    assert figure._suptitle.get_text().endswith("trained weights (darknet)")


def test_untrained_weights_and_failed_runs_say_so(devkit, tmp_path):
    ids = ["000001"]
    npz = save_detections(tmp_path / "d.npz", ids, [(0, DOG, 0.9, (10, 20, 80, 90))])
    untrained = pictures.build_pictures(devkit, "test", run(untrained=True), npz, ids, 0.3)
    assert "UNTRAINED WEIGHTS" in untrained._suptitle.get_text()
    failed = pictures.build_pictures(devkit, "test", run(status="failed"), npz, ids, 0.3)
    assert texts(failed) == ["run failed:\nno GPU 0: MXNet sees 0 GPU(s)"]


def test_draw_writes_a_png_of_the_photos(devkit, tmp_path):
    import json

    ids = ["000001", "000002", "000003"]
    npz = save_detections(tmp_path / "d.npz", ids, [(1, DOG, 0.8, (10, 20, 80, 90))])
    (tmp_path / "result.json").write_text(json.dumps(run()))
    out = tmp_path / "pictures" / "nano.png"
    drawn = pictures.draw_pictures(devkit, "test", tmp_path / "result.json", npz, [], 0.3, out)
    assert drawn == ids
    with Image.open(out) as png:
        assert png.format == "PNG" and png.width > 3 * png.height
    assert not list(out.parent.glob(".*.tmp"))
