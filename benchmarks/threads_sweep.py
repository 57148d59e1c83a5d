"""The runner's default thread count against the best ``OMP_NUM_THREADS`` of a sweep.

MXNet reads ``OMP_NUM_THREADS`` once, when it loads, so each setting runs in a fresh process: this
script started again with ``--child``, which runs the same speed run as the runner
(``benchmarks/_speedrun.py``: the runner's engine, loader, prefetch thread and
``loop.timed_pass``) after ``environment.configure_threads(None)``, the runner's own call when a
spec names no ``threads``. The settings are ``default`` (``OMP_NUM_THREADS`` removed from the
child's environment, so the runner picks: the physical core count) and 1..cores (the variable
set). Each of ``--rounds`` rounds starts one child per setting, the order rotating from round to
round; a child warms up and times ``--passes`` passes, its figure the median. Prints the sweep
(median images/s per setting over rounds) and the ratio default / best setting (each setting's
median over rounds); exits 1 below ``--target`` (0.97).

    python benchmarks/threads_sweep.py [--model M] [--images 48] [--rounds 3] [--passes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

DEFAULT = "default"
ENVIRONMENT = dict(os.environ)  # as started: importing mxnet/cv2 here later changes os.environ


def child(args) -> int:
    from detbench.runner import environment

    threads = environment.configure_threads(None)  # as run_spec with no spec threads
    from _speedrun import SpeedRun

    run = SpeedRun(args.model, images=args.images)
    run.warm_up()
    fps = [run.timed_pass() for _ in range(args.passes)]
    run.close()
    print(json.dumps({"threads": threads, "images_per_s": fps}))
    return 0


def run_child(setting: str, args) -> dict:
    env = dict(ENVIRONMENT)
    env.pop("OMP_NUM_THREADS", None)
    if setting != DEFAULT:
        env["OMP_NUM_THREADS"] = setting
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--model", args.model,
               "--images", str(args.images), "--passes", str(args.passes)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"threads {setting}: child failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


DEFAULT_MODEL = "mobilenetv2_yolov3_nano_voc"  # _speedrun's; importing it here would load
# mxnet before a child's configure_threads, so the default child would run MXNet's own default


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=48, help="images per pass (photos cycled)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per child")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    from run_all import emit, machine

    where = machine()
    settings = [DEFAULT] + [str(n) for n in range(1, args.cores + 1)]
    fps = {s: [] for s in settings}
    default_threads = None
    for i in range(args.rounds):
        for setting in settings[i % len(settings) :] + settings[: i % len(settings)]:
            record = run_child(setting, args)
            fps[setting].append(statistics.median(record["images_per_s"]))
            if setting == DEFAULT:
                default_threads = record["threads"]
            print(f"round {i + 1} threads {setting:>7}: {fps[setting][-1]:.2f} images/s",
                  flush=True)  # fmt: skip
    sweep = {s: round(statistics.median(v), 3) for s, v in fps.items()}
    best = max(settings[1:], key=lambda s: sweep[s])
    ratio = sweep[DEFAULT] / sweep[best]
    print("sweep (median images/s): " + ", ".join(f"{s}: {v}" for s, v in sweep.items()))
    print(f"default ({default_threads} threads) / best ({best}): {ratio:.3f}")
    return emit({
        "measure": f"speed-run throughput (runner's loop) with the runner's default threads "
        f"(configure_threads(None): OMP_NUM_THREADS={default_threads}) / with the best "
        f"OMP_NUM_THREADS of 1..{args.cores}, {args.model}, one fresh process per setting, "
        f"rotating order, median over rounds",
        "target": f">= {args.target}",
        "measured": f"{ratio:.3f} (default {sweep[DEFAULT]} images/s, best {best} threads "
        f"{sweep[best]}; sweep " + ", ".join(f"{s}: {sweep[s]}" for s in settings[1:]) + ")",
        "pass": ratio >= args.target,
        "machine": where,
        "model": args.model, "images_per_pass": args.images, "rounds": args.rounds,
        "passes_per_child": args.passes, "default_threads": default_threads,
        "sweep_images_per_s": sweep, "best": best, "ratio": round(ratio, 4),
        "images_per_s": {k: [round(v, 3) for v in vs] for k, vs in fps.items()},
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
