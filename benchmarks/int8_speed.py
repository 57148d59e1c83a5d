"""INT8 vs FP32 hybrid latency of the demo's ``ssd_512_mobilenet1.0_voc``, the way the demo runs it.

Both nets are made and run exactly as ``make demo`` makes and runs them, but side by side in one
process (``benchmarks/_speedrun.py``):

- **fp32**: seeded untrained weights (``run.init_weights``, seed 0: the ``untrained`` source),
  built by the runner's engine and hybridized with static shapes (the runner's hybrid mode);
- **int8**: those weights quantized by the ``quantized`` source's code
  (``quantize.quantize_to_files``: ``quantize_net``, naive calibration on the first ``--calib``
  photos of the demo's speed sample, exported), loaded by the runner as a symbol model;
- **fp32_fused**: the FP32 net hybridized with MXNet's MKL-DNN subgraph backend
  (``hybridize(backend="MKLDNN")``: convolution + batch norm + ReLU fused, as the INT8 graph's
  FP32 parts are), which splits the INT8 speed-up into what fusion gives and what INT8 gives.

Inputs are the demo's photos through the model's speed transform (512x512), decoded before the
pass as a speed run does; each of ``--rounds`` rounds runs one ``loop.timed_pass`` of every net
over ``--images`` photos, each net in a fresh process (as the demo's runs are: beside a built
FP32 net in one process, MXNet ran the INT8 graph about 2.7x slower), the order alternating;
latencies are the per-image model times (``wait_to_read()`` on every output), pooled over rounds.
Also counted, from the same nets with NMS switched off: the (anchor, class) rows above GluonCV's
0.01 score threshold that enter ``box_nms`` (the NMS load, which untrained weights could make differ
between FP32 and INT8), for photos and for random-noise images.

Prints medians, p10-p90, the speed-ups and a last line of JSON; exits 1 when INT8 / FP32 is
below ``--min-ratio`` (1.2).

    python benchmarks/int8_speed.py [--images 16] [--rounds 5] [--calib 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

from run_all import emit, machine

from detbench.runner import environment

THREADS = environment.configure_threads(None)  # before mxnet loads, as the runner does

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from _speedrun import (  # noqa: E402
    SpeedRun,
    child_batch_seconds,
    fresh_process_seconds,
    photo_devkit,
    sha256,
    weights_entry,
)

from detbench.data.sample import sample_speed_images  # noqa: E402
from detbench.data.voc import read_split  # noqa: E402
from detbench.runner import loop, nets, quantize, stats  # noqa: E402
from detbench.runner.run import image_reader  # noqa: E402

MODEL = "ssd_512_mobilenet1.0_voc"


def int8_entry(fp32: dict, devkit: str, ids: list[str], out_dir: str) -> dict:
    out = os.path.join(out_dir, f"{MODEL}_int8.params")
    symbol = quantize.quantize_to_files(MODEL, fp32["path"], devkit, ids, 512, out, "naive")
    return {"source": "quantized", "format": "symbol", "untrained": True, "path": out,
            "sha256": sha256(out), "symbol": symbol, "symbol_sha256": sha256(symbol)}  # fmt: skip


def nms_rows(fp32: dict, calib, inputs: dict) -> dict:
    """Rows entering box_nms per image (score > 0.01), for FP32 and its INT8 quantization."""
    net = nets.build_from_weights(MODEL, mx.cpu(), fp32)
    net.set_nms(nms_thresh=0, nms_topk=-1, post_nms=-1)  # GluonCV: no NMS, every row returned
    counted = {"fp32": net, "int8": quantize.quantize(net, calib)}
    rows = {}
    for name, model in counted.items():
        for kind, batch in inputs.items():
            ids, scores, _ = (a.asnumpy() for a in model(batch))
            rows[f"{name}_{kind}"] = int(((ids >= 0) & (scores > 0.01)).sum())
    return rows


def child(name: str, entry_path: str, images: int) -> int:
    """One net alone in this process: warm up, one timed pass; prints its batch seconds."""
    if name != "fp32_fused":
        return child_batch_seconds(MODEL, images, entry_path)
    entry = json.loads(open(entry_path).read())
    run = SpeedRun(MODEL, images, weights=entry)
    fused = nets.build_from_weights(MODEL, mx.cpu(), entry)
    fused.hybridize(backend="MKLDNN", static_alloc=True, static_shape=True)
    loop.timed_pass(fused, run.batches, run.load)
    seconds = loop.timed_pass(fused, run.batches, run.load)[1]
    run.close()
    print(json.dumps(seconds))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16, help="photos per pass (cycled)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calib", type=int, default=8, help="calibration photos")
    parser.add_argument("--min-ratio", type=float, default=1.2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--entry", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.entry, args.images)
    where = machine()
    devkit = photo_devkit()
    calib_ids = sample_speed_images(read_split(devkit), args.calib, 0)
    with tempfile.TemporaryDirectory(prefix="detbench-int8-") as tmp:
        fp32 = weights_entry(MODEL, tmp)
        int8 = int8_entry(fp32, devkit, calib_ids, tmp)
        entries = {"fp32": fp32, "int8": int8, "fp32_fused": fp32}
        seconds = {name: [] for name in entries}
        for i in range(args.rounds):  # each net in its own process, as the demo's runs are
            for name in list(entries) if i % 2 == 0 else list(reversed(entries)):
                entry = entries[name]
                seconds[name] += fresh_process_seconds(__file__, name, entry, args.images, tmp)
        transform = nets.ResizeTransform(512, 512)
        read = image_reader(devkit)
        photo = transform(read(calib_ids[0]))[0].expand_dims(0)
        noise = np.random.default_rng(0).integers(0, 256, (384, 512, 3), "uint8")
        noise = transform(mx.nd.array(noise, dtype="uint8"))[0].expand_dims(0)
        calib = quantize.calibration_batch(MODEL, [read(i) for i in calib_ids], 512)
        rows = nms_rows(fp32, calib, {"photo": photo, "noise": noise})
    ms = {}
    for name, values in seconds.items():
        ms[name] = {q: round(stats.percentile([1000 * v for v in values], p), 2)
                    for q, p in (("p10", 10), ("median", 50), ("p90", 90))}  # fmt: skip
        print(f"{name:>10}: median {ms[name]['median']:.1f} ms (p10 {ms[name]['p10']:.1f}, "
              f"p90 {ms[name]['p90']:.1f}), {len(values)} images")  # fmt: skip
    ratio = ms["fp32"]["median"] / ms["int8"]["median"]
    fused_ratio = ms["fp32_fused"]["median"] / ms["int8"]["median"]
    per_round = [
        statistics.median(seconds["fp32"][i : i + args.images])
        / statistics.median(seconds["int8"][i : i + args.images])
        for i in range(0, len(seconds["fp32"]), args.images)
    ]
    print(f"INT8 speed-up over FP32 hybrid {ratio:.2f}x (per round {min(per_round):.2f}-"
          f"{max(per_round):.2f}), over fused FP32 {fused_ratio:.2f}x")  # fmt: skip
    print(f"rows entering NMS per image: {rows}")
    return emit({
        "measure": f"INT8 (quantize_net, naive calibration on {args.calib} demo photos, the "
        f"demo's quantized source) vs FP32 hybrid, {MODEL} untrained (seed 0), batch 1 512x512 "
        f"on the CPU through the runner's engine and loop, demo photos, alternating rounds: "
        f"median latency ratio",
        "target": f">= {args.min_ratio}x",
        "measured": f"{ratio:.2f}x (FP32 {ms['fp32']['median']:.1f} ms vs INT8 "
        f"{ms['int8']['median']:.1f} ms; FP32 with MKL-DNN fusion {ms['fp32_fused']['median']:.1f}"
        f" ms, INT8 over it {fused_ratio:.2f}x)",
        "pass": ratio >= args.min_ratio,
        "machine": f"{where}, OMP_NUM_THREADS={THREADS}, mxnet {mx.__version__}",
        "model": MODEL, "input": [1, 3, 512, 512], "threads": THREADS,
        "images_per_pass": args.images, "rounds": args.rounds, "calib_images": calib_ids,
        "latency_ms": ms, "speedup": round(ratio, 3), "speedup_over_fused": round(fused_ratio, 3),
        "speedup_per_round": [round(r, 3) for r in per_round], "nms_rows_per_image": rows,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
