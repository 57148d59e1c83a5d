"""Data-loading overhead of a voc run, side by side in one process (issue 6 item 1, issue 9).

For one model (default: the seed study's SSD512-ResNet50) at batch 8 on the CPU, on a synthetic
VOC-format set: model-only throughput
(batches decoded beforehand, only ``net(x)`` + sync timed), then the full voc-run loop with the
prefetch thread and with inline decoding. Prints images/s of each and the ratios
loop/model-only; exits 1 when the runner's loop (prefetch, the default) is below ``--target``.

Measured on 2 cores: SSD512-ResNet50 0.965-0.968; ssd_512_mobilenet1.0_voc 0.928-0.945 (its
forward pass is 3x shorter, so decoding is a larger share). Prefetch and inline measure the
same on a CPU device: MXNet's engine runs the data thread's ops on the same cores as the
model's. The runner keeps the prefetch thread, which overlaps host decoding with GPU compute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from detbench.runner import environment

environment.configure_threads(None)  # before mxnet loads

import mxnet as mx  # noqa: E402

from detbench.data.synthetic import make_synthetic_voc  # noqa: E402
from detbench.data.voc import read_split  # noqa: E402
from detbench.runner import loop, nets  # noqa: E402
from detbench.runner.run import chunks, image_reader  # noqa: E402


def measure(model: str, images: int, batch: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        devkit = Path(tmp) / "VOCdevkit"
        make_synthetic_voc(devkit, images, seed=0)
        ids = read_split(devkit)
        ctx = mx.cpu()
        net = nets.build_net(model, ctx, seed=0)
        nets.use_eval_nms(net)
        net.hybridize(static_alloc=True, static_shape=True)
        transform = nets.eval_transform(model)
        read = image_reader(str(devkit))
        stack = nets.stacks_batches(model)

        def load(batch_ids):
            return loop.load_batch(batch_ids, read, transform, ctx, stack)

        batches = chunks(ids, batch)
        loop.timed_pass(net, batches[:2], load, prefetch=False)  # warm-up, graph building
        preloaded = [load(b) for b in batches]
        best = {"model_only": 0.0, "prefetch": 0.0, "inline": 0.0}
        for _ in range(rounds):  # interleaved, best of rounds
            start = time.perf_counter()
            for item in preloaded:
                loop.forward(net, item)
            best["model_only"] = max(best["model_only"], len(ids) / (time.perf_counter() - start))
            for name, prefetch in (("prefetch", True), ("inline", False)):
                wall, _, _, count = loop.timed_pass(net, batches, load, prefetch=prefetch)
                best[name] = max(best[name], count / wall)
        return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="ssd_512_resnet50_v1_voc")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.93)
    args = parser.parse_args(argv)
    fps = measure(args.model, args.images, args.batch, args.rounds)
    ratios = {name: fps[name] / fps["model_only"] for name in ("prefetch", "inline")}
    for name, value in fps.items():
        print(f"{name:>10}: {value:7.2f} images/s")
    for name, value in ratios.items():
        print(f"{name:>10} / model-only: {value:.3f}")
    ok = ratios["prefetch"] >= args.target
    print(json.dumps({
        "measure": "voc-run throughput / model-only throughput (prefetch loop)",
        "target": f">= {args.target}", "measured": round(ratios["prefetch"], 3),
        "inline_ratio": round(ratios["inline"], 3), "fps": fps, "pass": ok,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, mxnet {mx.__version__}",
        "model": args.model, "batch": args.batch, "images": args.images,
    }))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
