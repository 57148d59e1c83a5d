"""Registry of the PASCAL VOC detectors detbench runs: GluonCV's model zoo and darknet YOLO models.

Plain data, importable on Python 3.6 by the device runner and by the orchestrator's config
validation (no mxnet, no gluoncv). Each entry:

- ``family``: ssd | yolo3 | faster_rcnn | center_net (Double-Head R-CNN counts as faster_rcnn) |
  darknet (a darknet ``.cfg`` + ``.weights`` pair, built by :mod:`detbench.runner.darknet`);
- ``eval``: the model's own GluonCV eval transform, ``{"size": N}`` (SSD, YOLOv3, CenterNet) or
  ``{"short": 600, "max_size": 1000}`` (R-CNN);
- ``speed_shape``: (height, width) of a batch-1 speed run, ``None`` meaning the config's
  ``speed.size`` square;
- ``published_map``: VOC2007 test mAP as its authors publish it, ``None`` where none is published
  (the accuracy check of the evaluation then has nothing to compare); ``published_metric``: the
  AP definition of that figure (``voc07`` 11-point for GluonCV, ``area`` for darknet's
  ``detector map``) and ``published_images``: the images it was measured on (the 4952 of
  VOC2007 test). The check compares only a measurement of the same metric on that many images;
- ``store_name`` / ``sha1``: the file of GluonCV's model store that holds the weights and its
  sha1 (``gluoncv.model_zoo.model_store._model_sha1``), ``None`` where the store has none;
- ``int8`` / ``base``: an ``_int8`` model is the INT8 version of the FP32 model ``base``. A
  GluonCV one is GluonCV's INT8 symbol (shipped inside the gluoncv package) run with the FP32
  weights of ``base`` (the store has no INT8 weights of its own), or the ``quantized`` source's
  own INT8 net of them; a darknet one (``mobilenetv2_yolov3_nano_voc_int8``) has only the
  ``quantized`` source, which quantizes its base's darknet ``.cfg`` + ``.weights``. Nobody
  publishes an INT8 mAP of a darknet model, so its ``published_map`` is ``None``; the rest of
  the entry (family, transforms, ``published_metric``) is its base's;
- ``requires``: what the model needs beyond a plain MXNet build, ``None`` if nothing;
- ``darknet`` (FP32 darknet models only, ``None`` for their ``_int8``): ``cfg`` and ``weights``,
  each ``{"path", "url", "sha256"}``: the project's own copy (a path relative to the repository)
  and the upstream URL; the weights source ``darknet`` fetches them (``weights.files`` may name
  others).
"""

SSD, YOLO3, FASTER_RCNN, CENTER_NET = "ssd", "yolo3", "faster_rcnn", "center_net"
DARKNET = "darknet"
VOC07_TEST_IMAGES = 4952

GLUONCV_ZOO_URL = "https://cv.gluon.ai/model_zoo/detection.html"

_RCNN_EVAL = {"short": 600, "max_size": 1000}
_RCNN_SPEED = (600, 800)  # a 4:3 VOC image through the 600/1000 eval transform
_DCNV2 = (
    "MXNet's ModulatedDeformableConvolution (mx.gluon.contrib.cnn), absent from the "
    "MXNet 1.6 pip wheel"
)
_MKLDNN = "an MXNet build with MKL-DNN/oneDNN, CPU only (its fused _sg_mkldnn_* operators)"


def _model(family, eval_spec, published_map, sha1, speed_shape=None, requires=None):
    return {
        "family": family,
        "eval": eval_spec,
        "published_map": published_map,
        "speed_shape": speed_shape,
        "sha1": sha1,
        "int8": False,
        "base": None,
        "requires": requires,
        "published_metric": "voc07",
        "published_images": VOC07_TEST_IMAGES,
        "darknet": None,
    }


