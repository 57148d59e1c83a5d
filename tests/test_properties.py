"""Property tests (hypothesis) of the VOC parser and the evaluator.

- Annotation records written as genuine VOC XML (pretty or compact, optional tags omitted, class
  names in any case, tags in any order) parse back to the same records.
- Random detection sets, however odd (ties, zero-area boxes, far-off boxes, images without
  detections or ground truth), never crash the evaluator, and every AP lies in [0, 1]; a class has
  an AP exactly when it has non-difficult ground truth; detections equal to the ground truth score
  1; and the same sets scored through files (VOC XML + detections.npz) give the same numbers.
"""

from __future__ import annotations

import math
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers import detections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detbench.data.voc import VOC_CLASSES, VOCImage, VOCObject, parse_annotation
from detbench.evaluate import Detections, evaluate, evaluate_files

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A perfect class's AP may fall short of 1 by rounding (eleven sums of p/11); never above 1.
ULP_SLACK = 4 * np.finfo(float).eps

# --- VOC XML round trip ------------------------------------------------------------------------

image_ids = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,11}", fullmatch=True).filter(
    lambda s: not s.endswith(".")
)


@st.composite
def voc_objects(draw, width: int, height: int) -> dict:
    """One object with a 1-based VOC box inside the image, as the XML carries it."""
    whole = draw(st.booleans())
    if whole:
        xmin = draw(st.integers(1, width - 1))
        ymin = draw(st.integers(1, height - 1))
        xmax = draw(st.integers(xmin + 1, width))
        ymax = draw(st.integers(ymin + 1, height))
    else:  # sub-pixel coordinates, as some converted datasets have
        xmin = draw(st.integers(2, 2 * width - 2)) / 2
        ymin = draw(st.integers(2, 2 * height - 2)) / 2
        xmax = draw(st.integers(int(2 * xmin) + 1, 2 * width)) / 2
        ymax = draw(st.integers(int(2 * ymin) + 1, 2 * height)) / 2
    return {
        "name": draw(st.sampled_from(VOC_CLASSES)),
        "case": draw(st.sampled_from([str.lower, str.upper, str.title])),
        "box": (xmin, ymin, xmax, ymax),
        "difficult": draw(st.sampled_from([None, 0, 1])),
        "truncated": draw(st.sampled_from([None, 0, 1])),
        "order": draw(st.permutations(["xmin", "ymin", "xmax", "ymax"])),
    }


