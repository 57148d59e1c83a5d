"""What detbench's opencv backend costs over a bare ``cv2.dnn`` loop, side by side in one process.

The darknet Nano VOC model (``models/mobilenetv2-yolov3-nano-voc``), batch 1 on the CPU, one
input tensor (the portrait, through the model's own ``DarknetTransform``), the same thread count
(``OMP_NUM_THREADS`` as the runner sets it, or ``--threads``; ``cv2.setNumThreads`` to it):

- detbench: ``engine_opencv.build`` on a speed-run spec, driven by the runner's own timed loop
  (``loop.timed_pass`` with its prefetch thread, ``load`` handing over the prepared input), so
  a pass includes everything a run times: ``setInput`` + ``forward`` of the yolo layers,
  detbench's numpy decoding and per-class NMS, the loop's bookkeeping;
- engine: the same engine called in a plain ``for`` loop (forward, decoding, NMS; no harness);
- bare: ``cv2.dnn.readNetFromDarknet`` on the same files, ``net.setInput(x);
  net.forward(net.getUnconnectedOutLayersNames())`` in a plain ``for`` loop (raw yolo outputs,
  no decoding or NMS).

After ``--warmup`` passes each, ``--rounds`` rounds of ``--images`` passes each, the order
alternating from round to round; a round's throughput is images / wall seconds. The measure is
the median over rounds of detbench / engine: the harness (timed loop, prefetch thread,
per-batch clocks) costs at most 3 % (target >= 0.97). detbench / bare is printed too: it adds
the decoding and NMS that a raw forward pass leaves out. Prints the medians, the ratios and a
last line of JSON for run_all.py.

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


def engine_round(engine, blob, images: int) -> float:
    """Images per second of the engine called in a plain loop: forward, decoding and NMS, no
    harness (what a user's own loop does to get detections)."""
    start = time.perf_counter()
    for _ in range(images):
        engine(blob)
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
    contenders = {
        "detbench": lambda: detbench_round(engine, blob, args.images),
        "engine": lambda: engine_round(engine, blob, args.images),
        "bare": lambda: bare_round(net, names, blob, args.images),
    }
    for run in contenders.values():
        run()  # warm-up
    rates = {name: [] for name in contenders}
    for i in range(args.rounds):
        order = list(contenders) if i % 2 == 0 else list(reversed(contenders))
        for name in order:
            rates[name].append(contenders[name]())

    def paired(top, bottom):
        return statistics.median(a / b for a, b in zip(rates[top], rates[bottom], strict=True))

    harness, ratio = paired("detbench", "engine"), paired("detbench", "bare")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in medians.items():
        print(f"{name}: median {value:.1f} images/s ({1000 / value:.1f} ms per image)")
    print(f"harness: detbench / engine in a plain loop: {harness:.3f}")
    print(f"detbench / bare forward (no decoding or NMS): {ratio:.3f}")
    return emit({
        "measure": "darknet MobileNetV2-YOLOv3-Nano VOC 320x320, batch 1 on the CPU, one input: "
        "detbench's opencv engine through the runner's timed loop vs the same engine (forward "
        "+ numpy decoding + per-class NMS) in a plain loop, throughput ratio (the harness); "
        "and vs a bare cv2.dnn setInput + forward loop, which leaves out decoding and NMS",
        "target": f"harness: detbench / engine >= {TARGET}",
        "measured": f"harness {harness:.3f}; vs bare forward {ratio:.3f} (detbench "
        f"{medians['detbench']:.1f}, engine {medians['engine']:.1f}, bare forward "
        f"{medians['bare']:.1f} images/s)",
        "pass": harness >= TARGET and found > 0, "harness_ratio": round(harness, 4),
        "machine": f"{machine()}, {threads} threads, opencv {cv2.__version__}",
        "threads": threads, "rounds": args.rounds, "images_per_round": args.images,
        "warmup": args.warmup, "detections_on_the_portrait": found,
        "images_per_s": {name: round(value, 2) for name, value in medians.items()},
        "ratio_vs_bare_forward": round(ratio, 4),
        "backend": engine.info,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
