"""Build GluonCV detectors, load their weights, and apply each model's own eval transform.

Works with MXNet 1.6 / GluonCV 0.8 (the seed stack) and MXNet 1.9 / GluonCV 0.10.
"""

import re

import numpy as np

from detbench import zoo


class DeviceUnavailable(RuntimeError):
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


def build_net(model, ctx, params_path=None, seed=None):
    """A GluonCV VOC detector on ``ctx``: weights from ``params_path``, or initialised from
    ``seed`` when no path is given (untrained). ``pretrained_base=False`` keeps GluonCV from
    downloading a backbone."""
    import mxnet as mx
    from gluoncv import model_zoo

    zoo.model_info(model)
    net = model_zoo.get_model(model, pretrained=False, pretrained_base=False)
    if params_path is not None:
        net.load_parameters(params_path, ctx=ctx)
    else:
        mx.random.seed(seed if seed is not None else 0)
        np.random.seed(seed if seed is not None else 0)
        net.initialize(ctx=ctx, force_reinit=True)
        # Deferred initialisation: one forward pass gives every parameter its shape.
        height, width = speed_shape(model, 512)
        outputs = net(mx.nd.zeros((1, 3, height, width), ctx=ctx))
        for out in outputs:
            out.wait_to_read()
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
        height, width = image.shape[:2]
        return tensor, _to_original(height, width, lambda boxes: boxes / float(im_scale))


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


def eval_transform(model):
    """The model's own GluonCV eval transform: image -> (CHW tensor, boxes-to-original fn)."""
    info = zoo.model_info(model)
    family, spec = info["family"], info["eval"]
    if family == zoo.FASTER_RCNN:
        return FasterRCNNTransform(spec["short"], spec["max_size"])
    if family == zoo.CENTER_NET:
        return CenterNetTransform(spec["size"])
    return ResizeTransform(spec["size"], spec["size"])


def stacks_batches(model):
    """Whether a batch can be one tensor. Faster R-CNN's eval inputs keep each image's aspect
    ratio, so sizes differ; like GluonCV's eval_faster_rcnn.py, each image of the batch then
    goes through the network on its own and the batch is timed as a whole."""
    return zoo.model_info(model)["family"] != zoo.FASTER_RCNN
