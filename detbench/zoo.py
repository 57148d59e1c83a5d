"""Registry of GluonCV's PASCAL VOC detectors.

Plain data, importable on Python 3.6 by the device runner and by the orchestrator's config
validation. ``published_map`` is the VOC07 test mAP from the GluonCV model zoo table
(https://cv.gluon.ai/model_zoo/detection.html), used by the evaluation's accuracy check.
``eval`` describes the model's own GluonCV eval transform; ``speed_shape`` is the (height, width)
of a batch-1 speed run, ``None`` meaning the config's ``speed.size`` square.
"""

SSD, YOLO3, FASTER_RCNN, CENTER_NET = "ssd", "yolo3", "faster_rcnn", "center_net"


def _model(family, eval_size, published_map, speed_shape=None, int8=False):
    return {
        "family": family,
        "eval": eval_size,
        "published_map": published_map,
        "speed_shape": speed_shape,
        "int8": int8,
    }


_RCNN_EVAL = {"short": 600, "max_size": 1000}
_RCNN_SPEED = (600, 800)  # a 4:3 VOC image through the 600/1000 eval transform

MODELS = {
    "ssd_300_vgg16_atrous_voc": _model(SSD, {"size": 300}, 0.776),
    "ssd_512_vgg16_atrous_voc": _model(SSD, {"size": 512}, 0.790),
    "ssd_512_resnet50_v1_voc": _model(SSD, {"size": 512}, 0.801),
    "ssd_512_mobilenet1.0_voc": _model(SSD, {"size": 512}, 0.756),
    "ssd_300_vgg16_atrous_voc_int8": _model(SSD, {"size": 300}, 0.774, int8=True),
    "ssd_512_vgg16_atrous_voc_int8": _model(SSD, {"size": 512}, 0.788, int8=True),
    "ssd_512_resnet50_v1_voc_int8": _model(SSD, {"size": 512}, 0.800, int8=True),
    "ssd_512_mobilenet1.0_voc_int8": _model(SSD, {"size": 512}, 0.753, int8=True),
    "yolo3_darknet53_voc": _model(YOLO3, {"size": 416}, 0.815),
    "yolo3_mobilenet1.0_voc": _model(YOLO3, {"size": 416}, 0.759),
    "faster_rcnn_resnet50_v1b_voc": _model(FASTER_RCNN, _RCNN_EVAL, 0.784, _RCNN_SPEED),
    "faster_rcnn_resnet101_v1d_voc": _model(FASTER_RCNN, _RCNN_EVAL, 0.818, _RCNN_SPEED),
    "center_net_resnet18_v1b_voc": _model(CENTER_NET, {"size": 512}, 0.701),
    "center_net_resnet50_v1b_voc": _model(CENTER_NET, {"size": 512}, 0.758),
    "center_net_resnet101_v1b_voc": _model(CENTER_NET, {"size": 512}, 0.786),
}


def model_info(name):
    """The registry entry of ``name``; the error lists the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(
            "unknown model {!r}; known GluonCV VOC detectors: {}".format(
                name, ", ".join(sorted(MODELS))
            )
        ) from None
