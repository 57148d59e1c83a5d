"""Time the darknet Nano VOC model as detbench's MXNet HybridBlock against OpenCV's ``cv2.dnn``.

Loads ``models/mobilenetv2-yolov3-nano-voc`` twice: with :func:`detbench.runner.darknet.
load_darknet` (hybridized with ``static_alloc``/``static_shape``, NMS 0.45 / top 400, the
runner's hybrid mode) and with ``cv2.dnn.readNetFromDarknet`` (default backend, CPU). Both get the
same input tensors, made once per photograph by ``DarknetTransform``, at batch 1 with the same
thread count: ``OMP_NUM_THREADS`` set as the runner sets it (physical cores, or ``--threads``)
before mxnet loads, and ``cv2.setNumThreads`` to that number. A pass is, for MXNet, the whole
detector (network, box decoding, per-class NMS) up to ``wait_to_read()`` on every output; for
OpenCV ``setInput`` + ``forward`` (network and box decoding) + one ``NMSBoxesBatched`` call
(per-class NMS 0.45 over the boxes above 0.005), so both end with the same detections. After
``--warmup`` passes each, ``--iters`` rounds run every photo through each net, the order of the
nets alternating from round to round; medians over all passes.

Why one is faster, two cheap hints: the same MXNet net hybridized with the MKL-DNN subgraph
backend (conv + relu fusion; MXNet >= 1.8's ``hybridize(backend=...)``), timed in the same
rounds; and where the time goes per layer kind (depthwise 3x3 convolutions, dense
convolutions, the rest): OpenCV's own per-layer profile (``getPerfProfile``) against each MXNet
convolution timed alone with its input shape.

There is no speed target: the benchmark passes when both nets ran and found the person in the
portrait (score > 0.3, same box within 1 px). Prints both medians, the ratio, and a last line of
JSON for run_all.py.

    python benchmarks/darknet_vs_opencv.py [--iters 30] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from run_all import emit, machine

from detbench.runner import environment

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "models" / "mobilenetv2-yolov3-nano-voc"
CFG = MODEL / "MobileNetV2-YOLOv3-Nano-voc.cfg"
WEIGHTS = MODEL / "MobileNetV2-YOLOv3-Nano-voc.weights"


def photos() -> list[Path]:
    """Real photographs that installed packages ship (the portrait first)."""
    import matplotlib
    import sklearn

    sklearn_images = Path(sklearn.__file__).parent / "datasets" / "images"
    found = [Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
             sklearn_images / "china.jpg", sklearn_images / "flower.jpg"]
    return [p for p in found if p.exists()]


def median_ms(seconds: list[float]) -> float:
    return 1000 * statistics.median(seconds)


class MXNetRunner:
    def __init__(self, net):
        self.net = net

    def __call__(self, tensor):
        outputs = self.net(tensor)
        for out in outputs:
            out.wait_to_read()
        return outputs

    def detections(self, tensor, unwarp):
        import numpy as np

        ids, scores, boxes = (a[0].asnumpy() for a in self(tensor))
        keep = ids[:, 0] >= 0
        return np.hstack([ids[keep], scores[keep], unwarp(boxes[keep])])


class OpenCVRunner:
    def __init__(self, net, size):
        self.net, self.size = net, size
        self.names = net.getUnconnectedOutLayersNames()

    def __call__(self, blob):
        import cv2
        import numpy as np

        self.net.setInput(blob)
        out = np.vstack(self.net.forward(self.names))
        classes, scores = out[:, 5:].argmax(axis=1), out[:, 5:].max(axis=1)
        keep = scores > 0.005
        height, width = self.size
        boxes = out[keep, :4]
        xywh = np.hstack([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, 2:]]) * ([width, height] * 2)
        picked = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores[keep].tolist(),
                                         classes[keep].tolist(), 0.005, 0.45)
        return out, np.asarray(picked).reshape(-1)

    def detections(self, blob, shape):
        """Rows [class, score, x1, y1, x2, y2] above 0.3 (best class of each box, no NMS), in
        original-image pixels clipped to the image, as detbench's unwarp gives them."""
        import numpy as np

        out, _ = self(blob)
        height, width = shape
        rows = []
        for index in np.flatnonzero(out[:, 5:].max(axis=1) > 0.3):
            cx, cy, w, h = out[index, :4] * [width, height, width, height]
            box = np.clip([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 0, [width, height] * 2)
            rows.append([out[index, 5:].argmax(), out[index, 5:].max(), *box])
        return np.array(rows).reshape(-1, 6)


def person_agrees(ours, theirs) -> bool:
    """Both found a person (VOC class 14) above 0.3, OpenCV's best one within 1 px of one of
    detbench's."""
    import numpy as np

    ours = ours[(ours[:, 0] == 14) & (ours[:, 1] > 0.3)]
    theirs = theirs[theirs[:, 0] == 14]
    if not len(ours) or not len(theirs):
        return False
    best = theirs[np.argmax(theirs[:, 1])]
    return bool(np.abs(ours[:, 2:] - best[2:]).max(axis=1).min() <= 1.0)


def alternate(runners: dict, inputs: dict, warmup: int, iters: int) -> dict:
    """Per-pass seconds of each runner over ``iters`` rounds of every input, order alternating."""
    for _ in range(warmup):
        for name, run in runners.items():
            for item in inputs[name]:
                run(item)
    times = {name: [] for name in runners}
    for i in range(iters):
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        for name in order:
            for item in inputs[name]:
                start = time.perf_counter()
                runners[name](item)
                times[name].append(time.perf_counter() - start)
    return times


def layer_kind(spec) -> str:
    if spec["type"] != "convolutional":
        return "other layers"
    return "depthwise conv" if spec["groups"] > 1 else "dense conv"


def opencv_profile(cv_net, blob, specs, passes=20) -> dict:
    """ms per pass by layer kind from OpenCV's own per-layer timings (BN and activations are
    fused into its convolutions; box decoding is 'other layers')."""
    import cv2

    totals = {}
    names = cv_net.getLayerNames()
    for _ in range(passes):
        cv_net.setInput(blob)
        cv_net.forward(cv_net.getUnconnectedOutLayersNames())
        _, per_layer = cv_net.getPerfProfile()
        for name, ticks in zip(names, per_layer.reshape(-1), strict=True):
            prefix, _, index = name.rpartition("_")
            kind = "other layers"
            if prefix == "conv" and index.isdigit():
                kind = layer_kind(specs[int(index)])
            totals[kind] = totals.get(kind, 0.0) + ticks
    scale = 1000.0 / cv2.getTickFrequency() / passes
    return {kind: round(value * scale, 2) for kind, value in sorted(totals.items())}


def mxnet_conv_profile(specs, passes=20) -> dict:
    """ms per pass by kind of each MXNet convolution (+ its activation) timed alone, hybridized,
    on an input of its shape."""
    import mxnet as mx

    totals = {}
    activations = {"relu": lambda: mx.gluon.nn.Activation("relu"),
                   "leaky": lambda: mx.gluon.nn.LeakyReLU(0.1)}
    for spec in (s for s in specs if s["type"] == "convolutional"):
        block = mx.gluon.nn.HybridSequential()
        block.add(mx.gluon.nn.Conv2D(spec["filters"], spec["size"], strides=spec["stride"],
                                     padding=spec["padding"], groups=spec["groups"],
                                     in_channels=spec["in_channels"]))
        if spec["activation"] in activations:
            block.add(activations[spec["activation"]]())
        block.initialize()
        block.hybridize(static_alloc=True, static_shape=True)
        data = mx.nd.random.uniform(shape=(1,) + tuple(spec["input"]))
        for _ in range(3):
            block(data).wait_to_read()
        start = time.perf_counter()
        for _ in range(passes):
            block(data).wait_to_read()
        kind = layer_kind(spec)
        totals[kind] = totals.get(kind, 0.0) + (time.perf_counter() - start) / passes
    return {kind: round(1000 * value, 2) for kind, value in sorted(totals.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    threads = environment.configure_threads(args.threads)

    import cv2
    import mxnet as mx

    from detbench.runner import darknet

    cv2.setNumThreads(int(threads))
    net = darknet.load_darknet(str(CFG), str(WEIGHTS))
    net.set_nms(nms_thresh=0.45, nms_topk=400)
    net.hybridize(static_alloc=True, static_shape=True)
    cv_net = cv2.dnn.readNetFromDarknet(str(CFG), str(WEIGHTS))
    transform = darknet.DarknetTransform(*net.input_size)
    images = [mx.image.imread(str(p)) for p in photos()]
    prepared = [transform(image) for image in images]
    tensors = [tensor.expand_dims(0) for tensor, _ in prepared]
    blobs = [t.asnumpy() for t in tensors]

    runners = {"mxnet": MXNetRunner(net), "opencv": OpenCVRunner(cv_net, net.input_size)}
    inputs = {"mxnet": tensors, "opencv": blobs}
    fused = None
    if tuple(int(v) for v in mx.__version__.split(".")[:2]) >= (1, 8):
        fused = darknet.load_darknet(str(CFG), str(WEIGHTS))
        fused.set_nms(nms_thresh=0.45, nms_topk=400)
        fused.hybridize(static_alloc=True, static_shape=True, backend="MKLDNN")
        runners["mxnet_mkldnn"], inputs["mxnet_mkldnn"] = MXNetRunner(fused), tensors

    ours = runners["mxnet"].detections(tensors[0], prepared[0][1])
    theirs = runners["opencv"].detections(blobs[0], images[0].shape[:2])
    agree = person_agrees(ours, theirs)

    times = alternate(runners, inputs, args.warmup, args.iters)
    medians = {name: median_ms(t) for name, t in times.items()}
    ratio = medians["mxnet"] / medians["opencv"]
    faster = "OpenCV" if ratio > 1 else "MXNet"
    specs = net.specs
    cv_layers = opencv_profile(cv_net, blobs[0], specs)
    mx_layers = mxnet_conv_profile(specs)

    for name, value in medians.items():
        print(f"{name}: median {value:.1f} ms per image ({len(times[name])} passes)")
    print(f"MXNet / OpenCV latency: {ratio:.2f} ({faster} is faster)")
    print(f"OpenCV per layer kind, ms per pass: {cv_layers}")
    print(f"MXNet convolutions timed alone, ms per pass: {mx_layers}")
    print(f"both found the portrait's person at the same box: {agree}")
    mkldnn = ""
    if fused is not None:
        mkldnn = f"; with the MKL-DNN subgraph backend {medians['mxnet_mkldnn']:.1f} ms"
    return emit({
        "measure": "darknet MobileNetV2-YOLOv3-Nano VOC 320x320, batch 1 on the CPU, same "
        "threads and inputs: detbench's MXNet HybridBlock (whole detector) vs cv2.dnn forward + "
        "NMSBoxesBatched, median latency (MXNet / OpenCV)",
        "target": "both run and find the portrait's person (no speed target)",
        "measured": f"MXNet {medians['mxnet']:.1f} ms vs OpenCV {medians['opencv']:.1f} ms per "
        f"image: {ratio:.2f}x, {faster} faster{mkldnn}",
        "pass": agree,
        "machine": f"{machine()}, OMP_NUM_THREADS={threads}, mxnet {mx.__version__}, "
        f"opencv {cv2.__version__}",
        "threads": threads, "iters": args.iters, "warmup": args.warmup,
        "images": [p.name for p in photos()],
        "median_ms": {name: round(value, 2) for name, value in medians.items()},
        "ratio_mxnet_over_opencv": round(ratio, 3),
        "opencv_layer_ms": cv_layers, "mxnet_conv_alone_ms": mx_layers,
    })


if __name__ == "__main__":
    sys.exit(main())
