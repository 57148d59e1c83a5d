"""OpenCV's DNN module (``cv2.dnn``) as an inference engine: spec ``backend: opencv``.

What it runs, in this order:

- a darknet model (``weights.format: darknet``): ``cv2.dnn.readNetFromDarknet`` on the cfg and
  ``.weights`` bytes, both sha256-checked first. OpenCV computes the network and its ``[yolo]``
  layers (rows ``[cx, cy, w, h, objectness, objectness * class probability ...]``); the cfg is
  handed over with ``thresh=0`` in each ``[yolo]`` section, since OpenCV otherwise zeroes class
  scores under its own floor (0.2), and :mod:`detbench.runner.yolo_decode` then applies
  detbench's decoding: the MXNet block's candidate floor (0.005), multi-label scores, per-class
  NMS 0.45 over the best 400, 100 rows (voc runs: ``nets.use_eval_nms``, the same settings).
  OpenCV before 4.4 ignores ``scale_x_y``: such a cfg is refused there;
- otherwise an ONNX file (``model_file: {format: onnx, path, sha256, outputs?, error?}``, as
  ``detbench.runner.onnx_export`` records it): ``cv2.dnn.readNetFromONNX``. Its outputs are
  taken to be the exported detector's ``(ids, scores, boxes)`` (in ``outputs``' order when the
  record names them), returned as they are: the graph's own decoding and NMS. An export that
  failed, a file OpenCV cannot parse (MXNet's exports of GluonCV detectors: OpenCV 4.11 refuses
  their Reshape/Squeeze nodes) or cannot run is a :class:`OpenCVError`, so the run is recorded
  failed with it.

Device: ``cpu`` -> ``DNN_BACKEND_OPENCV`` + ``DNN_TARGET_CPU``; ``gpuN`` -> ``DNN_BACKEND_CUDA``
on CUDA device N with ``DNN_TARGET_CUDA`` (FP32, the precision of the MXNet runs; spec
``precision: fp16`` asks for ``DNN_TARGET_CUDA_FP16``), or an :class:`OpenCVError` naming what
the build lacks. Threads: ``cv2.setNumThreads`` to the run's thread count. The engine's ``info``
(result.json ``backend``) records the OpenCV version, the backend and target chosen and a few
lines of ``cv2.getBuildInformation()``.
"""

import re

import numpy as np

from detbench.contract import DetbenchError
from detbench.runner import engines, environment, nets

BUILD_KEYS = (
    ("parallel_framework", "Parallel framework"),
    ("cpu_baseline", "Baseline"),
    ("cpu_dispatched", "Dispatched code generation"),
    ("inference_engine", "Inference Engine"),
    ("nvidia_cuda", "NVIDIA CUDA"),
    ("cudnn", "cuDNN"),
    ("opencl", "OpenCL"),
)


SCALE_X_Y_FROM = (4, 4)  # OpenCV reads [yolo] scale_x_y from 4.4.0 on (its YOLOv4 support)


class OpenCVError(DetbenchError, RuntimeError):
    """OpenCV cannot load or run the model, or lacks what the run's device needs."""


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise engines.BackendUnavailable(
            "backend opencv: the runner's Python has no cv2 ({}); install opencv-python (or "
            "a CUDA build of OpenCV for gpu devices) into it, or choose another backend".format(exc)
        ) from exc
    return cv2


def build_facts(cv2):
    """``cuda`` (the DNN module has CUDA targets) and a few lines of the build information,
    each None where the build does not list it."""
    text = cv2.getBuildInformation()
    facts = {"cuda": bool(_targets(cv2, "DNN_BACKEND_CUDA"))}
    for key, label in BUILD_KEYS:
        found = re.search(r"^\s*" + re.escape(label) + r":[ \t]*(.*)$", text, re.MULTILINE)
        facts[key] = " ".join(found.group(1).split()) if found else None
    return facts


def _targets(cv2, backend):
    """``cv2.dnn.getAvailableTargets`` of the backend named, or [] where this OpenCV lacks the
    backend or the function (OpenCV < 4.2, e.g. JetPack 4.4's 4.1.1)."""
    value = getattr(cv2.dnn, backend, None)
    available = getattr(cv2.dnn, "getAvailableTargets", None)
    if value is None or available is None:
        return []
    try:
        return list(available(value))
    except cv2.error:
        return []


