"""Darknet YOLO models (``.cfg`` + ``.weights``) as an MXNet Gluon HybridBlock.

The block returns what GluonCV detectors return, ``(ids, scores, bboxes)`` of shapes (B, K, 1),
(B, K, 1), (B, K, 4), boxes as xmin, ymin, xmax, ymax in input pixels, rows past the last
detection filled with -1, so the runner's loops, NMS settings and unwarping apply unchanged.

Semantics follow darknet (AlexeyAB's fork, which trained the models of this kind) and are checked
against OpenCV's importer ``cv2.dnn.readNetFromDarknet``:

- batch norm is folded into the convolution at load time with ``x_hat = (x - mean) /
  sqrt(var + 1e-5)``, AlexeyAB darknet's ``normalize_cpu`` and ``fuse_conv_batchnorm``.
  OpenCV uses eps 1e-6: some channels of real models have variances near 0 (the Nano VOC
  model's go down to 1e-45), so scores differ from OpenCV's by up to ~3e-4 on photographs;
  ``load_darknet(..., bn_eps=1e-6)`` reproduces OpenCV to ~1e-6;
- max pooling pads ``padding`` (default size - 1) cells, ``padding // 2`` on the left/top and the
  rest on the right/bottom, and padded cells never win (they are -inf);
- a ``[yolo]`` layer decodes x = (col + sigmoid(tx) * s - (s - 1) / 2) / grid_w (s =
  ``scale_x_y``), w = exp(tw) * anchor_w / net_w, likewise y and h; each (box, class) scores
  sigmoid(objectness) * sigmoid(class) and every pair above ``thresh`` (0.005, as darknet's
  ``detector map``) is a candidate, so one box can yield several classes;
- candidates then go through per-class NMS (``box_nms``, ``force_suppress=False``) as GluonCV's
  YOLOv3 does, tuned with :meth:`DarknetNet.set_nms`.

Runs on Python 3.6 with MXNet 1.6 (the seed stack) and Python 3.11 with MXNet 1.9; mxnet is
imported only inside functions, so the module imports without it.
"""

import os
import struct

import numpy as np

from detbench.contract import DetbenchError
from detbench.runner.nets import _to_original

BN_EPS = 1e-5
THRESH = 0.005  # candidate score floor, as darknet's ``detector map``
NMS_THRESH, NMS_TOPK, POST_NMS = 0.45, 400, 100  # per-class NMS IoU, candidates, rows returned
ACTIVATIONS = ("linear", "leaky", "relu")
_NEG_INF = float(np.finfo(np.float32).min)

# Options read by the layer builders below, and options that only matter for training (or for
# darknet's own drawing/NMS): both accepted; any other option is refused, since it might change
# what the layer computes.
_USED = {
    "convolutional": {"filters", "size", "stride", "pad", "padding", "groups", "batch_normalize",
                      "activation", "dilation", "stride_x", "stride_y"},
    "maxpool": {"size", "stride", "padding", "stride_x", "stride_y"},
    "route": {"layers", "groups", "group_id"},
    "shortcut": {"from", "activation"},
    "upsample": {"stride", "scale"},
    "yolo": {"mask", "anchors", "classes", "num", "scale_x_y", "new_coords"},
}
_TRAINING_ONLY = {
    "convolutional": {"stopbackward", "dont_update", "train_only_bn", "burnin_update"},
    "maxpool": {"stopbackward"},
    "route": {"stopbackward"},
    "shortcut": {"stopbackward", "weights_type", "weights_normalization"},
    "upsample": {"stopbackward"},
    "yolo": {"jitter", "ignore_thresh", "truth_thresh", "random", "iou_loss", "iou_normalizer",
             "cls_normalizer", "obj_normalizer", "delta_normalizer", "iou_thresh",
             "iou_thresh_kind", "nms_kind", "beta_nms", "max_delta", "counters_per_class",
             "label_smooth_eps", "focal_loss", "resize", "max", "objectness_smooth",
             "track_history_size", "sim_thresh", "dets_for_track", "dets_for_show",
             "track_ciou_norm", "embedding_layer", "map", "rescore", "stopbackward"},
}


