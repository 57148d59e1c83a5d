"""detbench.zoo against GluonCV's own model list and sha1 table, its darknet entries against the
project's copies of their files, and the eval transforms' box mapping against GluonCV's own
ground-truth transforms."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from gluoncv import model_zoo
from gluoncv.data.transforms.presets import center_net, rcnn, ssd
from gluoncv.model_zoo import quantized
from gluoncv.model_zoo.model_store import _model_sha1
from helpers import REPO

from detbench import zoo
from detbench.runner import nets

SEGMENTATION = ("fcn_", "psp_", "deeplab_")
FAMILY_MODULES = {
    zoo.SSD: "gluoncv.model_zoo.ssd",
    zoo.YOLO3: "gluoncv.model_zoo.yolo",
    zoo.FASTER_RCNN: "gluoncv.model_zoo.rcnn.faster_rcnn",
    zoo.CENTER_NET: "gluoncv.model_zoo.center_net",
}


GLUONCV_MODELS = {name: info for name, info in zoo.MODELS.items() if not zoo.is_darknet(name)}
DARKNET_MODELS = {name: info for name, info in zoo.MODELS.items() if info["darknet"] is not None}


def gluoncv_voc_detectors() -> set[str]:
    return {
        name
        for name in model_zoo.get_model_list()
        if re.search(r"_voc(_int8)?$", name) and not name.startswith(SEGMENTATION)
    }


def test_every_gluoncv_voc_detector_is_registered_and_nothing_else():
    assert set(GLUONCV_MODELS) == gluoncv_voc_detectors()


def test_sha1_matches_gluoncv_model_store_table():
    for name, info in GLUONCV_MODELS.items():
        store_name = zoo.fp32_name(name)
        assert info["sha1"] == _model_sha1.get(store_name), name
        assert info["store_name"] == (store_name if info["sha1"] else None), name


def test_family_matches_the_gluoncv_module_that_builds_the_model():
    for name, info in GLUONCV_MODELS.items():
        if info["int8"]:
            continue  # built from a symbol file; its base's entry is checked
        module = model_zoo.model_zoo._models[name].__module__
        assert module.startswith(FAMILY_MODULES[info["family"]]), (name, module)


def test_eval_transform_and_speed_shape_follow_the_family():
    for name, info in GLUONCV_MODELS.items():
        if info["family"] == zoo.SSD:
            assert info["eval"] == {"size": int(name.split("_")[1])}, name
        elif info["family"] == zoo.YOLO3:
            assert info["eval"] == {"size": 416}
        elif info["family"] == zoo.CENTER_NET:
            assert info["eval"] == {"size": 512}
        else:
            assert info["eval"] == {"short": 600, "max_size": 1000}
            assert info["speed_shape"] == (600, 800)
        if info["family"] != zoo.FASTER_RCNN:
            assert info["speed_shape"] is None, name


def test_published_map_is_a_fraction_and_only_for_models_with_store_weights():
    for name, info in GLUONCV_MODELS.items():
        published = info["published_map"]
        assert published is None or 0.5 < published < 0.9, name
        if info["sha1"] is None:
            assert published is None, name
    seed_models = ("ssd_512_resnet50_v1_voc", "ssd_300_vgg16_atrous_voc", "yolo3_darknet53_voc")
    assert all(
        zoo.MODELS[m]["published_map"] for m in seed_models + ("faster_rcnn_resnet50_v1b_voc",)
    )


def test_int8_models_name_their_base_and_gluoncv_ships_their_symbol():
    int8 = {name: info for name, info in zoo.MODELS.items() if info["int8"]}
    assert len(int8) == 5
    for name, info in int8.items():
        assert info["base"] == name[: -len("_int8")] and not zoo.MODELS[info["base"]]["int8"]
        assert info["requires"] == zoo.MODELS["ssd_512_mobilenet1.0_voc_int8"]["requires"]
        if zoo.is_darknet(name):
            continue  # quantized by detbench (weights source quantized); test_darknet_int8.py
        symbol = Path(quantized.__file__).with_name(f"{name}-symbol.json")
        assert symbol.read_text().startswith("{"), symbol


def test_darknet_entries_name_the_projects_copies_with_their_sha256_and_provenance():
    assert "mobilenetv2_yolov3_nano_voc" in DARKNET_MODELS
    for name, info in DARKNET_MODELS.items():
        assert info["family"] == zoo.DARKNET and zoo.is_darknet(name), name
        assert info["published_metric"] == "area" and 0.5 < info["published_map"] < 0.9, name
        assert info["published_images"] == zoo.VOC07_TEST_IMAGES
        for entry in info["darknet"].values():
            local = REPO / entry["path"]
            assert hashlib.sha256(local.read_bytes()).hexdigest() == entry["sha256"], local
            assert entry["url"].startswith("https://") and entry["url"].endswith(local.name)
            assert (local.parent / "SOURCE.md").read_text().count(entry["sha256"]) == 1


def test_unknown_model_error_lists_known_names():
    with pytest.raises(KeyError, match="yolo9_voc.*ssd_512_resnet50_v1_voc"):
        zoo.model_info("yolo9_voc")


def test_zoo_imports_without_mxnet():
    code = "import sys, detbench.zoo; assert not {'mxnet', 'gluoncv'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# The eval transforms map detections back to original-image pixels. GluonCV's own val
# transforms move ground-truth boxes into the network's input frame: mapping those back must
# give the original boxes.
ORIGINAL = np.array([[10.0, 20.0, 300.0, 200.0, 1.0], [0.0, 0.0, 499.0, 374.0, 2.0]], "float32")


def image(height: int = 375, width: int = 500) -> mx.nd.NDArray:
    rng = np.random.default_rng(0)
    return mx.nd.array(rng.integers(0, 255, (height, width, 3)), dtype="uint8")


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nets.ResizeTransform(512, 512), ssd.SSDDefaultValTransform(512, 512)),
        (nets.FasterRCNNTransform(600, 1000), rcnn.FasterRCNNDefaultValTransform(600, 1000)),
        (nets.CenterNetTransform(512), center_net.CenterNetDefaultValTransform(512, 512)),
    ],
    ids=["ssd-yolo3", "faster-rcnn", "center-net"],
)
def test_eval_transform_maps_input_frame_boxes_back_to_original_pixels(ours, theirs):
    picture = image()
    tensor, unwarp = ours(picture)
    reference = theirs(picture, ORIGINAL.copy())
    assert tensor.shape == reference[0].shape
    in_input_frame = reference[1][:, :4]
    np.testing.assert_allclose(unwarp(in_input_frame), ORIGINAL[:, :4], atol=0.5)
