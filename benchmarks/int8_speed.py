"""Time an INT8 detector (MXNet ``quantize_net``) against its FP32 hybrid net, side by side.

Builds ``--model`` (default ssd_512_mobilenet1.0_voc) with seeded untrained weights, hybridized
with ``static_alloc``/``static_shape`` (the runner's hybrid mode), and its INT8 version made by
:func:`detbench.runner.quantize.quantize` (the ``quantized`` weights source's code: naive
calibration on ``--calib`` seeded random images through the model's speed-run transform, flatten
and concat layers kept FP32). Both run on the same inputs at batch 1 on the CPU: ``--warmup``
passes each, then ``--iters`` rounds in which each net runs once, in alternating order, every
clock read after ``wait_to_read()`` on all outputs. ``OMP_NUM_THREADS`` is set to the physical
core count (or ``--threads``) before mxnet is imported, as the runner does.

Prints the per-pass median and p90 of both, the speed-up (FP32 median / INT8 median) and a last
line of JSON. Exits 1 when the speed-up is below ``--min-ratio`` (1.2).

    python benchmarks/int8_speed.py [--model M] [--size 512] [--iters 40] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from detbench.runner import environment


def timed(net, data) -> float:
    start = time.perf_counter()
    for out in net(data):
        out.wait_to_read()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ssd_512_mobilenet1.0_voc")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--calib", type=int, default=8, help="calibration images")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-ratio", type=float, default=1.2)
    args = parser.parse_args(argv)
    threads = environment.configure_threads(args.threads)

    import mxnet as mx
    import numpy as np

    from detbench.runner import nets, quantize

    rng = np.random.default_rng(args.seed)
    height, width = nets.speed_shape(args.model, args.size)

    def random_images(count):
        shape = (count, height * 3 // 4, width, 3)  # a 4:3 picture, resized by the transform
        return [mx.nd.array(a, dtype="uint8") for a in rng.integers(0, 256, shape, "uint8")]

    fp32 = nets.build_net(args.model, mx.cpu(), seed=args.seed)
    nets.use_eval_nms(fp32)
    calib = quantize.calibration_batch(args.model, random_images(args.calib), args.size)
    int8 = quantize.quantize(fp32, calib)
    fp32.hybridize(static_alloc=True, static_shape=True)
    int8.hybridize(static_alloc=True, static_shape=True)
    data = quantize.calibration_batch(args.model, random_images(1), args.size)

    nets_by_name = {"fp32": fp32, "int8": int8}
    for _ in range(args.warmup):
        for net in nets_by_name.values():
            timed(net, data)
    times = {name: [] for name in nets_by_name}
    for i in range(args.iters):
        order = list(nets_by_name) if i % 2 == 0 else list(reversed(nets_by_name))
        for name in order:
            times[name].append(timed(nets_by_name[name], data))

    summary = {
        name: {"median_ms": 1000 * percentile(t, 0.5), "p90_ms": 1000 * percentile(t, 0.9)}
        for name, t in times.items()
    }
    ratio = summary["fp32"]["median_ms"] / summary["int8"]["median_ms"]
    for name, figures in summary.items():
        print(f"{name}: median {figures['median_ms']:.1f} ms, p90 {figures['p90_ms']:.1f} ms")
    print(f"INT8 speed-up over FP32 hybrid: {ratio:.2f}x (need >= {args.min_ratio})")
    record = {
        "measure": f"INT8 (quantize_net, naive calibration) vs FP32 hybrid, {args.model}, "
        "batch 1 on the CPU: median latency ratio",
        "target": f">= {args.min_ratio}x",
        "measured": f"{ratio:.2f}x ({summary['fp32']['median_ms']:.1f} ms vs "
        f"{summary['int8']['median_ms']:.1f} ms)",
        "pass": ratio >= args.min_ratio,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"OMP_NUM_THREADS={threads}, mxnet {mx.__version__}",
        "model": args.model, "input": [1, 3, height, width], "threads": threads,
        "iters": args.iters, "warmup": args.warmup, "calib_images": args.calib,
        "mxnet": mx.__version__, "cpu": platform.processor() or platform.machine(),
        **{f"{name}_{k}": round(v, 2) for name, f in summary.items() for k, v in f.items()},
        "speedup": round(ratio, 3),
    }  # fmt: skip
    print(json.dumps(record))
    return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