@st.composite
def voc_records(draw) -> dict:
    width, height = draw(st.integers(2, 4000)), draw(st.integers(2, 4000))
    objects = draw(st.lists(voc_objects(width, height), max_size=8))
    return {"id": draw(image_ids), "width": width, "height": height, "objects": objects,
            "pretty": draw(st.booleans()), "depth": draw(st.sampled_from([1, 3]))}  # fmt: skip


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def voc_xml(record: dict) -> bytes:
    """The record as genuine VOC XML, with the tags VOC2007's files carry."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "VOC2007"
    ET.SubElement(ann, "filename").text = f"{record['id']}.jpg"
    source = ET.SubElement(ann, "source")
    ET.SubElement(source, "database").text = "The VOC2007 Database"
    size = ET.SubElement(ann, "size")
    ET.SubElement(size, "width").text = str(record["width"])
    ET.SubElement(size, "height").text = str(record["height"])
    ET.SubElement(size, "depth").text = str(record["depth"])
    ET.SubElement(ann, "segmented").text = "0"
    for obj in record["objects"]:
        node = ET.SubElement(ann, "object")
        ET.SubElement(node, "name").text = obj["case"](obj["name"])
        ET.SubElement(node, "pose").text = "Unspecified"
        for flag in ("truncated", "difficult"):
            if obj[flag] is not None:
                ET.SubElement(node, flag).text = str(obj[flag])
        bndbox = ET.SubElement(node, "bndbox")
        corners = dict(zip(("xmin", "ymin", "xmax", "ymax"), obj["box"], strict=True))
        for tag in obj["order"]:
            ET.SubElement(bndbox, tag).text = _number(corners[tag])
    if record["pretty"]:
        ET.indent(ann, space="\t")
    return ET.tostring(ann, encoding="utf-8")


def expected_image(record: dict) -> VOCImage:
    objects = tuple(
        VOCObject(
            label=VOC_CLASSES.index(obj["name"]),
            box=tuple(float(v) - 1 for v in obj["box"]),
            difficult=obj["difficult"] == 1,
            truncated=obj["truncated"] == 1,
        )
        for obj in record["objects"]
    )
    return VOCImage(record["id"], record["width"], record["height"], objects)


@settings(max_examples=300, deadline=None)
@given(voc_records())
def test_voc_xml_round_trips_through_the_parser(record):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{record['id']}.xml"
        path.write_bytes(voc_xml(record))
        assert parse_annotation(path) == expected_image(record)


# --- evaluator ---------------------------------------------------------------------------------

coordinate = st.integers(0, 600)
labels = st.integers(0, 19)


@st.composite
def gt_image(draw, image_id: str) -> VOCImage:
    width, height = draw(st.integers(8, 600)), draw(st.integers(8, 600))
    objects = []
    for _ in range(draw(st.integers(0, 5))):
        x1, y1 = draw(st.integers(0, width - 2)), draw(st.integers(0, height - 2))
        x2, y2 = draw(st.integers(x1 + 1, width - 1)), draw(st.integers(y1 + 1, height - 1))
        box = (float(x1), float(y1), float(x2), float(y2))
        objects.append(VOCObject(draw(labels), box, draw(st.booleans())))
    return VOCImage(image_id, width, height, tuple(objects))


@st.composite
def detection_row(draw) -> tuple:
    x1, y1 = draw(coordinate), draw(coordinate)
    w = draw(st.one_of(st.just(0), st.integers(0, 400), st.floats(0, 400, allow_nan=False)))
    h = draw(st.one_of(st.just(0), st.integers(0, 400), st.floats(0, 400, allow_nan=False)))
    score = draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(-1e6, 1e6)))
    return draw(labels), score, (x1, y1, x1 + w, y1 + h)


@st.composite
def scenes(draw) -> tuple[list[VOCImage], Detections]:
    """Ground truth of 1-6 images and detections on a shuffled subset of them."""
    n = draw(st.integers(1, 6))
    images = [draw(gt_image(f"{i:06d}")) for i in range(n)]
    reported = draw(st.permutations(range(n)))[: draw(st.integers(0, n))]
    rows = [(row, *det) for row in range(len(reported))
            for det in draw(st.lists(detection_row(), max_size=12))]  # fmt: skip
    rows = draw(st.permutations(rows))  # detections of images interleaved in the file
    return images, detections([images[i].image_id for i in reported], rows)


def _has_positive(images: list[VOCImage]) -> set[str]:
    return {VOC_CLASSES[o.label] for im in images for o in im.objects if not o.difficult}


def _in_unit_interval(value) -> bool:
    return value is not None and math.isfinite(value) and 0.0 <= value <= 1.0


@FAST
@given(scenes(), st.sampled_from(["voc07", "area"]), st.sampled_from([0.1, 0.5, 0.75, 1.0]))
def test_random_detections_never_crash_and_every_ap_is_in_unit_interval(scene, metric, iou):
    images, dets = scene
    result = evaluate(images, dets, metric, iou)
    positive = _has_positive(images)
    for name, ap in result["ap_per_class"].items():
        assert (ap is not None) == (name in positive)
        assert ap is None or _in_unit_interval(ap)
    assert (result["mAP"] is None) == (not positive)
    assert result["mAP"] is None or _in_unit_interval(result["mAP"])
    assert _in_unit_interval(result["mAP_all_classes"])
    assert result["detections"] == len(dets) and result["images"] == len(images)


@FAST
@given(st.lists(gt_image("x"), min_size=1, max_size=5), st.sampled_from(["voc07", "area"]))
def test_detections_equal_to_the_ground_truth_score_one(drawn, metric):
    images = []
    for i, image in enumerate(drawn):  # one box per class and place: duplicates are FPs
        unique = {(o.label, o.box): o for o in image.objects}
        images.append(VOCImage(f"{i:06d}", image.width, image.height, tuple(unique.values())))
    rows = [(i, o.label, 1.0, o.box) for i, im in enumerate(images) for o in im.objects]
    result = evaluate(images, detections([im.image_id for im in images], rows), metric)
    for name in _has_positive(images):
        assert result["ap_per_class"][name] == pytest.approx(1.0, rel=0, abs=ULP_SLACK)
    assert result["mAP"] is None or result["mAP"] == pytest.approx(1.0, rel=0, abs=ULP_SLACK)


def test_voc07_ap_of_perfect_detections_is_not_above_one():
    box = (0.0, 0.0, 9.0, 9.0)
    images = [VOCImage("000001", 20, 20, (VOCObject(0, box),))]
    result = evaluate(images, detections(["000001"], [(0, 0, 1.0, box)]), "voc07")
    assert result["ap_per_class"]["aeroplane"] <= 1.0 and result["mAP"] <= 1.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.sampled_from(["voc07", "area"]))
def test_scores_from_files_equal_scores_in_memory(scene, metric):
    images, dets = scene
    with tempfile.TemporaryDirectory() as tmp:
        year = Path(tmp) / "VOCdevkit" / "VOC2007"
        (year / "Annotations").mkdir(parents=True)
        (year / "ImageSets" / "Main").mkdir(parents=True)
        for image in images:
            objects = [
                {"name": VOC_CLASSES[o.label], "case": str.lower, "truncated": None,
                 "box": tuple(v + 1 for v in o.box), "difficult": int(o.difficult),
                 "order": ["xmin", "ymin", "xmax", "ymax"]}
                for o in image.objects
            ]  # fmt: skip
            record = {"id": image.image_id, "width": image.width, "height": image.height,
                      "depth": 3, "pretty": True, "objects": objects}  # fmt: skip
            (year / "Annotations" / f"{image.image_id}.xml").write_bytes(voc_xml(record))
        split = "".join(f"{image.image_id}\n" for image in images)
        (year / "ImageSets" / "Main" / "test.txt").write_text(split)
        npz = Path(tmp) / "detections.npz"
        np.savez(npz, **dets.arrays())
        from_files = evaluate_files(year.parent, npz, metric=metric)
    scored = {image.image_id: image for image in images}
    in_memory = evaluate([scored[i] for i in dets.image_ids.tolist()], dets, metric)
    assert from_files == in_memory
