"""Hybrid against imperative across processes: the gain the demo's modes.csv has to find.

The demo times each mode of a model in one process (one speed run: warm-up, then 5 passes of 12
photos), and ``modes.csv`` reads the two runs against their passes' spread. That spread is the
noise inside a process; a run in another process can land elsewhere. Here each model and mode is
a fresh process per round (``--rounds``, alternating the order), each timing ``--passes`` passes
of ``--images`` demo photos exactly as a speed run does (``benchmarks/_speedrun.py``), so the
gain of hybridizing is measured with the process-to-process spread in it:

- per model: each mode's process medians, the ratio of the medians (imperative / hybrid), the
  per-round ratios (min-max) and the process-to-process cv beside the within-process pass cv;
- the target is the demo's claim: hybrid faster than imperative in every round.

Prints one line per model and a last line of JSON.

    python benchmarks/mode_gain.py [--rounds 4] [--passes 5] [--images 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from run_all import emit, machine

from detbench.runner import environment

THREADS = environment.configure_threads(None)  # before mxnet loads, as the runner does

from _speedrun import SpeedRun, fresh_process  # noqa: E402  (imports mxnet)

from detbench.runner import loop  # noqa: E402

MODELS = ("mobilenetv2_yolov3_nano_voc", "ssd_512_mobilenet1.0_voc", "yolo3_mobilenet1.0_voc")
MODES = ("imperative", "hybrid")


def child(model: str, mode: str, images: int, passes: int) -> int:
    """One speed run's timing in this process: warm-up, then ``passes`` pass wall times."""
    run = SpeedRun(model, images, mode=mode)
    loop.timed_pass(run.net, run.batches[:1], run.load, prefetch=False)  # the runner's warm-up
    loop.timed_pass(run.net, run.batches[1:2], run.load, prefetch=False)
    walls = [loop.timed_pass(run.net, run.batches, run.load)[0] for _ in range(passes)]
    run.close()
    print(json.dumps(walls))
    return 0


def process_walls(model: str, mode: str, images: int, passes: int) -> list[float]:
    args = ["--child", model, mode, "--images", str(images), "--passes", str(passes)]
    return fresh_process(__file__, args, f"{model} {mode}")


def cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.mean(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--passes", type=int, default=5, help="passes per process (demo: 5)")
    parser.add_argument("--images", type=int, default=12, help="photos per pass (demo: 12)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, args.images, args.passes)
    where = machine()
    models = args.models.split(",")
    walls = {(m, mode): [] for m in models for mode in MODES}
    for i in range(args.rounds):
        for model in models:
            for mode in MODES if i % 2 == 0 else reversed(MODES):
                walls[model, mode].append(process_walls(model, mode, args.images, args.passes))
    figures = {}
    for model in models:
        med = {mode: [statistics.median(w) for w in walls[model, mode]] for mode in MODES}
        rounds = [a / b for a, b in zip(med["imperative"], med["hybrid"], strict=True)]
        gain = statistics.median(med["imperative"]) / statistics.median(med["hybrid"])
        figures[model] = {
            "process_median_s": {mode: [round(v, 4) for v in med[mode]] for mode in MODES},
            "gain": round(gain, 3),
            "gain_per_round": [round(r, 3) for r in rounds],
            "process_cv": {mode: round(cv(med[mode]), 4) for mode in MODES},
            "pass_cv_median": {mode: round(statistics.median(cv(w) for w in walls[model, mode]), 4)
                               for mode in MODES},  # fmt: skip
            "hybrid_faster_every_round": all(r > 1 for r in rounds),
        }
        f = figures[model]
        print(f"{model}: hybrid gain {f['gain']:.3f}x (per round {min(rounds):.3f}-"
              f"{max(rounds):.3f}); process cv {f['process_cv']}, pass cv {f['pass_cv_median']}")
    gains = ", ".join(f"{m} {f['gain']:.2f}x ({min(f['gain_per_round']):.2f}-"
                      f"{max(f['gain_per_round']):.2f})" for m, f in figures.items())  # fmt: skip
    return emit({
        "measure": f"imperative / hybrid median pass wall time of the demo's speed run "
        f"({args.images} photos x {args.passes} passes, batch 1, 512x512), each model and mode in "
        f"a fresh process per round, {args.rounds} alternating rounds: the gain the demo's "
        f"modes.csv must find",
        "target": "hybrid faster than imperative in every round, per model",
        "measured": gains,
        "pass": all(f["hybrid_faster_every_round"] for f in figures.values()),
        "machine": f"{where}, OMP_NUM_THREADS={THREADS}",
        "rounds": args.rounds, "passes": args.passes, "images": args.images,
        "models": figures,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