class DarknetError(DetbenchError, ValueError):
    """A cfg or weights file this module cannot run faithfully: malformed, unsupported layer or
    option value, or a weights file whose length does not match the cfg."""


# ---------------------------------------------------------------------------------------------
# cfg parsing


def _typed(text):
    """``"3"`` -> 3, ``".1"`` -> 0.1, ``"26, 48,  67"`` -> [26, 48, 67], else the string."""
    parts = [part.strip() for part in text.split(",")]
    values = []
    for part in parts:
        try:
            values.append(int(part))
        except ValueError:
            try:
                values.append(float(part))
            except ValueError:
                return text
    return values if len(parts) > 1 else values[0]


def parse_cfg(path):
    """Read a darknet cfg: ``(net options dict, [layer dict, ...])``, each layer dict holding its
    section name under ``"type"`` and its options with typed values (int, float, list of numbers,
    or string). Lines starting with ``#`` or ``;`` and text after ``#`` are comments."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    sections = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(";"):
            continue
        where = "{} line {}".format(path, number)
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise DarknetError("{}: malformed section header {!r}".format(where, raw))
            sections.append({"type": line[1:-1].strip().lower()})
            continue
        if "=" not in line:
            raise DarknetError("{}: expected key=value, got {!r}".format(where, raw))
        if not sections:
            raise DarknetError("{}: option {!r} before any [section]".format(where, raw))
        key, value = (part.strip() for part in line.split("=", 1))
        if not key or not value:
            raise DarknetError("{}: empty key or value in {!r}".format(where, raw))
        sections[-1][key] = _typed(value)
    if not sections or sections[0]["type"] not in ("net", "network"):
        raise DarknetError("{}: the first section must be [net]".format(path))
    net = dict(sections[0])
    del net["type"]
    return net, sections[1:]


# ---------------------------------------------------------------------------------------------
# Planning: validate every layer and work out its shapes, without mxnet


class _Layer(object):
    """Reads one layer's options and raises DarknetError naming the layer, its type and file."""

    def __init__(self, index, options, cfg_path):
        self.index, self.options, self.cfg_path = index, options, cfg_path
        self.type = options["type"]

    def error(self, message):
        return DarknetError("layer {} [{}] in {}: {}".format(
            self.index, self.type, self.cfg_path, message))

    def check_keys(self):
        allowed = _USED[self.type] | _TRAINING_ONLY[self.type] | {"type"}
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise self.error("unsupported option(s) {}".format(", ".join(unknown)))

    def get(self, key, default=None, kind=int):
        value = self.options.get(key, default)
        if value is None:
            raise self.error("missing option {!r}".format(key))
        if kind is list:
            value = value if isinstance(value, list) else [value]
            if not all(isinstance(v, (int, float)) for v in value):
                raise self.error("{}={!r} is not a list of numbers".format(key, value))
            return value
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind):
            raise self.error("{}={!r} is not {}".format(key, value, kind.__name__))
        return value

    def require(self, condition, message):
        if not condition:
            raise self.error(message)


