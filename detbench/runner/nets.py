"""Build GluonCV detectors, load their weights, and apply each model's own eval transform.

Works with MXNet 1.6 / GluonCV 0.8 (the seed stack) and MXNet 1.9 / GluonCV 0.10: weights load
with ``net.load_parameters(path, ctx=ctx)`` (plus ``allow_missing`` / ``ignore_extra`` for Faster
R-CNN, as GluonCV loads its own) and symbol models with ``SymbolBlock.imports(json, ["data"],
params, ctx=ctx)``, calls whose signatures both versions share.
"""

import hashlib
import os
import re
import shutil
import tempfile
import warnings

import numpy as np

from detbench import zoo
from detbench.contract import DetbenchError


class DeviceUnavailable(DetbenchError, RuntimeError):
    """The spec asks for a device this host's MXNet cannot use."""


def context_for(device):
    """``cpu`` -> mx.cpu(); ``gpuN`` -> mx.gpu(N) after checking MXNet sees that GPU."""
    import mxnet as mx

    if device == "cpu":
        return mx.cpu()
    match = re.match(r"^gpu(\d+)$", device)
    if not match:
        raise ValueError("device {!r}: expected 'cpu' or 'gpu<N>'".format(device))
    index = int(match.group(1))
    try:
        visible = mx.context.num_gpus()
    except Exception as exc:  # CPU-only builds may raise instead of returning 0
        raise DeviceUnavailable(
            "no GPU: this MXNet build cannot query GPUs ({})".format(exc)
        ) from exc
    if index >= visible:
        raise DeviceUnavailable(
            "no GPU {}: MXNet sees {} GPU(s) on this host (mx.context.num_gpus()); "
            "install a CUDA build of MXNet on a machine with an NVIDIA GPU, or drop {!r} "
            "from the config's devices".format(index, visible, device)
        )
    return mx.gpu(index)


class WeightsRefused(DetbenchError, RuntimeError):
    """The run's weights are missing, failed to be made, or differ from their recorded hash."""


