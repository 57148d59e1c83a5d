"""The real darknet detector in INT8: latency and mAP of MobileNetV2-YOLOv3-Nano VOC, INT8 vs FP32.

The FP32 model is the demo's ``mobilenetv2_yolov3_nano_voc`` (trained, ``models/``, built by
``detbench.runner.darknet``). Its INT8 version is made by the ``quantized`` weights source's code,
:func:`detbench.runner.quantize.quantize_to_files` (MXNet ``quantize_net``, MKL-DNN INT8 kernels,
``--calib-mode`` calibration on the first ``--calib`` photos of the demo's speed sample through the
model's speed transform, exported as ``-symbol.json`` + ``.params``), the convolutions that feed
the ``[yolo]`` layers kept FP32 (:func:`detbench.runner.quantize.darknet_fp32_layers`; with
``--quantize-heads`` they are quantized too). Both then run through the device runner itself:

- **mAP**: a voc run of each (``run.run_spec`` on a spec naming the weights, batch 8, the model's
  eval transform) over the 24 demo photos, scored by ``detbench.evaluate`` with the area metric
  (the model's published one), as the demo's voc run and evaluate step do. The calibration
  photos are among the 24.
- **latency**: batch-1 speed runs (the runner's engine, loader and ``loop.timed_pass``,
  ``benchmarks/_speedrun.py``), each net warmed up and timed in a fresh process of its own, as
  the workflow runs it (``_speedrun.fresh_process_seconds``: side by side in one process, MXNet
  slows an INT8 graph), ``--rounds`` rounds alternating the order; the median per-image model
  latency of each and the speed-up FP32 / INT8.

Prints both side by side and a last line of JSON. Passes when INT8 is faster and its mAP is within
``--max-map-drop`` (0.05) of FP32's; there is no other target.

    python benchmarks/int8_darknet.py [--calib 8] [--calib-mode naive] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from run_all import emit, machine

from detbench.runner import environment

THREADS = environment.configure_threads(None)  # before mxnet loads, as the runner does

import mxnet as mx  # noqa: E402
from _speedrun import (  # noqa: E402
    DEFAULT_MODEL,
    child_batch_seconds,
    fresh_process_seconds,
    photo_devkit,
    sha256,
    weights_entry,
)

from detbench.data.sample import sample_speed_images  # noqa: E402
from detbench.data.voc import read_split  # noqa: E402
from detbench.evaluate import evaluate_files  # noqa: E402
from detbench.runner import quantize, run  # noqa: E402


def int8_entry(fp32: dict, devkit: str, ids: list[str], out_dir: str, args) -> dict:
    out = os.path.join(out_dir, f"{DEFAULT_MODEL}_int8.params")
    symbol = quantize.quantize_to_files(
        DEFAULT_MODEL, fp32["path"], devkit, ids, 512, out, args.calib_mode,
        cfg_path=fp32["cfg"], quantize_heads=args.quantize_heads,
    )  # fmt: skip
    return {"source": "quantized", "format": "symbol", "untrained": False, "path": out,
            "sha256": sha256(out), "symbol": symbol, "symbol_sha256": sha256(symbol)}  # fmt: skip


def voc_map(weights: dict, devkit: str, run_dir: Path) -> dict:
    """A voc run of the runner with ``weights`` over every photo, and its mAP (area)."""
    run_dir.mkdir(parents=True)
    ids = read_split(devkit)
    spec = {"kind": "voc", "config_name": "bench", "model": DEFAULT_MODEL, "device": "cpu",
            "mode": "hybrid", "batch_size": 8, "input_shape": None, "image_ids": ids,
            "devkit": devkit, "weights": weights, "warmup": 1, "repeats": 1,
            "dataset": {"name": "photos", "fingerprint": "", "split": "test"},
            "telemetry_interval_s": 0.5, "threads": None}  # fmt: skip
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    result = run.run_spec(str(spec_path))
    if result["status"] != "ok":
        raise SystemExit(f"voc run failed: {result['error']}")
    scores = evaluate_files(devkit, run_dir / "detections.npz", metric="area")
    return {"mAP": scores["mAP"], "detections": scores["detections"],
            "images_per_s": result["timings"]["images_per_s"]}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calib", type=int, default=8, help="calibration photos")
    parser.add_argument("--calib-mode", default="naive", choices=["naive", "entropy"])
    parser.add_argument("--quantize-heads", action="store_true")
    parser.add_argument("--images", type=int, default=24, help="images per speed pass")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-map-drop", type=float, default=0.05)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--entry", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_batch_seconds(DEFAULT_MODEL, args.images, args.entry)
    where = machine()
    devkit = photo_devkit()
    calib_ids = sample_speed_images(read_split(devkit), args.calib, 0)
    with tempfile.TemporaryDirectory(prefix="detbench-int8-") as tmp:
        fp32 = weights_entry(DEFAULT_MODEL, tmp)
        weights = {"fp32": fp32, "int8": int8_entry(fp32, devkit, calib_ids, tmp, args)}
        scores = {name: voc_map(w, devkit, Path(tmp) / name) for name, w in weights.items()}
        latency = {name: [] for name in weights}
        for i in range(args.rounds):
            for name in list(weights) if i % 2 == 0 else list(reversed(weights)):
                latency[name] += fresh_process_seconds(__file__, name, weights[name],
                                                       args.images, tmp)  # fmt: skip
    ms = {name: round(1000 * statistics.median(v), 2) for name, v in latency.items()}
    speedup = ms["fp32"] / ms["int8"]
    drop = scores["fp32"]["mAP"] - scores["int8"]["mAP"]
    for name in weights:
        print(f"{name}: median latency {ms[name]:.1f} ms, mAP (area, 24 photos) "
              f"{scores[name]['mAP']:.4f}, {scores[name]['detections']} detections")  # fmt: skip
    print(f"INT8 speed-up {speedup:.2f}x, mAP change {-drop:+.4f}")
    heads = "quantized" if args.quantize_heads else "FP32"
    return emit({
        "measure": f"MobileNetV2-YOLOv3-Nano VOC (trained darknet, 320x320) INT8 (quantize_net, "
        f"{args.calib_mode} calibration on {args.calib} demo photos, yolo-head convs {heads}) "
        f"vs FP32 hybrid: batch-1 median latency through the runner's speed loop (each net in "
        f"its own process, alternating rounds) and mAP (area) of runner voc runs on the 24 demo "
        f"photos",
        "target": f"INT8 faster, mAP drop <= {args.max_map_drop}",
        "measured": f"INT8 {ms['int8']:.1f} ms vs FP32 {ms['fp32']:.1f} ms ({speedup:.2f}x); "
        f"mAP INT8 {scores['int8']['mAP']:.4f} vs FP32 {scores['fp32']['mAP']:.4f}",
        "pass": speedup > 1 and drop <= args.max_map_drop,
        "machine": f"{where}, OMP_NUM_THREADS={THREADS}, mxnet {mx.__version__}",
        "calib_images": calib_ids, "calib_mode": args.calib_mode, "heads": heads,
        "rounds": args.rounds, "images_per_pass": args.images, "median_ms": ms,
        "speedup": round(speedup, 3), "scores": scores,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
