"""A fleet of three devices against one device taking the same runs (issue 15 item 6).

Three devices over SSH, each its own OpenSSH server on loopback (``detbench.remote.loopback``)
whose Python is the seed stack (``.venv36``), and one model (default ``yolo3_mobilenet1.0_voc``,
untrained) with a speed run and a voc run on each: six run jobs. The workflow writes the specs
and fills the device cache once (the first fleet run, reported apart), then the same six jobs
are run again (``snakemake --forcerun speed voc``) side by side, alternating for ``--rounds``
rounds:

- **fleet**: the workflow's own scheduling, one job per device at a time, the devices together;
- **one**: ``--resources benchmark_slots=1``, one job at a time across the three, as one device
  would take them.

Prints the wall time of each ``snakemake`` call and the most runs that overlapped (from the runs'
``started_unix_s`` / ``finished_unix_s``), and exits 1 when the best fleet time is above
``--target`` times the best one-device time (best of rounds as the other benchmarks: the 2-core
machine is shared; medians beside).

On loopback the three devices share this machine's 2 cores (each runner gets ``--threads``), so
the ratio cannot reach the 1/3 of three real boards: it measures how much of the runs' time the
scheduling overlaps, on a machine that has fewer cores than devices.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from run_all import REPO, emit, machine, must, snakemake
from snakemake.utils import validate

from detbench import plan
from detbench.remote.loopback import LoopbackSSHD
from detbench.workspace import copy_workflow

SEED_PYTHON = REPO / ".venv36/bin/python"
FLEET = ("fleet_a", "fleet_b", "fleet_c")


def most_at_once(results: list[dict]) -> int:
    """The most runs that were running at one instant."""
    events = sorted(
        [(r["started_unix_s"], 1) for r in results] + [(r["finished_unix_s"], -1) for r in results]
    )  # at a tie, a run's end comes before another's start
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def timed(workdir: Path, targets: list[str], *extra: str) -> tuple[float, int]:
    """Rerun the run jobs of ``targets``: wall seconds and the most runs at once."""
    done, seconds = snakemake(
        workdir, *targets, "--configfile", "bench.yaml", "--forcerun", "speed", "voc", *extra
    )
    must(done, "the run jobs")
    results = [json.loads((workdir / target).read_text()) for target in targets]
    failed = [r["error"] for r in results if r["status"] != "ok"]
    if failed:
        raise SystemExit(f"runs failed: {failed}")
    return seconds, most_at_once(results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="yolo3_mobilenet1.0_voc")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.75)
    args = parser.parse_args(argv)
    where = machine()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as servers:
        base = Path(tmp)
        devices = [
            servers.enter_context(LoopbackSSHD(base / f"sshd-{name}")).device(name, SEED_PYTHON)
            for name in FLEET
        ]
        config = {
            "name": "bench",
            "voc": {"synthetic": {"images": args.images, "seed": 0}},
            "models": [args.model],
            "weights": {"source": "untrained", "seed": 0},
            "devices": devices,
            "speed": {"images": args.images // 2, "size": 320, "modes": ["hybrid"], "warmup": 1},
            "voc_run": {"batch": 8, "warmup": 1},
            "runner": {"threads": args.threads},
            "ssh": {"cache": str(base / "device-cache")},
        }
        validate(config, str(REPO / "config/schema.yaml"))
        workdir = copy_workflow(base / "wf", config, "bench.yaml")
        targets = [f"{run}/result.json" for run in plan.run_dirs(config)]
        specs = [f"{run}/spec.json" for run in plan.run_dirs(config)]
        done, _ = snakemake(workdir, *specs, "--configfile", "bench.yaml")
        must(done, "the weights, the data set and the specs")
        first_s, first_most = timed(workdir, targets)
        print(f"fleet, empty device cache: {first_s:.1f} s, {first_most} runs at once")
        fleet_s, one_s, fleet_most, one_most = [], [], [], []
        for number in range(args.rounds):
            order = ("one", "fleet") if number % 2 == 0 else ("fleet", "one")
            for mode in order:
                extra = ("--resources", "benchmark_slots=1") if mode == "one" else ()
                seconds, most = timed(workdir, targets, *extra)
                (one_s if mode == "one" else fleet_s).append(seconds)
                (one_most if mode == "one" else fleet_most).append(most)
            print(f"round {number + 1}: one device {one_s[-1]:.1f} s ({one_most[-1]} at once), "
                  f"fleet of 3 {fleet_s[-1]:.1f} s ({fleet_most[-1]} at once)")  # fmt: skip
    ratio = min(fleet_s) / min(one_s)
    median_ratio = statistics.median(fleet_s) / statistics.median(one_s)
    print(f"fleet / one device: {ratio:.3f} best of {args.rounds} (medians: {median_ratio:.3f})")
    scheduled = max(one_most) == 1 and min(fleet_most) >= 2
    return emit({
        "measure": f"wall time of the same {len(targets)} run jobs (speed + voc of one model on "
        "each of 3 loopback SSH devices, seed stack): the fleet's scheduling / one job at a time "
        "as one device, best of rounds",
        "target": f"<= {args.target:g}",
        "measured": round(ratio, 3),
        "pass": ratio <= args.target and scheduled, "median_ratio": round(median_ratio, 3),
        "machine": where,
        "fleet_s": [round(s, 1) for s in fleet_s], "one_s": [round(s, 1) for s in one_s],
        "fleet_most_at_once": fleet_most, "one_most_at_once": one_most,
        "first_fleet_s": round(first_s, 1), "model": args.model, "images": args.images,
        "threads_per_device": args.threads,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