def choose_device(cv2, context, precision=None):
    """(backend, target) names of ``cv2.dnn`` constants for ``cpu`` or ``gpuN``; ``gpuN`` also
    makes device N the current CUDA device. Raises OpenCVError naming what the build lacks."""
    if context == "cpu":
        return "DNN_BACKEND_OPENCV", "DNN_TARGET_CPU"
    if not re.match(r"^gpu[0-9]+$", context or ""):
        raise OpenCVError("device {!r}: the opencv backend runs on 'cpu' or 'gpuN'".format(context))
    available = _targets(cv2, "DNN_BACKEND_CUDA")
    wanted = ["DNN_TARGET_CUDA", "DNN_TARGET_CUDA_FP16"]
    if precision == "fp16":
        wanted.reverse()
    usable = [name for name in wanted if getattr(cv2.dnn, name, None) in available]
    if not usable:
        facts = build_facts(cv2)
        if hasattr(cv2.dnn, "DNN_BACKEND_CUDA") and hasattr(cv2.dnn, "getAvailableTargets"):
            seen = "cv2.dnn.getAvailableTargets(DNN_BACKEND_CUDA) is {}".format(available)
        else:
            seen = "it predates DNN_BACKEND_CUDA (OpenCV >= 4.2)"
        raise OpenCVError(
            "device {}: OpenCV {} has no CUDA DNN backend: {}; its build information says "
            "NVIDIA CUDA: {}, cuDNN: {}; install an OpenCV built with WITH_CUDA=ON, "
            "WITH_CUDNN=ON and OPENCV_DNN_CUDA=ON, or run the opencv backend on cpu".format(
                context,
                cv2.__version__,
                seen,
                facts["nvidia_cuda"] or "not listed",
                facts["cudnn"] or "not listed",
            )
        )
    index = int(context[3:])
    count = cv2.cuda.getCudaEnabledDeviceCount()
    if index >= count:
        raise OpenCVError(
            "device {}: OpenCV sees {} CUDA device(s); choose gpu0..gpu{}".format(
                context, count, count - 1
            )
        )
    cv2.cuda.setDevice(index)
    return "DNN_BACKEND_CUDA", usable[0]


def yolo_cfg_without_floor(cfg_path):
    """The cfg's text with ``thresh=0`` as the first option of each ``[yolo]`` section."""
    with open(cfg_path) as handle:
        lines = handle.read().splitlines()
    out = []
    for line in lines:
        out.append(line)
        if line.split("#", 1)[0].strip().lower().replace(" ", "") == "[yolo]":
            out.append("thresh=0")
    return "\n".join(out) + "\n"


def version(cv2):
    """``cv2.__version__`` as a tuple of its leading numbers: "4.5.4-dev" -> (4, 5, 4)."""
    return tuple(int(part) for part in re.findall(r"[0-9]+", cv2.__version__.split("-")[0]))


def _short(exc):
    """OpenCV's error text on one line, without the source file and line it was raised at."""
    text = re.sub(r"OpenCV\([^)]*\) \S+:[0-9]+: error: ", "", str(exc))
    return " ".join(text.split())[:600]


def load_darknet(cv2, spec):
    """(cv2 net, output names, call) of a darknet spec: decode + NMS in numpy."""
    from detbench.runner import darknet, yolo_decode

    weights = spec["weights"]
    if weights.get("error"):
        raise nets.WeightsRefused(
            "no darknet weights for {}: {}".format(spec["model"], weights["error"])
        )
    nets._check_sha256(weights["path"], weights["sha256"])
    nets._check_sha256(weights["cfg"], weights["cfg_sha256"])
    specs = darknet.plan_network(*darknet.parse_cfg(weights["cfg"]), cfg_path=weights["cfg"])
    darknet.read_weights(weights["path"], specs)  # the file's length checked against the cfg
    decoder = yolo_decode.YoloDecoder(specs)
    if spec["kind"] == "voc":
        nets.use_eval_nms(decoder)
    cfg = np.frombuffer(yolo_cfg_without_floor(weights["cfg"]).encode("utf-8"), np.uint8)
    try:
        net = cv2.dnn.readNetFromDarknet(cfg, np.fromfile(weights["path"], np.uint8))
    except cv2.error as exc:
        raise OpenCVError(
            "OpenCV {} cannot read darknet {} / {}: {}".format(
                cv2.__version__, weights["cfg"], weights["path"], _short(exc)
            )
        ) from exc
    scaled = [s["index"] for s in decoder.yolos if s["scale_x_y"] != 1.0]
    if scaled and version(cv2) < SCALE_X_Y_FROM:
        raise OpenCVError(
            "OpenCV {} predates [yolo] scale_x_y (read from 4.4.0 on), so it would decode "
            "layer(s) {} of {} without it; use OpenCV >= 4.4 or the mxnet backend".format(
                cv2.__version__, scaled, weights["cfg"]
            )
        )
    names = ["yolo_{}".format(s["index"]) for s in decoder.yolos]
    missing = sorted(set(names) - set(net.getUnconnectedOutLayersNames()))
    if missing:
        raise OpenCVError(
            "OpenCV {} built {} without the [yolo] output layer(s) {}".format(
                cv2.__version__, weights["cfg"], ", ".join(missing)
            )
        )
    return net, names, decoder


