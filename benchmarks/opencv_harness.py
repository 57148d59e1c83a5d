"""What detbench's opencv backend costs over a bare ``cv2.dnn`` loop, side by side in one process.

The darknet Nano VOC model (``models/mobilenetv2-yolov3-nano-voc``), batch 1 on the CPU, one
input tensor (the portrait, through the model's own ``DarknetTransform``), the same thread count
(``OMP_NUM_THREADS`` as the runner sets it, or ``--threads``; ``cv2.setNumThreads`` to it):

- detbench: ``engine_opencv.build`` on a speed-run spec, driven by the runner's own timed loop
  (``loop.timed_pass`` with its prefetch thread, ``load`` handing over the prepared input), so
  a pass includes everything a run times: ``setInput`` + ``forward`` of the yolo layers,
  detbench's numpy decoding and per-class NMS, the loop's bookkeeping;
- bare: ``cv2.dnn.readNetFromDarknet`` on the same files, ``net.setInput(x);
  net.forward(net.getUnconnectedOutLayersNames())`` in a plain ``for`` loop.

After ``--warmup`` passes each, ``--rounds`` rounds of ``--images`` passes each, the order
alternating from round to round; a round's throughput is images / wall seconds. The ratio is
the median over rounds of detbench / bare; the target is >= 0.97 (the harness, decoding and
NMS cost at most 3 % of a bare forward pass). Prints the medians, the ratio and a last line of
JSON for run_all.py.

    python benchmarks/opencv_harness.py [--rounds 10] [--images 20] [--threads N]
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
MODEL = "mobilenetv2_yolov3_nano_voc"
FOLDER = REPO / "models" / "mobilenetv2-yolov3-nano-voc"
CFG = FOLDER / "MobileNetV2-YOLOv3-Nano-voc.cfg"
WEIGHTS = FOLDER / "MobileNetV2-YOLOv3-Nano-voc.weights"
TARGET = 0.97


def portrait() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def opencv_engine(threads: str):
    import mxnet as mx

    from detbench.runner import engine_opencv, nets

    weights = {
        "format": "darknet", "path": str(WEIGHTS), "sha256": nets.file_digest(str(WEIGHTS)),
        "cfg": str(CFG), "cfg_sha256": nets.file_digest(str(CFG)),
    }  # fmt: skip
    spec = {"kind": "speed", "model": MODEL, "device": "cpu", "threads": threads,
            "weights": weights}  # fmt: skip
    return engine_opencv.build(spec, mx.cpu())


def detbench_round(engine, blob, images: int) -> float:
    """Images per second of ``images`` passes through the runner's timed loop."""
    from detbench.runner import loop

    def load(ids):
        return loop.Batch(ids, blob, [None], 0.0)

    wall, _, _, count = loop.timed_pass(engine, [["portrait"]] * images, load)
    return count / wall


def bare_round(net, names, blob, images: int) -> float:
    start = time.perf_counter()
    for _ in range(images):
        net.setInput(blob)
        net.forward(names)
    return images / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    threads = environment.configure_threads(args.threads)

    import cv2
    import mxnet as mx

    from detbench.runner import darknet

    engine = opencv_engine(threads)  # sets cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromDarknet(str(CFG), str(WEIGHTS))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    names = net.getUnconnectedOutLayersNames()
    tensor, _ = darknet.DarknetTransform(320, 320)(mx.image.imread(str(portrait())))
    blob = tensor.expand_dims(0).asnumpy()

    ids = engine(blob)[0]
    found = int((ids >= 0).sum())
    detbench_round(engine, blob, args.warmup)
    bare_round(net, names, blob, args.warmup)
    rates = {"detbench": [], "bare": []}
    for i in range(args.rounds):
        order = ["detbench", "bare"] if i % 2 == 0 else ["bare", "detbench"]
        for name in order:
            if name == "detbench":
                rates[name].append(detbench_round(engine, blob, args.images))
            else:
                rates[name].append(bare_round(net, names, blob, args.images))
    ratios = [ours / bare for ours, bare in zip(rates["detbench"], rates["bare"], strict=True)]
    ratio = statistics.median(ratios)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in medians.items():
        print(f"{name}: median {value:.1f} images/s ({1000 / value:.1f} ms per image)")
    print(f"detbench / bare throughput: {ratio:.3f} (rounds: {[round(r, 3) for r in ratios]})")
    return emit({
        "measure": "darknet MobileNetV2-YOLOv3-Nano VOC 320x320, batch 1 on the CPU, one input: "
        "detbench's opencv engine through the runner's timed loop (forward + numpy decoding "
        "+ per-class NMS) vs a bare cv2.dnn setInput + forward loop, throughput ratio",
        "target": f"detbench / bare >= {TARGET}",
        "measured": f"{ratio:.3f} ({medians['detbench']:.1f} vs {medians['bare']:.1f} images/s)",
        "pass": ratio >= TARGET and found > 0,
        "machine": f"{machine()}, {threads} threads, opencv {cv2.__version__}",
        "threads": threads, "rounds": args.rounds, "images_per_round": args.images,
        "warmup": args.warmup, "detections_on_the_portrait": found,
        "images_per_s": {name: round(value, 2) for name, value in medians.items()},
        "ratios": [round(r, 4) for r in ratios], "ratio": round(ratio, 4),
        "backend": engine.info,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
