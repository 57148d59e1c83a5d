"""make_synthetic_voc: a realistic VOC-format set, checked against GluonCV's own reader."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from detbench.data.errors import DataError
from detbench.data.synthetic import _PALETTE, make_synthetic_voc
from detbench.data.voc import image_path, load_split

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mxnet's distutils use


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "VOCdevkit"
    make_synthetic_voc(path, images=40, seed=7)
    return path


def iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def test_synthetic_set_reads_identically_with_gluoncv_reference(devkit):
    from gluoncv.data import VOCDetection  # imported here so the warning filter covers it

    ours = load_split(devkit)
    reference = VOCDetection(root=str(devkit), splits=[(2007, "test")])
    assert len(reference) == len(ours) == 40
    for index, record in enumerate(ours):
        image, label = reference[index]
        assert image.shape == (record.height, record.width, 3)
        rows = [[*o.box, o.label, int(o.difficult)] for o in record.objects]
        expected = np.array(rows).reshape(-1, 6)
        np.testing.assert_array_equal(label.reshape(-1, 6), expected)


def test_synthetic_set_has_every_feature_real_data_has(devkit):
    records = load_split(devkit)
    counts = [len(r.objects) for r in records]
    assert min(counts) == 0 and max(counts) <= 6 and len(set(counts)) >= 4
    assert any(r.height > r.width for r in records) and any(r.width > r.height for r in records)
    sides = [side for r in records for side in (r.width, r.height)]
    assert 200 <= min(sides) and max(sides) <= 500 and len(set(sides)) > 20
    modes = {Image.open(image_path(devkit, r.image_id)).mode for r in records}
    assert modes == {"L", "RGB"}
    objects = [o for r in records for o in r.objects]
    assert any(o.difficult for o in objects) and any(o.truncated for o in objects)
    assert len({o.label for o in objects}) >= 10
    assert any(
        a.label == b.label and iou(a.box, b.box) > 0
        for r in records
        for i, a in enumerate(r.objects)
        for b in r.objects[i + 1 :]
    )


def test_each_top_object_is_drawn_in_its_class_colour_at_its_box_centre(devkit):
    checked = 0
    for record in load_split(devkit):
        image = Image.open(image_path(devkit, record.image_id))
        if image.mode != "RGB" or not record.objects:
            continue
        top = record.objects[-1]  # drawn last, so nothing covers it
        x0, y0, x1, y1 = top.box
        centre = np.asarray(image)[int((y0 + y1) / 2), int((x0 + x1) / 2)].astype(int)
        assert np.abs(centre - _PALETTE[top.label]).max() < 40, record.image_id
        checked += 1
    assert checked >= 10


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        make_synthetic_voc(tmp_path / name / "VOCdevkit", images=5, seed=seed)
        paths[name] = sorted((tmp_path / name / "VOCdevkit").rglob("*.*"))
    read = {k: [p.read_bytes() for p in v] for k, v in paths.items()}
    assert read["a"] == read["b"]
    assert read["a"] != read["c"]


def test_forty_images_are_made_in_under_two_seconds(tmp_path):
    start = time.perf_counter()
    make_synthetic_voc(tmp_path / "VOCdevkit", images=40, seed=0)
    assert time.perf_counter() - start < 2.0


def test_empty_destination_is_replaced_and_no_staging_left(tmp_path):
    dest = tmp_path / "VOCdevkit"
    dest.mkdir()
    make_synthetic_voc(dest, images=3, seed=0, split="val")
    assert (dest / "VOC2007" / "ImageSets" / "Main" / "val.txt").read_text().split() == [
        "000001", "000002", "000003",
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["VOCdevkit"]


def test_rerun_with_same_arguments_is_noop_and_other_arguments_refused(tmp_path):
    dest = tmp_path / "VOCdevkit"
    make_synthetic_voc(dest, images=3, seed=0)
    stamp = (dest / "VOC2007" / "Annotations" / "000001.xml").stat().st_mtime_ns
    make_synthetic_voc(dest, images=3, seed=0)
    assert (dest / "VOC2007" / "Annotations" / "000001.xml").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="remove it"):
        make_synthetic_voc(dest, images=4, seed=0)
