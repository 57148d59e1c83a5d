"""detbench.evaluate against GluonCV's VOC07MApMetric / VOCMApMetric, the independent reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric, VOCMApMetric
from helpers import detections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detbench.data.voc import VOC_CLASSES, VOCImage, VOCObject
from detbench.evaluate import (
    DetectionsError,
    accuracy_flag,
    average_precisions,
    evaluate,
    evaluate_files,
    load_detections,
    write_map_json,
)

TOL = 1e-6
REFERENCE = {"voc07": VOC07MApMetric, "area": VOCMApMetric}


def image(image_id, *objects):
    """An image with objects given as (label, box) or (label, box, difficult)."""
    objs = tuple(VOCObject(o[0], tuple(map(float, o[1])), bool(o[2:] and o[2])) for o in objects)
    return VOCImage(image_id, 100, 100, objs)


def gluoncv(images, dets, metric):
    """GluonCV's AP per class and mAP, fed one image per update as its eval scripts do."""
    ref = REFERENCE[metric](iou_thresh=0.5, class_names=VOC_CLASSES)
    rows = {image_id: row for row, image_id in enumerate(dets.image_ids.tolist())}
    for im in images:
        sel = dets.image_index == rows.get(im.image_id, -1)
        gt_boxes = np.array([o.box for o in im.objects], dtype=np.float32).reshape(1, -1, 4)
        gt_labels = np.array([[o.label for o in im.objects]], dtype=np.float32).reshape(1, -1)
        gt_diff = np.array([[o.difficult for o in im.objects]], dtype=np.float32).reshape(1, -1)
        ref.update(
            dets.boxes[sel][None], dets.labels[sel][None], dets.scores[sel][None],
            gt_boxes, gt_labels, gt_diff,
        )  # fmt: skip
    _, values = ref.get()
    return np.array(values[:20], dtype=float), values[20]


def assert_matches_gluoncv(images, dets, metric):
    ref_aps, ref_map = gluoncv(images, dets, metric)
    result = evaluate(images, dets, metric)
    aps = np.array([np.nan if v is None else v for v in result["ap_per_class"].values()])
    np.testing.assert_array_equal(np.isnan(aps), np.isnan(ref_aps))
    np.testing.assert_allclose(aps, ref_aps, rtol=0, atol=TOL, equal_nan=True)
    if math.isnan(ref_map):
        assert result["mAP"] is None
    else:
        assert abs(result["mAP"] - ref_map) <= TOL
    return result


