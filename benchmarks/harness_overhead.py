"""What the runner's timing harness costs: its batch-1 speed run against a bare ``net(x)`` loop.

In one process, on the same model, the same images and the same threads (``OMP_NUM_THREADS`` as
the runner sets it, before mxnet loads):

- **runner**: a speed run's measured pass exactly as ``run.execute`` times it (``loop.timed_pass``
  over the sample that ``run.preloaded`` decoded and transformed with the model's speed transform,
  ``loop.forward`` with ``wait_to_read()`` on every output, per-batch clocks), on the engine
  ``engines.build`` makes from the spec (see ``benchmarks/_speedrun.py``);
- **bare**: the same model built from the same weights and hybridized as the runner's hybrid
  mode, called ``net(x)`` on the same inputs decoded beforehand, ``wait_to_read()`` per output.

Both warm up, then ``--rounds`` rounds run one pass of each, the order alternating. Prints the
images/s of each pass and the median of the per-round ratios runner / bare (the measure; the
runner's prefetch thread, per-batch clocks and output syncs are what it costs); exits 1 below
``--target`` (0.97). Also printed: the runner's model-only throughput (images over the sum of its
per-batch model clocks, as ``model_images_per_s`` in result.json) over the bare loop's.

    python benchmarks/harness_overhead.py [--model M] [--images 48] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from run_all import emit, machine

from detbench.runner import environment

THREADS = environment.configure_threads(None)  # before mxnet loads, as the runner does

import mxnet as mx  # noqa: E402
from _speedrun import DEFAULT_MODEL, SpeedRun, alternate, bare_pass, paired_ratio  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=48, help="images per pass (photos cycled)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.97)
    args = parser.parse_args(argv)
    where = machine()
    run = SpeedRun(args.model, images=args.images)
    bare = run.bare_net()
    inputs = run.preloaded_inputs()
    run.warm_up()
    bare_pass(bare, inputs)
    model_fps = []

    def runner():
        figures = run.pass_figures()
        model_fps.append(figures["model_images_per_s"])
        return figures["images_per_s"]

    fps = alternate(args.rounds, {"runner": runner, "bare": lambda: bare_pass(bare, inputs)})
    run.close()
    ratio = paired_ratio(fps["runner"], fps["bare"])
    model_ratio = paired_ratio(model_fps, fps["bare"])
    for name, values in {**fps, "runner model-only": model_fps}.items():
        print(f"{name:>17}: " + " ".join(f"{v:.2f}" for v in values) + " images/s")
    print(f"runner / bare: {ratio}")
    print(f"runner model time only (per-batch clocks, no decoding) / bare: {model_ratio}")
    measured = ratio["median_ratio"]
    return emit({
        "measure": f"runner's batch-1 speed-run pass (loop.timed_pass on the sample decoded "
        f"before the passes, synced per batch) / bare hybridized net(x) loop on the same "
        f"inputs, "
        f"images/s, {args.model}, same process/threads/images, alternating rounds, median of "
        f"per-round ratios",
        "target": f">= {args.target}",
        "measured": f"{measured:.3f} (runner {statistics.median(fps['runner']):.2f} vs bare "
        f"{statistics.median(fps['bare']):.2f} images/s, {args.rounds} rounds, per-round "
        f"{ratio['min_ratio']:.3f}-{ratio['max_ratio']:.3f}; model time alone / bare "
        f"{model_ratio['median_ratio']:.3f})",
        "pass": measured >= args.target,
        "machine": f"{where}, OMP_NUM_THREADS={THREADS}, mxnet {mx.__version__}",
        "model": args.model, "images_per_pass": args.images, "rounds": args.rounds,
        "images_per_s": {k: [round(v, 3) for v in vs] for k, vs in fps.items()}, **ratio,
        "runner_model_images_per_s": [round(v, 3) for v in model_fps],
        "model_only_median_ratio": model_ratio["median_ratio"],
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