def _plan_conv(layer, shape):
    channels, height, width = shape
    filters, size = layer.get("filters", 1), layer.get("size", 1)
    stride, groups = layer.get("stride", 1), layer.get("groups", 1)
    padding = size // 2 if layer.get("pad", 0) else layer.get("padding", 0)
    activation = layer.get("activation", "logistic", str)
    layer.require(activation in ACTIVATIONS,
                  "activation={} unsupported (only {})".format(activation, ", ".join(ACTIVATIONS)))
    layer.require(layer.get("dilation", 1) == 1, "dilation != 1 unsupported")
    for key in ("stride_x", "stride_y"):
        layer.require(layer.get(key, stride) == stride, "{} != stride unsupported".format(key))
    layer.require(filters > 0 and size > 0 and stride > 0 and groups > 0 and padding >= 0,
                  "filters, size, stride and groups must be positive")
    layer.require(channels % groups == 0 and filters % groups == 0,
                  "groups={} does not divide {} input channels and {} filters".format(
                      groups, channels, filters))
    out_h = (height + 2 * padding - size) // stride + 1
    out_w = (width + 2 * padding - size) // stride + 1
    layer.require(out_h > 0 and out_w > 0, "output would be empty")
    spec = {"filters": filters, "size": size, "stride": stride, "padding": padding,
            "groups": groups, "batch_normalize": bool(layer.get("batch_normalize", 0)),
            "activation": activation, "in_channels": channels}
    spec["weight_count"] = (4 if spec["batch_normalize"] else 1) * filters + \
        filters * (channels // groups) * size * size
    return spec, (filters, out_h, out_w)


def _plan_maxpool(layer, shape):
    channels, height, width = shape
    stride = layer.get("stride", 1)
    size = layer.get("size", stride)
    padding = layer.get("padding", size - 1)
    for key in ("stride_x", "stride_y"):
        layer.require(layer.get(key, stride) == stride, "{} != stride unsupported".format(key))
    layer.require(size > 0 and stride > 0 and padding >= 0, "size and stride must be positive")
    out_h = (height + padding - size) // stride + 1
    out_w = (width + padding - size) // stride + 1
    layer.require(out_h > 0 and out_w > 0, "output would be empty")
    spec = {"size": size, "stride": stride, "before": padding // 2,
            "after": padding - padding // 2}
    return spec, (channels, out_h, out_w)


def _source(layer, offset, shapes):
    """Absolute index of a route/shortcut input: negative offsets count back from this layer."""
    index = layer.index + offset if offset < 0 else offset
    layer.require(0 <= index < layer.index,
                  "refers to layer {} (offset {}), not an earlier layer".format(index, offset))
    layer.require(shapes[index] is not None, "refers to layer {}, a [yolo] layer".format(index))
    return index


def _plan_route(layer, shapes):
    sources = [_source(layer, int(v), shapes) for v in layer.get("layers", kind=list)]
    groups, group_id = layer.get("groups", 1), layer.get("group_id", 0)
    layer.require(groups > 0 and 0 <= group_id < groups, "needs 0 <= group_id < groups")
    layer.require(groups == 1 or len(sources) == 1,
                  "groups={} with several layers unsupported (OpenCV and darknet disagree)".format(
                      groups))
    sizes = [shapes[i][1:] for i in sources]
    layer.require(all(s == sizes[0] for s in sizes),
                  "inputs differ in height/width: {}".format(sizes))
    for i in sources:
        layer.require(shapes[i][0] % groups == 0,
                      "groups={} does not divide layer {}'s {} channels".format(
                          groups, i, shapes[i][0]))
    channels = sum(shapes[i][0] // groups for i in sources)
    spec = {"sources": sources, "groups": groups, "group_id": group_id,
            "chunks": [shapes[i][0] // groups for i in sources]}
    return spec, (channels,) + tuple(sizes[0])


def _plan_shortcut(layer, shapes, shape):
    offsets = layer.get("from", kind=list)
    layer.require(len(offsets) == 1, "only one 'from' layer is supported")
    source = _source(layer, int(offsets[0]), shapes)
    activation = layer.get("activation", "linear", str)
    layer.require(activation in ACTIVATIONS, "activation={} unsupported".format(activation))
    for key in ("weights_type", "weights_normalization"):
        layer.require(layer.get(key, "none", str) == "none", "{} unsupported".format(key))
    layer.require(shapes[source] == shape, "adds layer {} of shape {} to shape {}".format(
        source, shapes[source], shape))
    return {"source": source, "activation": activation}, shape


def _plan_upsample(layer, shape):
    stride = layer.get("stride", 2)
    layer.require(stride > 0, "stride={} (downsampling) unsupported".format(stride))
    layer.require(layer.get("scale", 1, float) == 1.0, "scale != 1 unsupported")
    channels, height, width = shape
    return {"stride": stride}, (channels, height * stride, width * stride)


def _plan_yolo(layer, shape, net_size):
    classes = layer.get("classes", 20)
    anchors = layer.get("anchors", kind=list)
    num = layer.get("num", len(anchors) // 2)
    mask = [int(m) for m in layer.get("mask", list(range(num)), list)]
    layer.require(len(anchors) == 2 * num, "{} anchor numbers for num={}".format(
        len(anchors), num))
    layer.require(all(0 <= m < num for m in mask), "mask {} outside 0..{}".format(mask, num - 1))
    layer.require(layer.get("new_coords", 0) == 0, "new_coords=1 unsupported")
    layer.require(shape[0] == len(mask) * (5 + classes),
                  "input has {} channels, expected {} anchors x (5 + {} classes)".format(
                      shape[0], len(mask), classes))
    spec = {"classes": classes, "scale_x_y": layer.get("scale_x_y", 1.0, float),
            "anchors": [(float(anchors[2 * m]), float(anchors[2 * m + 1])) for m in mask],
            "grid": tuple(shape[1:]), "net_size": net_size}
    return spec, None


def plan_network(net_options, layers, cfg_path="<cfg>"):
    """Validate a parsed cfg and return one spec dict per layer (``type``, ``input``/``output``
    shapes as (C, H, W), and what the layer needs); raises DarknetError on anything unsupported.
    """
    try:
        height, width = int(net_options["height"]), int(net_options["width"])
        channels = int(net_options.get("channels", 3))
    except (KeyError, TypeError, ValueError) as exc:
        raise DarknetError("{}: [net] needs integer width and height".format(cfg_path)) from exc
    if min(height, width, channels) <= 0:
        raise DarknetError("{}: [net] width, height and channels must be positive".format(
            cfg_path))
    shapes, specs, shape = [], [], (channels, height, width)
    for index, options in enumerate(layers):
        layer = _Layer(index, options, cfg_path)
        if layer.type not in _USED:
            raise layer.error("unsupported layer type (supported: {})".format(
                ", ".join(sorted(_USED))))
        layer.check_keys()
        if specs and specs[-1]["type"] == "yolo" and layer.type not in ("route", "yolo"):
            raise layer.error("only a [route] may follow a [yolo] layer")
        if layer.type == "convolutional":
            spec, out = _plan_conv(layer, shape)
        elif layer.type == "maxpool":
            spec, out = _plan_maxpool(layer, shape)
        elif layer.type == "route":
            spec, out = _plan_route(layer, shapes)
        elif layer.type == "shortcut":
            spec, out = _plan_shortcut(layer, shapes, shape)
        elif layer.type == "upsample":
            spec, out = _plan_upsample(layer, shape)
        else:
            spec, out = _plan_yolo(layer, shape, (height, width))
        spec.update(type=layer.type, index=index, input=shape, output=out)
        specs.append(spec)
        shapes.append(out)
        shape = out if out is not None else shape
    if not specs:
        raise DarknetError("{}: no layers after [net]".format(cfg_path))
    classes = {s["classes"] for s in specs if s["type"] == "yolo"}
    if len(classes) > 1:
        raise DarknetError("{}: [yolo] layers disagree on classes: {}".format(
            cfg_path, sorted(classes)))
    return specs


# ---------------------------------------------------------------------------------------------
# Weights


def _header_size(path, handle):
    head = handle.read(12)
    if len(head) < 12:
        raise DarknetError("{}: {} bytes, too short for a darknet weights header".format(
            path, len(head)))
    major, minor, _ = struct.unpack("<3i", head)
    wide_seen = (major * 10 + minor) >= 2 and major < 1000 and minor < 1000
    return 12 + (8 if wide_seen else 4)


def read_weights(path, specs):
    """Darknet weights for the planned layers: ``{layer index: (biases, scales, mean, var,
    weights)}`` (scales/mean/var None without batch norm; weights shaped (n, c/groups, k, k)).
    The file's length is checked against the cfg before anything is read."""
    convs = [s for s in specs if s["type"] == "convolutional"]
    count = sum(s["weight_count"] for s in convs)
    with open(path, "rb") as handle:
        header = _header_size(path, handle)
        expected, actual = header + 4 * count, os.path.getsize(path)
        if actual != expected:
            raise DarknetError(
                "{}: {} bytes, but the cfg's {} convolutional layers need {} bytes "
                "({} header + {} float32 values)".format(
                    path, actual, len(convs), expected, header, count))
        handle.seek(header)
        values = np.frombuffer(handle.read(), dtype="<f4").astype(np.float32)
    tensors, offset = {}, 0
    for spec in convs:
        n, k, per_group = spec["filters"], spec["size"], spec["in_channels"] // spec["groups"]
        parts = [n] * (4 if spec["batch_normalize"] else 1) + [n * per_group * k * k]
        arrays = []
        for size in parts:
            arrays.append(values[offset:offset + size])
            offset += size
        biases, weights = arrays[0], arrays[-1].reshape(n, per_group, k, k)
        scales, mean, var = arrays[1:4] if spec["batch_normalize"] else (None, None, None)
        tensors[spec["index"]] = (biases, scales, mean, var, weights)
    return tensors


def fold_batchnorm(biases, scales, mean, var, weights, eps=BN_EPS):
    """Convolution weight and bias equal to conv -> batch norm (darknet's inference formula)."""
    if scales is None:
        return weights, biases
    factor = scales.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    folded = weights.astype(np.float64) * factor.reshape(-1, 1, 1, 1)
    bias = biases.astype(np.float64) - mean.astype(np.float64) * factor
    return folded.astype(np.float32), bias.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The network


def _activate(F, x, activation):
    if activation == "leaky":
        return F.LeakyReLU(x, act_type="leaky", slope=0.1)
    if activation == "relu":
        return F.relu(x)
    return x


def _maxpool(F, x, spec):
    size, stride = (spec["size"],) * 2, (spec["stride"],) * 2
    before, after = spec["before"], spec["after"]
    if before == after:
        # MXNet's max pooling never picks a padded cell, as darknet's -inf cells.
        return F.Pooling(x, kernel=size, stride=stride, pad=(before, before), pool_type="max",
                         pooling_convention="valid")
    x = F.pad(x, mode="constant", constant_value=_NEG_INF,
              pad_width=(0, 0, 0, 0, before, after, before, after))
    return F.Pooling(x, kernel=size, stride=stride, pool_type="max",
                     pooling_convention="valid")


def _route(F, outputs, spec):
    parts = []
    for source, chunk in zip(spec["sources"], spec["chunks"]):
        part = outputs[source]
        if spec["groups"] > 1:
            begin = spec["group_id"] * chunk
            part = F.slice_axis(part, axis=1, begin=begin, end=begin + chunk)
        parts.append(part)
    return parts[0] if len(parts) == 1 else F.concat(*parts, dim=1)


def _upsample(F, x, stride):
    return F.repeat(F.repeat(x, repeats=stride, axis=-1), repeats=stride, axis=-2)


def _yolo_table(spec):
    """Per candidate, in darknet's order (anchor, row, col): the centre's offset and gain and
    the anchor's size, all in input pixels, so that centre = sigmoid(t) * gain + offset with
    offset = (col - (s - 1) / 2) * cell and gain = s * cell (cell = net width / grid width)."""
    rows, cols = spec["grid"]
    net_h, net_w = spec["net_size"]
    scale = spec["scale_x_y"]
    cell = np.array([net_w / float(cols), net_h / float(rows)])
    grid_y, grid_x = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    cells = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float64)
    offset = (cells - 0.5 * (scale - 1)) * cell
    gain = np.tile(scale * cell, (rows * cols, 1))
    table = [np.concatenate([offset, gain, np.tile(anchor, (rows * cols, 1))], axis=1)
             for anchor in spec["anchors"]]
    return np.concatenate(table, axis=0)[np.newaxis].astype(np.float32)


def _decode_yolo(F, x, table, spec):
    """Raw (B, A*(5+C), H, W) -> boxes (B, N, 4) corners in input pixels, scores (B, N, C)."""
    rows, cols = spec["grid"]
    width = 5 + spec["classes"]
    pred = F.reshape(x, (0, len(spec["anchors"]), width, rows * cols))
    pred = F.reshape(F.transpose(pred, axes=(0, 1, 3, 2)), (0, -1, width))
    centre = F.broadcast_add(
        F.broadcast_mul(F.sigmoid(F.slice_axis(pred, axis=-1, begin=0, end=2)),
                        F.slice_axis(table, axis=-1, begin=2, end=4)),
        F.slice_axis(table, axis=-1, begin=0, end=2))
    size = F.broadcast_mul(F.exp(F.slice_axis(pred, axis=-1, begin=2, end=4)),
                           F.slice_axis(table, axis=-1, begin=4, end=6))
    boxes = F.concat(centre - size / 2, centre + size / 2, dim=-1)
    objectness = F.sigmoid(F.slice_axis(pred, axis=-1, begin=4, end=5))
    classes = F.sigmoid(F.slice_axis(pred, axis=-1, begin=5, end=None))
    return boxes, F.broadcast_mul(objectness, classes)


def _candidates(F, boxes, scores, class_ids, classes, thresh):
    """Every (box, class) pair as a row [class id, score, xmin, ymin, xmax, ymax], id and score
    -1 where the score is not above ``thresh``: (B, classes * N, 6), class-major."""
    scores = F.transpose(scores, axes=(0, 2, 1))
    ids = F.broadcast_add(F.zeros_like(scores), class_ids)
    keep = scores > thresh
    missing = F.ones_like(scores) * -1
    ids, scores = F.where(keep, ids, missing), F.where(keep, scores, missing)
    boxes = F.broadcast_axis(F.expand_dims(boxes, axis=1), axis=1, size=classes)
    rows = F.concat(F.expand_dims(ids, axis=-1), F.expand_dims(scores, axis=-1), boxes, dim=-1)
    return F.reshape(rows, (0, -1, 6))


_CLASS = []


def _network_class():
    """The HybridBlock class, defined on first use so that this module imports without mxnet."""
    if _CLASS:
        return _CLASS[0]
    from mxnet import gluon

    class DarknetNet(gluon.HybridBlock):
        """A planned darknet cfg (:func:`plan_network`) as one HybridBlock.

        With [yolo] layers, ``net(x)`` on x (B, C, H, W) at the cfg's ``input_size`` returns
        ``(ids, scores, bboxes)`` like GluonCV's detectors; without any, the last layer's
        feature map (for checking layers one by one). Parameters: ``conv<i>_weight`` and
        ``conv<i>_bias`` per convolutional layer i (batch norm folded in), plus constants."""

        def __init__(self, specs, thresh=THRESH, **kwargs):
            super(DarknetNet, self).__init__(**kwargs)
            self.specs = specs
            self.input_size = tuple(specs[0]["input"][1:])
            self.thresh = float(thresh)
            yolos = [s for s in specs if s["type"] == "yolo"]
            self.num_class = yolos[0]["classes"] if yolos else 0
            self._candidates = self.num_class * sum(
                len(s["anchors"]) * s["grid"][0] * s["grid"][1] for s in yolos)
            self.nms_thresh, self.nms_topk, self.post_nms = NMS_THRESH, NMS_TOPK, POST_NMS
            with self.name_scope():
                for spec in specs:
                    self._add_layer(spec)
                if yolos:
                    ids = np.arange(self.num_class, dtype=np.float32).reshape(1, -1, 1)
                    self.class_ids = self.params.get_constant("class_ids", ids)

        def _add_layer(self, spec):
            index = spec["index"]
            if spec["type"] == "convolutional":
                conv = gluon.nn.Conv2D(
                    spec["filters"], spec["size"], strides=spec["stride"],
                    padding=spec["padding"], groups=spec["groups"], use_bias=True,
                    in_channels=spec["in_channels"], prefix="conv{}_".format(index))
                setattr(self, "conv{}".format(index), conv)
            elif spec["type"] == "yolo":
                name = "yolo{}".format(index)
                setattr(self, name, self.params.get_constant(name, _yolo_table(spec)))

        def set_nms(self, nms_thresh=0.45, nms_topk=400, post_nms=100):
            """Per-class NMS IoU threshold, the number of top-scoring candidates it considers,
            and the number of rows returned (K), as GluonCV's ``set_nms``. ``nms_thresh``
            outside (0, 1) keeps every candidate, sorted by score."""
            self._clear_cached_op()
            self.nms_thresh, self.nms_topk, self.post_nms = nms_thresh, nms_topk, post_nms

        def hybrid_forward(self, F, x, **constants):
            outputs, boxes, scores = [], [], []
            for spec in self.specs:
                out = self._layer(F, spec, x, outputs, constants)
                if spec["type"] == "yolo":
                    boxes.append(out[0])
                    scores.append(out[1])
                    out = None
                else:
                    x = out
                outputs.append(out)
            if not boxes:
                return x
            return self._detect(F, boxes, scores, constants["class_ids"])

        def _layer(self, F, spec, x, outputs, constants):
            kind, index = spec["type"], spec["index"]
            if kind == "convolutional":
                return _activate(F, getattr(self, "conv{}".format(index))(x), spec["activation"])
            if kind == "maxpool":
                return _maxpool(F, x, spec)
            if kind == "route":
                return _route(F, outputs, spec)
            if kind == "shortcut":
                return _activate(F, x + outputs[spec["source"]], spec["activation"])
            if kind == "upsample":
                return _upsample(F, x, spec["stride"])
            return _decode_yolo(F, x, constants["yolo{}".format(index)], spec)

        def _detect(self, F, boxes, scores, class_ids):
            boxes = boxes[0] if len(boxes) == 1 else F.concat(*boxes, dim=1)
            scores = scores[0] if len(scores) == 1 else F.concat(*scores, dim=1)
            rows = _candidates(F, boxes, scores, class_ids, self.num_class, self.thresh)
            overlap = self.nms_thresh if 0 < self.nms_thresh < 1 else 1.0
            rows = F.contrib.box_nms(
                rows, overlap_thresh=overlap, valid_thresh=self.thresh, topk=self.nms_topk,
                id_index=0, score_index=1, coord_start=2, force_suppress=False)
            keep = min(self.post_nms, self._candidates) if self.post_nms > 0 else None
            rows = F.slice_axis(rows, axis=1, begin=0, end=keep)
            return (F.slice_axis(rows, axis=-1, begin=0, end=1),
                    F.slice_axis(rows, axis=-1, begin=1, end=2),
                    F.slice_axis(rows, axis=-1, begin=2, end=6))

    _CLASS.append(DarknetNet)
    return DarknetNet


def build_darknet(cfg_path, thresh=THRESH):
    """The uninitialised network of a cfg file (see :func:`load_darknet` for a loaded one)."""
    net_options, layers = parse_cfg(cfg_path)
    return _network_class()(plan_network(net_options, layers, cfg_path), thresh=thresh)


def load_darknet(cfg_path, weights_path, ctx=None, thresh=THRESH, bn_eps=BN_EPS):
    """The darknet model of ``cfg_path`` with ``weights_path`` loaded, on ``ctx`` (default CPU).

    ``net.input_size`` is the cfg's (height, width), the only input shape the net takes;
    ``net.num_class`` its number of classes. The weights file's length is checked against the
    cfg before the net is built."""
    import mxnet as mx

    ctx = ctx if ctx is not None else mx.cpu()
    net_options, layers = parse_cfg(cfg_path)
    specs = plan_network(net_options, layers, cfg_path)
    tensors = read_weights(weights_path, specs)
    net = _network_class()(specs, thresh=thresh)
    net.initialize(mx.init.Zero(), ctx=ctx)
    for index, arrays in sorted(tensors.items()):
        weight, bias = fold_batchnorm(*arrays, eps=bn_eps)
        conv = getattr(net, "conv{}".format(index))
        conv.weight.set_data(mx.nd.array(weight, ctx=ctx))
        conv.bias.set_data(mx.nd.array(bias, ctx=ctx))
    return net


class DarknetTransform(object):
    """Darknet's input without letterboxing: a plain bilinear resize of an HWC RGB uint8 image
    to (height, width), scaled to [0, 1], as a CHW float32 tensor, plus a function mapping the
    net's input-pixel boxes (N x 4 numpy) back to original-image pixels, clipped to the image."""

    def __init__(self, height, width):
        self.height, self.width = int(height), int(width)

    def __call__(self, image):
        import mxnet as mx

        resized = mx.image.imresize(image, self.width, self.height, interp=1)
        tensor = mx.nd.transpose(resized.astype("float32") / 255.0, axes=(2, 0, 1))
        height, width = image.shape[:2]
        scale = np.array([width / float(self.width), height / float(self.height)] * 2,
                         dtype="float32")
        return tensor, _to_original(height, width, lambda boxes: boxes * scale)
