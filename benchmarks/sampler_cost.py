"""What the telemetry sampler costs a speed run: the same pass with it running and without.

In one process, on the same model, images and threads (``OMP_NUM_THREADS`` as the runner sets it,
before mxnet loads): a speed run's measured pass as ``run.execute`` times it
(``loop.timed_pass`` with the prefetch thread, see ``benchmarks/_speedrun.py``), once inside a
running :class:`detbench.runner.telemetry.TelemetrySampler` (its default 0.5 s interval, the
backend ``auto`` picks here, writing its CSV to a temporary file, started before the pass and
stopped after it, as ``run.run_spec`` does) and once without. After a warm-up, ``--rounds``
rounds run one pass of each, the order alternating. Prints the images/s of each pass and the
median of per-round ratios on / off; exits 1 below ``--target`` (0.99).

    python benchmarks/sampler_cost.py [--model M] [--images 96] [--rounds 15] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from run_all import emit, machine

from detbench.runner import environment

THREADS = environment.configure_threads(None)  # before mxnet loads, as the runner does

import mxnet as mx  # noqa: E402
from _speedrun import DEFAULT_MODEL, SpeedRun, alternate, paired_ratio  # noqa: E402

from detbench.runner.telemetry import TelemetrySampler  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=96, help="images per pass (photos cycled)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--interval", type=float, default=0.5, help="sampler interval (s)")
    parser.add_argument("--backend", default="auto", help="sampler backend (the runner: auto)")
    parser.add_argument("--target", type=float, default=0.99)
    args = parser.parse_args(argv)
    where = machine()
    run = SpeedRun(args.model, images=args.images)
    run.warm_up()
    samples, backends = [], set()
    with tempfile.TemporaryDirectory() as tmp:

        def sampled():
            path = os.path.join(tmp, "telemetry.csv")
            sampler = TelemetrySampler(path, args.interval, backend=args.backend)
            sampler.start()
            try:
                fps = run.timed_pass()
            finally:
                sampler.stop()
            samples.append(len(sampler.rows))
            backends.add(sampler.backend_name)
            return fps

        fps = alternate(args.rounds, {"on": sampled, "off": run.timed_pass})
    run.close()
    ratio = paired_ratio(fps["on"], fps["off"])
    for name, values in fps.items():
        print(f"sampler {name:>3}: " + " ".join(f"{v:.2f}" for v in values) + " images/s")
    print(f"on / off: {ratio}; samples per pass {samples}")
    measured = ratio["median_ratio"]
    return emit({
        "measure": f"speed-run pass (runner's loop.timed_pass) with the telemetry sampler "
        f"running ({args.interval} s, {args.backend}: backend {', '.join(sorted(backends))}) / "
        f"without, "
        f"images/s, {args.model}, same process, alternating rounds, median of per-round ratios",
        "target": f">= {args.target}",
        "measured": f"{measured:.3f} (on {statistics.median(fps['on']):.2f} vs off "
        f"{statistics.median(fps['off']):.2f} images/s, {args.rounds} rounds, per-round "
        f"{ratio['min_ratio']:.3f}-{ratio['max_ratio']:.3f})",
        "pass": measured >= args.target,
        "machine": f"{where}, OMP_NUM_THREADS={THREADS}, mxnet {mx.__version__}",
        "model": args.model, "images_per_pass": args.images, "rounds": args.rounds,
        "interval_s": args.interval, "samples_per_pass": samples,
        "images_per_s": {k: [round(v, 3) for v in vs] for k, vs in fps.items()}, **ratio,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
