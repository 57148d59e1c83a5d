"""50 track jobs at once against the team's tracking server on PostgreSQL, versus one after
another (issue 15): the fleet's claim that one ``mlflow server`` on PostgreSQL takes many
writers at once, where SQLite's file lock serialises them.

A throwaway PostgreSQL cluster (``detbench.server.TempPostgres``) and ``detbench server`` on it
(its default 4 workers) are started once. 50 voc run directories, each with a telemetry.csv of
2000 samples x every sensor (one 2000-point series per sensor, logged whole), are logged by 50
``detbench track`` processes, the track job's own code: all started at once into one experiment,
then one after another into another, side by side on the same server. Each mode is checked
afterwards: 50 FINISHED runs, every series whole, every file an artifact. Prints both times and
the ratio; the JSON last line is for ``run_all.py``; exits 1 when a run is incomplete or the
concurrent jobs take longer than one after another.

    python benchmarks/pg_track_concurrency.py [--jobs 50] [--samples 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from run_all import emit, machine

from detbench import contract, server, track

FIELDS = track.TELEMETRY_FIELDS


def make_run_dir(root: Path, device: str, samples: int) -> Path:
    """A finished voc run directory on ``device``, every sensor sampled ``samples`` times."""
    rng = np.random.default_rng(sum(map(ord, device)))
    run_dir = root / f"results/bench/voc/ssd_512_resnet50_v1_voc/mxnet/{device}"
    run_dir.mkdir(parents=True)
    weights = {"path": "w.params", "source": "gluoncv", "untrained": False, "sha256": "ab" * 32}
    dataset = {"name": "bench", "fingerprint": "3f2a9c1d0b7e", "split": "test"}
    spec = {"batch_size": 8, "input_shape": None, "image_ids": ["000001"], "warmup": 2,
            "repeats": 1, "telemetry_interval_s": 0.5, "weights": weights,
            "dataset": dataset}  # fmt: skip
    timings = {"total_wall_s": 4900.0, "model_s": 4700.0, "images_per_s": 1.01,
               "latency_ms": {"p50": 1290.0, "p90": 1350.0}}  # fmt: skip
    result = {"status": "ok", "error": None, "kind": "voc", "config_name": "bench",
              "model": "ssd_512_resnet50_v1_voc", "device": device, "mode": "hybrid",
              "weights": weights, "dataset": dataset, "threads": 4, "timings": timings,
              "telemetry": {"backend": "jtop", "samples": samples},
              "host": {"hostname": device, "jetson": {"board": "Jetson Nano"}},
              "versions": {"python": "3.6.9", "mxnet": "1.6.0", "gluoncv": "0.8.0"},
              "started_at": "2026-11-25T10:00:00Z"}  # fmt: skip
    (run_dir / contract.SPEC).write_text(json.dumps(spec))
    (run_dir / contract.RESULT).write_text(json.dumps(result))
    table = np.column_stack([np.arange(samples) * 0.5]
                            + [rng.uniform(0, 100, samples).round(1) for _ in FIELDS])  # fmt: skip
    np.savetxt(run_dir / contract.TELEMETRY, table, delimiter=",", fmt="%.2f",
               header="t_s," + ",".join(FIELDS), comments="")  # fmt: skip
    ap = {"aeroplane": 0.8, "bicycle": 0.7}
    (run_dir / contract.MAP).write_text(json.dumps({"mAP": 0.75, "ap_per_class": ap}))
    return run_dir


def track_job(run_dir: Path, experiment: Path, uri: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "detbench.cli", "track", str(run_dir),
               "--experiment", str(experiment)]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen(
        command, cwd=run_dir.parents[4], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(job: subprocess.Popen) -> None:
    _, err = job.communicate()
    if job.returncode != 0:
        raise SystemExit(f"a track job failed:\n{err[-3000:]}")


def log_all(root: Path, uri: str, jobs: int, samples: int, concurrent: bool) -> dict:
    """Log ``jobs`` fresh run dirs into a fresh experiment; time it; check what arrived."""
    run_dirs = [make_run_dir(root, f"nano{i:02d}", samples) for i in range(jobs)]
    experiment = root / "mlflow_experiment.json"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    record = track.ensure_experiment(root.name, experiment)
    del os.environ["MLFLOW_TRACKING_URI"]
    start = time.perf_counter()
    if concurrent:
        for job in [track_job(run_dir, experiment, uri) for run_dir in run_dirs]:
            finish(job)
    else:
        for run_dir in run_dirs:
            finish(track_job(run_dir, experiment, uri))
    seconds = time.perf_counter() - start
    client = track.mlflow_client(uri)
    runs = client.search_runs([record["experiment_id"]], max_results=1000)
    whole = all(
        run.info.status == "FINISHED"
        and len(client.get_metric_history(run.info.run_id, f"telemetry/{FIELDS[0]}")) == samples
        and len(client.list_artifacts(run.info.run_id)) == 4
        for run in runs
    )
    return {"seconds": seconds, "runs": len(runs), "complete": whole and len(runs) == jobs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--samples", type=int, default=track.MAX_SERIES_POINTS)
    args = parser.parse_args(argv)
    where = machine()
    with (
        tempfile.TemporaryDirectory(prefix="detbench-pgbench-") as tmp,
        server.TempPostgres() as pg,
    ):
        root = Path(tmp)
        with server.MlflowServer(pg.url, root / "artifacts", workers=4) as tracking:
            both = {mode: log_all(root / mode, tracking.uri, args.jobs, args.samples,
                                  concurrent=mode == "concurrent")
                    for mode in ("concurrent", "sequential")}  # fmt: skip
    at_once, one_by_one = both["concurrent"], both["sequential"]
    ratio = one_by_one["seconds"] / at_once["seconds"]
    for mode, got in both.items():
        print(f"{mode:>11}: {got['seconds']:.1f} s for {got['runs']} runs "
              f"(complete {got['complete']})")  # fmt: skip
    print(f"one after another / at once: {ratio:.2f}x")
    complete = at_once["complete"] and one_by_one["complete"]
    points = args.samples * len(FIELDS)
    return emit({
        "measure": f"{args.jobs} track jobs (detbench track, one process each; {points} series "
        f"points and 4 files per run) against detbench server (4 workers) on PostgreSQL 15: all "
        "at once vs one after another",
        "target": "every run complete; at once faster than one after another",
        "measured": f"at once {at_once['seconds']:.1f} s, one after another "
        f"{one_by_one['seconds']:.1f} s ({ratio:.2f}x)",
        "pass": complete and ratio > 1.0,
        "machine": where,
        "concurrent_s": round(at_once["seconds"], 2),
        "sequential_s": round(one_by_one["seconds"], 2),
        "ratio": round(ratio, 2), "complete": complete, "jobs": args.jobs,
        "series_points_per_run": points,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