# published_map: GluonCV's model zoo tables, dmlc/gluon-cv docs/model_zoo/csv_tables/Detections/
# Pascal_SSD.csv, Pascal_YOLO-v3.csv (416x416 rows), Pascal_Faster-RCNN.csv and
# Pascal_CenterNet.csv ("Orig" column: no flip test, as detbench evaluates), shown at
# GLUONCV_ZOO_URL. sha1: gluoncv 0.10.5 model_zoo/model_store.py, _model_sha1.
_FP32 = {
    "ssd_300_vgg16_atrous_voc": _model(
        SSD, {"size": 300}, 0.776, "0e169fbb64efdee6985c3c175ec4298c4bda0298"
    ),
    "ssd_512_vgg16_atrous_voc": _model(
        SSD, {"size": 512}, 0.792, "daf8181b615b480236fcb8474545077891276945"
    ),
    "ssd_512_resnet18_v1_voc": _model(SSD, {"size": 512}, None, None),
    "ssd_512_resnet50_v1_voc": _model(
        SSD, {"size": 512}, 0.801, "9c8b225a552614e4284a0f647331bfdc6940eb4a"
    ),
    "ssd_512_resnet101_v2_voc": _model(
        SSD, {"size": 512}, None, "2cc0f93edf1467f428018cc7261d3246dfa15259"
    ),
    "ssd_512_resnet152_v2_voc": _model(SSD, {"size": 512}, None, None),
    "ssd_512_mobilenet1.0_voc": _model(
        SSD, {"size": 512}, 0.754, "37c180765a4eb3e67751d6bacac47bb9156f5fff"
    ),
    "ssd_300_mobilenet0.25_voc": _model(SSD, {"size": 300}, None, None),
    "ssd_300_resnet34_v1b_voc": _model(SSD, {"size": 300}, None, None),
    "yolo3_darknet53_voc": _model(
        YOLO3, {"size": 416}, 0.815, "f5ece5ce1422eeca3ce2908004e469ffdf91fd41"
    ),
    "yolo3_mobilenet1.0_voc": _model(
        YOLO3, {"size": 416}, 0.758, "3b47835ac3dd80f29576633949aa58aee3094353"
    ),
    "yolo3_mobilenet0.25_voc": _model(YOLO3, {"size": 416}, None, None),
    "faster_rcnn_resnet50_v1b_voc": _model(
        FASTER_RCNN, _RCNN_EVAL, 0.783, "447328d89d70ae1e2ca49226b8d834e5a5456df3", _RCNN_SPEED
    ),
    "faster_rcnn_resnet101_v1d_voc": _model(FASTER_RCNN, _RCNN_EVAL, None, None, _RCNN_SPEED),
    "doublehead_rcnn_resnet50_v1b_voc": _model(
        FASTER_RCNN, _RCNN_EVAL, None, None, _RCNN_SPEED, requires="GluonCV >= 0.9"
    ),
    "center_net_resnet18_v1b_voc": _model(
        CENTER_NET, {"size": 512}, 0.668, "38c509d456a6e14e4c54e961ed43bffe8cf62840"
    ),
    "center_net_resnet18_v1b_dcnv2_voc": _model(
        CENTER_NET,
        {"size": 512},
        0.712,
        "04d1ed20ae3f8a150bc06d8007775a6df99e40b2",
        requires=_DCNV2,
    ),
    "center_net_resnet50_v1b_voc": _model(
        CENTER_NET, {"size": 512}, 0.718, "f108427bc62c85f7bcbdba45db4c94a31fd4d4f6"
    ),
    "center_net_resnet50_v1b_dcnv2_voc": _model(
        CENTER_NET,
        {"size": 512},
        0.756,
        "61eb866d36ef68b1145a74a5b4e76ba262dbb4e4",
        requires=_DCNV2,
    ),
    "center_net_resnet101_v1b_voc": _model(
        CENTER_NET, {"size": 512}, 0.755, "5bf8b91f8813e82a2f2660c83560ffdfebf835a0"
    ),
    "center_net_resnet101_v1b_dcnv2_voc": _model(
        CENTER_NET,
        {"size": 512},
        0.767,
        "a0e707225164fc578b5bb7187a79e6b492da8fb4",
        requires=_DCNV2,
    ),
    "center_net_dla34_voc": _model(CENTER_NET, {"size": 512}, None, None),
    "center_net_dla34_dcnv2_voc": _model(CENTER_NET, {"size": 512}, None, None, requires=_DCNV2),
    "center_net_mobilenetv3_large_duc_voc": _model(
        CENTER_NET, {"size": 512}, None, "2cab979937586d3f8532d86130030c611ae38d2d"
    ),
    "center_net_mobilenetv3_small_duc_voc": _model(
        CENTER_NET, {"size": 512}, None, "8a8e9cbcbac3a496f0904dc22e148b1978ea672f"
    ),
}