def load_onnx(cv2, spec):
    """(cv2 net, output names, call) of an ONNX spec: the graph's own (ids, scores, boxes)."""
    model_file = spec["model_file"]
    if model_file.get("error"):
        raise OpenCVError(
            "no ONNX file for {}: its export failed: {}".format(spec["model"], model_file["error"])
        )
    path = model_file["path"]
    nets._check_sha256(path, model_file["sha256"])
    try:
        net = cv2.dnn.readNetFromONNX(path)
    except cv2.error as exc:
        raise OpenCVError(
            "OpenCV {} cannot read the ONNX file {}: {}; run this model on the mxnet or "
            "onnxruntime backend".format(cv2.__version__, path, _short(exc))
        ) from exc
    names = list(model_file.get("outputs") or net.getUnconnectedOutLayersNames())
    if len(names) != 3:
        raise OpenCVError(
            "{}: {} outputs {}, expected a detector's 3 (ids, scores, boxes)".format(
                path, len(names), names
            )
        )

    def as_detections(outputs, batch):
        try:
            return tuple(
                np.asarray(out, dtype=np.float32).reshape(batch, -1, width)
                for out, width in zip(outputs, (1, 1, 4))
            )
        except ValueError as exc:
            raise OpenCVError(
                "{}: outputs of shapes {} are not (ids, scores, boxes) for a batch of {}".format(
                    path, [np.shape(o) for o in outputs], batch
                )
            ) from exc

    return net, names, as_detections


def build(spec, ctx):
    """The opencv engine of ``spec`` (see the module docstring); ``ctx`` is unused (inputs
    arrive as numpy arrays; the device comes from the spec)."""
    from detbench.runner import run

    cv2 = _cv2()
    threads = int(environment.configure_threads(spec.get("threads")))
    cv2.setNumThreads(threads)
    backend, target = choose_device(cv2, run.context_name(spec), spec.get("precision"))
    if (spec.get("weights") or {}).get("format") == "darknet":
        net, names, finish = load_darknet(cv2, spec)
        source = "darknet"
    elif (spec.get("model_file") or {}).get("format") == "onnx":
        net, names, finish = load_onnx(cv2, spec)
        source = "onnx"
    else:
        raise OpenCVError(
            "{}: the opencv backend runs darknet weights (weights.format: darknet) or an "
            "ONNX export (model_file.format: onnx); this spec has weights format {!r} and no "
            "ONNX model_file".format(spec["model"], (spec.get("weights") or {}).get("format"))
        )
    net.setPreferableBackend(getattr(cv2.dnn, backend))
    net.setPreferableTarget(getattr(cv2.dnn, target))
    where = "{} {}".format(source, spec["model"])

    def call(blob):
        try:
            net.setInput(blob)
            outputs = net.forward(names)
        except cv2.error as exc:
            raise OpenCVError(
                "OpenCV {} failed to run {}: {}".format(cv2.__version__, where, _short(exc))
            ) from exc
        return finish(outputs, blob.shape[0])

    info = {
        "name": engines.OPENCV,
        "version": cv2.__version__,
        "model_format": source,
        "dnn_backend": backend,
        "dnn_target": target,
        "threads": threads,
        "build": build_facts(cv2),
    }
    engine = engines.Engine(call, info)
    engine.host_inputs = True
    return engine