def random_case(rng, n_images=30, max_objects=6, max_dets=25, classes=range(20), p_difficult=0.2,
                ties=False, size=40, p_missing=0.1, only_difficult=None):  # fmt: skip
    """A random set of small integer-ish boxes (IoU often exactly at 0.5), GT and detections."""
    classes = np.array(list(classes))
    images, rows = [], []
    for i in range(n_images):
        objects = []
        for _ in range(rng.integers(0, max_objects + 1)):
            label = int(rng.choice(classes))
            x1, y1 = rng.integers(0, size, 2)
            w, h = rng.integers(1, size // 2, 2)
            difficult = rng.random() < p_difficult or label == only_difficult
            objects.append((label, (x1, y1, x1 + w, y1 + h), difficult))
        images.append(image(f"{i:06d}", *objects))
        if rng.random() < p_missing:
            continue  # an image the detector never reported
        for _ in range(rng.integers(0, max_dets + 1)):
            if objects and rng.random() < 0.6:
                label, (x1, y1, x2, y2), _ = objects[rng.integers(len(objects))]
                box = np.array([x1, y1, x2, y2], float) + rng.integers(-3, 4, 4) * 0.5
                box[2:] = np.maximum(box[2:], box[:2])
            else:
                label = int(rng.choice(classes))
                x1, y1 = rng.integers(0, size, 2)
                box = np.array([x1, y1, x1 + rng.integers(0, size // 2), y1 + rng.integers(0, 20)])
            score = rng.integers(0, 5) / 4 if ties else rng.random()
            rows.append((i, int(label), score, tuple(box)))
    perm = rng.permutation(len(rows))  # interleave images; file order within an image is kept
    rows = [rows[k] for k in perm]
    reported = sorted({r[0] for r in rows})
    shuffled = rng.permutation(reported).tolist()
    row_of = {img: row for row, img in enumerate(shuffled)}
    rows = [(row_of[r[0]], *r[1:]) for r in rows]
    return images, detections([f"{i:06d}" for i in shuffled], rows)


@pytest.mark.parametrize("metric", ["voc07", "area"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ties": True},
        {"ties": True, "max_dets": 60, "classes": [3, 7]},  # long tied groups: numpy's quicksort
        {"classes": [0, 1, 2, 14], "p_difficult": 0.5},
        {"classes": [4, 5, 6], "only_difficult": 5, "ties": True},
        {"max_objects": 1, "max_dets": 3, "p_missing": 0.5},
        {"max_objects": 0, "max_dets": 5, "n_images": 5},  # no GT at all: every AP undefined
        {"n_images": 120, "max_objects": 3, "max_dets": 10},
    ],
)
def test_random_sets_match_gluoncv(metric, options):
    for seed in range(6):
        rng = np.random.default_rng([seed, len(options)])
        images, dets = random_case(rng, **options)
        if not any(im.objects for im in images) and not len(dets):
            continue  # GluonCV's get() raises on an empty record
        assert_matches_gluoncv(images, dets, metric)


small_box = st.tuples(
    st.integers(0, 6), st.integers(0, 6), st.integers(1, 5), st.integers(1, 5)
).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))
small_image = st.tuples(
    st.lists(st.tuples(st.integers(0, 2), small_box, st.booleans()), max_size=4),
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from([0.25, 0.5, 0.75, 1.0]), small_box),
        max_size=6,
    ),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(small_image, min_size=1, max_size=5), st.sampled_from(["voc07", "area"]))
def test_generated_tiny_sets_match_gluoncv(cases, metric):
    images = [image(f"{i:06d}", *objs) for i, (objs, _) in enumerate(cases)]
    rows = [(i, *det) for i, (_, dets) in enumerate(cases) for det in dets]
    dets = detections([im.image_id for im in images], rows)
    if not any(im.objects for im in images) and not rows:
        return
    assert_matches_gluoncv(images, dets, metric)