def file_digest(path, algorithm="sha256", chunk=1 << 20):
    """Hex digest of a file (``hashlib`` algorithm name), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path, expected):
    actual = file_digest(path)
    if actual != expected:
        raise WeightsRefused(
            "{}: sha256 {} differs from {} recorded when the weights were fetched; "
            "refusing to run on unverified weights".format(path, actual, expected)
        )


PARAMS_MAGIC = b"\x12\x01\x00\x00\x00\x00\x00\x00"  # MXNet's NDArray-list file header


def _check_params_file(path):
    with open(path, "rb") as handle:
        head = handle.read(len(PARAMS_MAGIC))
    if head != PARAMS_MAGIC:
        raise WeightsRefused(
            "{}: not an MXNet parameter file (no NDArray-list header); point weights.files "
            "at a .params file written by MXNet's save_parameters".format(path)
        )


def build_from_weights(model, ctx, weights):
    """The net of a run spec's ``weights`` entry, after checking the files' sha256 against it.

    Entry keys: ``path`` and ``sha256`` always; ``format: symbol`` with ``symbol`` (the
    ``-symbol.json`` path) and ``symbol_sha256`` for an exported symbol model such as the
    ``quantized`` source's INT8 net; ``format: darknet`` with ``cfg`` and ``cfg_sha256`` for a
    darknet model (:mod:`detbench.runner.darknet`); ``error`` when the weights could not be made
    (the run is then recorded failed with that error)."""
    if weights.get("error"):
        raise WeightsRefused(
            "no {} weights for {}: {}".format(weights.get("source"), model, weights["error"])
        )
    _check_sha256(weights["path"], weights["sha256"])
    if weights.get("format") == "darknet":
        from detbench.runner import darknet

        _check_sha256(weights["cfg"], weights["cfg_sha256"])
        return darknet.load_darknet(weights["cfg"], weights["path"], ctx)
    _check_params_file(weights["path"])
    symbol = None
    if weights.get("format", "params") == "symbol":
        symbol = weights["symbol"]
        _check_sha256(symbol, weights["symbol_sha256"])
    return build_net(model, ctx, params_path=weights["path"], seed=None, symbol_path=symbol)


def build_net(model, ctx, params_path=None, seed=None, symbol_path=None):
    """A GluonCV VOC detector on ``ctx``: weights from ``params_path``, or initialised from
    ``seed`` when no path is given (untrained). ``pretrained_base=False`` keeps GluonCV from
    downloading a backbone.

    With ``symbol_path`` the net is the exported symbol model (``-symbol.json`` +
    ``params_path``), loaded with ``SymbolBlock.imports``. An ``_int8`` model is GluonCV's INT8
    symbol carrying the FP32 weights of its base model (see :func:`gluoncv_int8`)."""
    info = zoo.model_info(model)
    if symbol_path is not None:
        return import_symbol(symbol_path, params_path, ctx)
    if info["int8"]:
        return gluoncv_int8(model, ctx, params_path, seed)
    return _fp32_net(model, ctx, params_path, seed)


def _fp32_net(model, ctx, params_path, seed, **kwargs):
    from gluoncv import model_zoo

    net = model_zoo.get_model(model, pretrained=False, pretrained_base=False, **kwargs)
    if params_path is None:
        _initialise(net, model, ctx, seed)
    elif zoo.model_info(model)["family"] == zoo.FASTER_RCNN:
        # As GluonCV's get_faster_rcnn(pretrained=True) loads its store file (GluonCV 0.8 and
        # 0.10): the file lacks the training-only box encoder, initialised here; it plays no
        # part in inference. A missing inference parameter stays uninitialised and fails loudly.
        net.load_parameters(params_path, ctx=ctx, allow_missing=True, ignore_extra=True)
        with warnings.catch_warnings():  # "already initialized" when the file has them
            warnings.simplefilter("ignore")
            net.collect_params(select="normalizedperclassboxcenterencoder*").initialize(ctx=ctx)
    else:
        net.load_parameters(params_path, ctx=ctx)
    return net


def _initialise(net, model, ctx, seed):
    import mxnet as mx

    mx.random.seed(seed if seed is not None else 0)
    np.random.seed(seed if seed is not None else 0)
    net.initialize(ctx=ctx, force_reinit=True)
    # Deferred initialisation: one forward pass gives every parameter its shape.
    height, width = speed_shape(model, 512)
    outputs = net(mx.nd.zeros((1, 3, height, width), ctx=ctx))
    for out in outputs:
        out.wait_to_read()
    _reset_batchnorm_statistics(net)


def _reset_batchnorm_statistics(net):
    """Running mean 0 and variance 1, as a fresh BatchNorm has them. GluonCV's SSD feature
    expander draws its running variances from the global initialiser, so some are negative:
    MXNet still computes numbers, but an ONNX export of the same weights gives NaN."""
    import mxnet as mx

    for name, param in net.collect_params().items():
        if name.endswith(("running_var", "moving_var")):
            param.set_data(mx.nd.ones_like(param.data()))
        elif name.endswith(("running_mean", "moving_mean")):
            param.set_data(mx.nd.zeros_like(param.data()))


def import_symbol(symbol_path, params_path, ctx):
    """An exported symbol model (``net.export``) with input ``data``; the same call on MXNet 1.6
    and 1.9. Operators the build lacks (e.g. MKL-DNN's INT8 ones) raise MXNetError here or at
    the first forward pass, and the run is recorded failed with that error."""
    import mxnet as mx

    return mx.gluon.SymbolBlock.imports(symbol_path, ["data"], params_path, ctx=ctx)


def gluoncv_int8(model, ctx, params_path=None, seed=None):
    """GluonCV's INT8 model ``<base>_int8``, built as gluoncv's model_zoo/quantized/quantized.py
    builds it: the INT8 symbol shipped in the gluoncv package, given the FP32 weights of
    ``<base>`` (from ``params_path``, or seeded) by exporting the FP32 net once.

    So an ``_int8`` model's weights file is its base's FP32 ``.params`` file; for seeded weights
    the returned net's ``save_parameters`` writes that file (``init-weights`` relies on it)."""
    import mxnet as mx
    from gluoncv.model_zoo import quantized

    info = zoo.model_info(model)
    symbol_path = os.path.join(os.path.dirname(quantized.__file__), model + "-symbol.json")
    base = _fp32_net(info["base"], ctx, params_path, seed, prefix="ssd0_")
    base.hybridize()
    size = info["eval"]["size"]
    for out in base(mx.nd.zeros((1, 3, size, size), ctx=ctx)):
        out.wait_to_read()
    net = import_symbol(symbol_path, None, ctx)
    tmp = tempfile.mkdtemp(prefix="detbench-int8-")
    try:
        base.export(os.path.join(tmp, "fp32"), epoch=0)
        net.collect_params().load(os.path.join(tmp, "fp32-0000.params"), ctx=ctx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if params_path is None:
        net.save_parameters = base.save_parameters
    return net


def use_eval_nms(net):
    """NMS as GluonCV's eval_ssd.py / eval_yolo.py set it for VOC (thresh 0.45, top 400)."""
    if hasattr(net, "set_nms"):
        try:
            net.set_nms(nms_thresh=0.45, nms_topk=400)
        except TypeError:  # Faster R-CNN's set_nms has a different signature; keep its default
            pass


def speed_shape(model, size):
    """(height, width) of the model's batch-1 speed run: its registered shape or size x size."""
    shape = zoo.model_info(model)["speed_shape"]
    return tuple(shape) if shape else (int(size), int(size))


def _to_original(height, width, unwarp):
    """Map boxes back to original-image pixels and clip them to the image, as GluonCV's eval
    scripts clip to the input frame (an untrained net's infinite boxes become image edges)."""
    bounds = np.array([width, height, width, height], dtype="float32")

    def convert(boxes):
        return np.clip(unwarp(boxes), 0.0, bounds)

    return convert


class ResizeTransform(object):
    """Resize to a fixed (height, width) and normalise, as GluonCV's SSD/YOLOv3 val transforms.

    Used for every speed run (fixed input shape) and for the eval of SSD and YOLOv3."""

    def __init__(self, height, width):
        from gluoncv.data.transforms.presets.ssd import SSDDefaultValTransform

        self.height, self.width = height, width
        self._transform = SSDDefaultValTransform(width, height)

    def __call__(self, image):
        tensor, _ = self._transform(image, np.zeros((0, 6), dtype="float32"))
        height, width = image.shape[:2]
        scale = np.array([width / self.width, height / self.height] * 2, dtype="float32")
        return tensor, _to_original(height, width, lambda boxes: boxes * scale)


class FasterRCNNTransform(object):
    """GluonCV's FasterRCNNDefaultValTransform (short side 600, long side at most 1000)."""

    def __init__(self, short, max_size):
        from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultValTransform

        self._transform = FasterRCNNDefaultValTransform(short, max_size)

    def __call__(self, image):
        tensor, _, im_scale = self._transform(image, np.zeros((0, 6), dtype="float32"))
        # GluonCV's im_scale is original / resized height (eval_faster_rcnn.py multiplies by it)
        scale = float(im_scale.asnumpy().reshape(-1)[0])
        height, width = image.shape[:2]
        return tensor, _to_original(height, width, lambda boxes: boxes * scale)


class CenterNetTransform(object):
    """GluonCV's CenterNetDefaultValTransform: an aspect-keeping affine warp into a square."""

    def __init__(self, size):
        from gluoncv.data.transforms.presets.center_net import CenterNetDefaultValTransform

        self.size = size
        self._transform = CenterNetDefaultValTransform(size, size)

    def __call__(self, image):
        tensor, _ = self._transform(image, np.zeros((0, 6), dtype="float32"))
        height, width = image.shape[:2]
        scale = max(height, width) / float(self.size)
        centre = np.array([width / 2.0, height / 2.0] * 2, dtype="float32")

        def unwarp(boxes):
            return (boxes - self.size / 2.0) * scale + centre

        return tensor, _to_original(height, width, unwarp)


def speed_transform(model, height, width):
    """The transform of a speed run at a fixed input shape: the model's own normalisation
    (darknet: RGB / 255; GluonCV: mean/std) after a plain resize."""
    if zoo.is_darknet(model):
        from detbench.runner.darknet import DarknetTransform

        return DarknetTransform(height, width)
    return ResizeTransform(height, width)


def eval_transform(model):
    """The model's own eval transform: image -> (CHW tensor, boxes-to-original fn). GluonCV's
    for its models; darknet's plain resize to the net size, RGB, / 255 for darknet models."""
    info = zoo.model_info(model)
    family, spec = info["family"], info["eval"]
    if family == zoo.DARKNET:
        return speed_transform(model, spec["size"], spec["size"])
    if family == zoo.FASTER_RCNN:
        return FasterRCNNTransform(spec["short"], spec["max_size"])
    if family == zoo.CENTER_NET:
        return CenterNetTransform(spec["size"])
    return ResizeTransform(spec["size"], spec["size"])


def stacks_batches(model):
    """Whether a VOC-run batch can be one tensor. Faster R-CNN's eval inputs keep each image's
    aspect ratio (short side 600, long side at most 1000), so sizes differ; as GluonCV's
    eval_faster_rcnn.py does (``batchify.Append``, then ``net(x)`` per image and boxes times
    ``im_scale``), each image of the batch goes through the network on its own
    (``loop.forward``), the batch is timed as a whole, and the net is hybridized without
    ``static_shape``. Its speed run stacks: one fixed shape, ``zoo`` ``speed_shape`` (600, 800),
    a 4:3 VOC image through that transform."""
    return zoo.model_info(model)["family"] != zoo.FASTER_RCNN