_NANO_DIR = "models/mobilenetv2-yolov3-nano-voc/"
_NANO_URL = (
    "https://raw.githubusercontent.com/dog-qiuqiu/MobileNet-Yolo/"
    "86c05bfc4e508d54a459a469faecc35a113454c1/MobileNetV2-YOLOv3-Nano/VOC/"
)


def _darknet_file(name, sha256):
    return {"path": _NANO_DIR + name, "url": _NANO_URL + name, "sha256": sha256}


# Darknet YOLO models: provenance, licence and hashes in models/<dir>/SOURCE.md. published_map:
# the model's own darknet `detector map` log (models/<dir>/VOCmAP), area under the PR curve.
_DARKNET = {
    "mobilenetv2_yolov3_nano_voc": dict(
        _model(DARKNET, {"size": 320}, 0.6527, None, speed_shape=(320, 320)),
        published_metric="area",
        darknet={
            "cfg": _darknet_file(
                "MobileNetV2-YOLOv3-Nano-voc.cfg",
                "671b726a719f21cb72d80326195be8ab6862361479ee5d1d4528ed68ae9d6a6b",
            ),
            "weights": _darknet_file(
                "MobileNetV2-YOLOv3-Nano-voc.weights",
                "3dc752a0dee830fb974bfd518d88df924d1eef03868e551786d606cd0f81c210",
            ),
        },
    ),
}

# GluonCV's INT8 SSDs (Pascal_SSD.csv, "*_int8" rows; evaluated with nms_topk=200, which their
# symbols carry built in).
_INT8_MAP = {
    "ssd_300_vgg16_atrous_voc": 0.7746,
    "ssd_512_vgg16_atrous_voc": 0.7839,
    "ssd_512_resnet50_v1_voc": 0.8016,
    "ssd_512_mobilenet1.0_voc": 0.7504,
}


# The trained darknet Nano in INT8: weights source `quantized` (quantize_net of its darknet files,
# the yolo-head convolutions kept FP32); no published INT8 figure.
_INT8_DARKNET = {"mobilenetv2_yolov3_nano_voc": None}


def _int8(base, published_map):
    entry = dict(_FP32.get(base) or _DARKNET[base])
    entry.update(published_map=published_map, int8=True, base=base, requires=_MKLDNN, darknet=None)
    return entry


MODELS = dict(_FP32)
MODELS.update(_DARKNET)
MODELS.update(
    (base + "_int8", _int8(base, published_map))
    for base, published_map in [*_INT8_MAP.items(), *_INT8_DARKNET.items()]
)
for _name, _entry in MODELS.items():
    _entry["store_name"] = (_entry["base"] or _name) if _entry["sha1"] else None
del _name, _entry


def model_info(name):
    """The registry entry of ``name``; the error lists the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(
            "unknown model {!r}; known VOC detectors: {}".format(name, ", ".join(sorted(MODELS)))
        ) from None


def is_darknet(name):
    """Whether ``name`` is a darknet network (its ``_int8`` too: same layers and transforms)."""
    return model_info(name)["family"] == DARKNET


def runs_darknet_files(name):
    """Whether ``name`` runs from a darknet ``.cfg`` + ``.weights`` pair (weights source
    ``darknet``): a darknet model, not its ``_int8``, which runs as an MXNet INT8 symbol."""
    return is_darknet(name) and not model_info(name)["int8"]


def fp32_name(name):
    """The FP32 model whose weights ``name`` runs on: the base of an ``_int8`` model, else
    ``name`` itself."""
    return model_info(name)["base"] or name