def test_hand_computed_ranking_gives_devkit_aps():
    # two GT; detections by score: TP, FP (miss), TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    images = [image("a", (0, (0, 0, 9, 9)), (0, (50, 50, 59, 59)))]
    rows = [(0, 0, 0.9, (0, 0, 9, 9)), (0, 0, 0.8, (20, 20, 29, 29)), (0, 0, 0.7, (50, 50, 59, 59))]
    dets = detections(["a"], rows)
    voc07 = evaluate(images, dets, "voc07")
    assert voc07["ap_per_class"]["aeroplane"] == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    assert evaluate(images, dets, "area")["mAP"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert voc07["mAP"] == voc07["ap_per_class"]["aeroplane"]
    assert voc07["mAP_all_classes"] == pytest.approx(voc07["mAP"] / 20)
    assert_matches_gluoncv(images, dets, "voc07")


def test_plus_one_pixel_convention_decides_a_match_at_half_iou():
    # with +1: (5*10) / (10*10) = 0.5 -> a match; without it: (4*9) / (9*9) = 0.44 -> a miss
    images = [image("a", (0, (0, 0, 9, 9)))]
    dets = detections(["a"], [(0, 0, 0.9, (0, 0, 4, 9))])
    assert evaluate(images, dets)["mAP"] == pytest.approx(1.0)  # 11 * (1 / 11) in floats
    adjacent = detections(["a"], [(0, 0, 0.9, (10, 0, 19, 9))])  # touches the GT's edge: no overlap
    assert evaluate(images, adjacent)["mAP"] == 0.0
    for metric in ("voc07", "area"):
        assert_matches_gluoncv(images, dets, metric)


def test_duplicate_detections_on_one_gt_are_false_positives():
    images = [image("a", (2, (0, 0, 9, 9)))]
    dets = detections(["a"], [(0, 2, 0.9, (0, 0, 9, 9)), (0, 2, 0.8, (0, 0, 9, 9))])
    result = evaluate(images, dets, "area")
    assert result["ap_per_class"]["bird"] == 1.0  # the duplicate ranks below the only TP
    dets = detections(["a"], [(0, 2, 0.8, (0, 0, 9, 9)), (0, 2, 0.9, (1, 1, 9, 9))])
    assert evaluate(images, dets, "area")["mAP"] == 1.0  # higher score claims the GT first
    assert_matches_gluoncv(images, dets, "area")


def test_detection_whose_best_gt_is_taken_is_false_positive_even_if_another_gt_fits():
    images = [image("a", (0, (0, 0, 9, 9)), (0, (0, 0, 9, 7)))]
    rows = [(0, 0, 0.9, (0, 0, 9, 9)), (0, 0, 0.8, (0, 0, 9, 9))]
    result = evaluate(images, detections(["a"], rows), "area")
    assert result["mAP"] == pytest.approx(0.5)
    assert_matches_gluoncv(images, detections(["a"], rows), "area")


def test_difficult_objects_are_neither_true_nor_false_positives():
    images = [image("a", (1, (0, 0, 9, 9), True), (1, (50, 50, 59, 59)), (3, (0, 0, 9, 9), True))]
    rows = [(0, 1, 0.9, (0, 0, 9, 9)), (0, 1, 0.8, (50, 50, 59, 59)), (0, 3, 0.9, (0, 0, 9, 9))]
    result = evaluate(images, detections(["a"], rows))
    assert result["ap_per_class"]["bicycle"] == pytest.approx(1.0)
    assert result["ap_per_class"]["boat"] is None  # only difficult GT: no AP, not in the mean
    assert result["mAP"] == pytest.approx(1.0)
    assert result["mAP_all_classes"] == pytest.approx(1 / 20)
    assert (result["objects"], result["difficult"], result["detections"]) == (3, 2, 3)
    assert_matches_gluoncv(images, detections(["a"], rows), "voc07")


def test_class_without_detections_scores_zero_and_empty_images_count():
    images = [image("a", (0, (0, 0, 9, 9)), (7, (0, 0, 9, 9))), image("b"), image("c")]
    dets = detections(["a", "b"], [(0, 0, 0.5, (0, 0, 9, 9)), (1, 0, 0.4, (0, 0, 9, 9))])
    result = evaluate(images, dets)
    assert result["ap_per_class"]["cat"] == 0.0
    assert result["ap_per_class"]["aeroplane"] == pytest.approx(1.0)
    assert result["images"] == 3 and result["mAP"] == pytest.approx(0.5)
    assert_matches_gluoncv(images, dets, "voc07")


def test_no_detections_at_all():
    images = [image("a", (0, (0, 0, 9, 9)))]
    dets = detections(["a"], [])
    assert evaluate(images, dets)["mAP"] == 0.0
    assert evaluate(images, dets, "area")["mAP"] == 0.0


def test_no_ground_truth_gives_null_map_and_valid_json(tmp_path):
    dets = detections(["a"], [(0, 0, 0.5, (0, 0, 9, 9))])
    result = evaluate([image("a")], dets, published_map=0.7)
    assert result["mAP"] is None and result["mAP_all_classes"] == 0.0
    assert "undefined" in result["accuracy_flag"]
    write_map_json(result, tmp_path / "map.json")
    assert json.loads((tmp_path / "map.json").read_text())["mAP"] is None


def test_detections_for_images_outside_the_set_are_rejected():
    with pytest.raises(DetectionsError, match="unknown: 'b'"):
        evaluate([image("a")], detections(["a", "b"], []))


def test_bad_metric_and_threshold_are_rejected():
    dets = detections(["a"], [])
    with pytest.raises(ValueError, match="expected one of voc07, area, got 'coco'"):
        evaluate([image("a")], dets, "coco")
    with pytest.raises(ValueError, match="iou_threshold"):
        average_precisions([image("a")], dets, iou_threshold=0)


# --- accuracy check ---------------------------------------------------------------------------


def test_accuracy_flag_only_beyond_one_point_and_never_for_untrained():
    assert accuracy_flag(0.790, 0.7995) is None
    flag = accuracy_flag(0.70, 0.801)
    assert "-10.10 points" in flag and "0.8010" in flag
    assert accuracy_flag(0.70, 0.801, untrained=True) is None
    assert accuracy_flag(0.70, None) is None


def test_map_json_records_accuracy_check(tmp_path):
    images = [image("a", (0, (0, 0, 9, 9)))]
    dets = detections(["a"], [(0, 0, 0.9, (0, 0, 9, 9))])
    trained = evaluate(images, dets, published_map=0.8)
    assert trained["accuracy_flag"] and trained["published_mAP"] == 0.8
    assert trained["weights_untrained"] is False
    untrained = evaluate(images, dets, published_map=0.8, untrained=True)
    assert untrained["accuracy_flag"] is None and untrained["published_mAP"] == 0.8
    assert untrained["weights_untrained"] is True
    assert evaluate(images, dets, published_map=0.995)["accuracy_flag"] is None
    with pytest.raises(ValueError, match="fraction"):
        evaluate(images, dets, published_map=80.1)
    out = write_map_json(trained, tmp_path / "run" / "map.json")
    assert list(json.loads(out.read_text())) == [
        "metric", "iou_threshold", "mAP", "mAP_all_classes", "map_averages", "ap_per_class",
        "images", "objects", "difficult", "detections", "weights_untrained", "published_mAP",
        "accuracy_flag",
    ]  # fmt: skip
    assert [p.name for p in out.parent.iterdir()] == ["map.json"]


# --- detections.npz ---------------------------------------------------------------------------


def good_arrays():
    return detections(["000001", "000002"], [(0, 1, 0.5, (0, 0, 9, 9)), (1, 19, 0.2, (1, 2, 3, 4))])


def save(tmp_path, **changes):
    arrays = good_arrays().arrays()
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "detections.npz"
    np.savez(path, **arrays)
    return path


def test_load_detections_roundtrip(tmp_path):
    dets = load_detections(save(tmp_path), known_ids=["000001", "000002", "000003"])
    assert dets.image_ids.tolist() == ["000001", "000002"]
    assert dets.labels.dtype == np.int64 and len(dets) == 2


F32 = np.float32
BREACHES = [
    ({"scores": None}, r"missing 'scores'"),
    ({"boxes": np.zeros((2, 3), F32)}, r"'boxes': expected shape \(M, 4\) .* got \(2, 3\)"),
    ({"labels": np.array([1], np.int64)}, r"'labels': expected shape \(M,\) .*= 2, got \(1,\)"),
    ({"labels": np.array([1.0, 2.0])}, r"'labels': expected an int array, got dtype float64"),
    ({"scores": np.array([0.5, np.nan], F32)}, r"'scores': row 1: .* got nan"),
    ({"boxes": np.array([[0, 0, 9, 9], [5, 0, 4, 9]], F32)}, r"'boxes': row 1: expected xmin <="),
    ({"boxes": np.array([[0, 0, np.inf, 9], [0, 0, 4, 9]], F32)}, r"'boxes': row 0: expected fin"),
    ({"labels": np.array([1, 20])}, r"'labels': row 1: expected a class index in 0..19, got 20"),
    ({"labels": np.array([-1, -1])}, r"'labels': row 0 \(and 1 more\)"),
    ({"image_index": np.array([0, 2])}, r"'image_index': row 1: .* in 0..1, got 2"),
    ({"image_ids": np.array([1, 2])}, r"'image_ids': expected a 1-d str array"),
    ({"image_ids": np.array(["000001", "000001"])}, r"expected each id once"),
    ({"image_ids": np.array(["000001", "999999"])}, r"3 known image ids, got 1 unknown: '999999'"),
]


@pytest.mark.parametrize(("changes", "message"), BREACHES)
def test_load_detections_rejects_contract_breaches(tmp_path, changes, message):
    path = save(tmp_path, **changes)
    with pytest.raises(DetectionsError, match=message) as info:
        load_detections(path, known_ids=["000001", "000002", "000003"])
    assert str(info.value).startswith(str(path))


def test_load_detections_refuses_pickled_object_array(tmp_path):
    path = save(tmp_path, image_ids=np.array(["000001", "000002"], dtype=object))
    with pytest.raises(DetectionsError, match="expected a plain numpy array, got a pickled"):
        load_detections(path)


def test_load_detections_rejects_missing_and_non_npz_files(tmp_path):
    with pytest.raises(DetectionsError, match="not found"):
        load_detections(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DetectionsError, match="expected an .npz archive"):
        load_detections(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DetectionsError, match="got a single array"):
        load_detections(tmp_path / "single.npy")


# --- evaluate_files on a devkit on disk -------------------------------------------------------


def write_devkit(root, images):
    base = root / "VOC2007"
    (base / "Annotations").mkdir(parents=True)
    (base / "ImageSets" / "Main").mkdir(parents=True)
    split = base / "ImageSets" / "Main" / "test.txt"
    split.write_text("".join(f"{i.image_id}\n" for i in images))
    for im in images:
        objects = "".join(
            f"<object><name>{VOC_CLASSES[o.label]}</name><difficult>{int(o.difficult)}</difficult>"
            "<bndbox>" + "".join(f"<{t}>{int(v) + 1}</{t}>" for t, v in zip(
                ("xmin", "ymin", "xmax", "ymax"), o.box, strict=True)) + "</bndbox></object>"
            for o in im.objects
        )  # fmt: skip
        (base / "Annotations" / f"{im.image_id}.xml").write_text(
            f"<annotation><size><width>{im.width}</width><height>{im.height}</height></size>"
            f"{objects}</annotation>"
        )
    return root


def test_evaluate_files_scores_the_listed_images_of_the_split(tmp_path):
    images, dets = random_case(np.random.default_rng(7), n_images=12, p_missing=0.3)
    extra = [image(f"{900000 + i}", (3, (0, 0, 9, 9))) for i in range(4)]
    devkit = write_devkit(tmp_path / "VOCdevkit", images + extra)
    path = tmp_path / "detections.npz"
    np.savez(path, **dets.arrays())
    result = evaluate_files(devkit, path, metric="area", published_map=0.5)
    by_id = {im.image_id: im for im in images}
    listed = [by_id[i] for i in dets.image_ids.tolist()]
    assert result["images"] == len(listed) < len(images)
    assert result == evaluate(listed, dets, "area", published_map=0.5)
    assert result["objects"] == sum(len(im.objects) for im in listed)
    assert_matches_gluoncv(listed, dets, "area")


def test_evaluate_files_rejects_ids_outside_the_split(tmp_path):
    devkit = write_devkit(tmp_path / "VOCdevkit", [image("000001"), image("000002")])
    path = tmp_path / "detections.npz"
    np.savez(path, **{**good_arrays().arrays(), "image_ids": np.array(["000001", "000009"])})
    message = "among the 2 image ids of split 'test' in .*VOCdevkit, got 1 unknown: '000009'"
    with pytest.raises(DetectionsError, match=message):
        evaluate_files(devkit, path)


def test_published_map_is_compared_only_with_a_measurement_made_the_same_way():
    from detbench import zoo
    from detbench.evaluate import published_reference

    nano = zoo.model_info("mobilenetv2_yolov3_nano_voc")
    assert published_reference(nano, "area", 4952) == (
        0.6527,
        "compared with the published 0.6527 (tolerance 1 point)",
    )
    published, why = published_reference(nano, "area", 24)
    assert published is None and "4952 VOC2007 test images, this run on 24" in why
    published, why = published_reference(nano, "voc07", 4952)
    assert published is None and "area mAP, this run is scored with voc07" in why
    ssd = zoo.model_info("ssd_512_resnet50_v1_voc")
    assert published_reference(ssd, "voc07", 4952)[0] == 0.801
    assert published_reference(ssd, "voc07", 4952, untrained=True)[0] is None
