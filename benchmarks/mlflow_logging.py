"""Log one voc run directory to a fresh SQLite MLflow store: target <= 5 s (issue 9), through
MLflow's public API only (issue 14).

The run directory is shaped like a full VOC2007 test run on a Jetson: a telemetry.csv of
10 000 samples x 9 fields (t_s and 8 sensors, every one present: 80 000 series points), a
detections.npz of 4952 images x 100 detections, result.json, spec.json and map.json. Each
measurement uses a fresh store (its experiment is created first, untimed) and times
:func:`detbench.track.log_run_dir` alone, checking afterwards that every file arrived and each
series holds what it should.

Each measurement runs in a fresh process, as a ``track`` job does (MLflow caches a store per
URI, and the default URI is relative). Side by side: detbench's logging (each series min-max
decimated to ``track.MAX_SERIES_POINTS`` points, the CSV artifact whole, all through
``log_batch``) and the same call with every sample sent through ``log_batch`` (1000 per request,
MLflow's limit). Prints both and the ratio; the JSON last line is for ``run_all.py``; exits 1
above the target.

    python benchmarks/mlflow_logging.py [--samples 10000] [--repeats 3] [--target 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from run_all import emit, machine

from detbench import track
from detbench.data.voc import VOC_CLASSES

FIELDS = track.TELEMETRY_FIELDS
MODEL = "ssd_512_resnet50_v1_voc"


def make_run_dir(root: Path, samples: int, images: int = 4952, per_image: int = 100) -> Path:
    """A complete voc run directory with ``samples`` telemetry rows, every sensor present."""
    rng = np.random.default_rng(0)
    run_dir = root / f"results/bench/voc/{MODEL}/mxnet/gpu0"
    run_dir.mkdir(parents=True)
    ids = [f"{i:06d}" for i in range(1, images + 1)]
    weights = {"path": f"weights/gluoncv/{MODEL}.params", "source": "gluoncv",
               "untrained": False, "sha256": "ab" * 32}  # fmt: skip
    dataset = {"name": "bench", "fingerprint": "3f2a9c1d0b7e", "split": "test"}
    spec = {"kind": "voc", "config_name": "bench", "model": MODEL, "device": "gpu0",
            "mode": "hybrid", "batch_size": 8, "input_shape": None, "warmup": 2, "repeats": 1,
            "image_ids": ids, "weights": weights, "dataset": dataset,
            "telemetry_interval_s": 0.5, "threads": 4}  # fmt: skip
    latency = {"mean": 1300.0, "p50": 1290.0, "p90": 1350.0, "p99": 1400.0, "max": 1500.0}
    timings = {"total_wall_s": 4900.0, "model_s": 4700.0, "data_s": 150.0, "first_batch_s": 30.0,
               "warmup_batches": 2, "measured_batches": 619, "measured_images": images,
               "images_per_s": 1.01, "model_images_per_s": 1.05, "latency_ms": latency}  # fmt: skip
    telemetry = {"backend": "jtop", "interval_s": 0.5, "samples": samples,
                 "duration_s": samples * 0.5, "gpu_temp_c_max": 61.5,
                 "gpu_temp_c_delta": 22.0, "swap_used_mb_max": 812.0,
                 "swap_used_mb_delta": 640.0, "energy_j": 41000.0}  # fmt: skip
    result = {"status": "ok", "error": None, "kind": "voc", "config_name": "bench",
              "model": MODEL, "device": "gpu0", "mode": "hybrid", "batch_size": 8,
              "input_shape": None, "image_count": images, "weights": weights,
              "dataset": dataset, "threads": 4, "timings": timings, "telemetry": telemetry,
              "versions": {"python": "3.6.9", "mxnet": "1.6.0", "gluoncv": "0.8.0"},
              "host": {"hostname": "jetson-nano"}, "started_at": "2026-11-25T10:00:00Z",
              "finished_at": "2026-11-25T11:23:20Z"}  # fmt: skip
    ap = {name: round(float(v), 4) for name, v in zip(VOC_CLASSES, rng.random(20), strict=True)}
    mean_ap = float(np.mean(list(ap.values())))
    map_json = {"metric": "voc07", "iou_threshold": 0.5, "mAP": mean_ap,
                "mAP_all_classes": mean_ap, "ap_per_class": ap, "images": images,
                "objects": 14976, "difficult": 2424, "detections": images * per_image,
                "weights_untrained": False, "published_mAP": 0.801,
                "accuracy_flag": None}  # fmt: skip
    for name, body in (("spec.json", spec), ("result.json", result), ("map.json", map_json)):
        (run_dir / name).write_text(json.dumps(body, indent=2))
    t = np.arange(samples) * 0.5
    columns = [t] + [rng.uniform(0, 100, samples).round(1) for _ in FIELDS]
    table = np.column_stack(columns)
    header = "t_s," + ",".join(FIELDS)
    np.savetxt(run_dir / "telemetry.csv", table, delimiter=",", fmt="%.3f", header=header,
               comments="")  # fmt: skip
    m = images * per_image
    boxes = np.sort(rng.uniform(0, 500, (m, 4)).astype(np.float32).reshape(m, 2, 2), axis=1)
    np.savez(
        run_dir / "detections.npz", image_ids=np.array(ids),
        image_index=np.repeat(np.arange(images, dtype=np.int64), per_image),
        labels=rng.integers(0, 20, m).astype(np.int64),
        scores=rng.random(m).astype(np.float32),
        boxes=boxes.transpose(0, 2, 1).reshape(m, 4),
    )  # fmt: skip
    return run_dir


def log_once(samples: int, decimated: bool) -> dict:
    """Time log_run_dir of a fresh run dir into a fresh store; check what arrived."""
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="detbench-mlflow-") as tmp:
        root = Path(tmp)
        os.chdir(root)
        run_dir = make_run_dir(root, samples)
        start = time.perf_counter()
        track.ensure_experiment("bench", root / "experiment.json")
        experiment_s = time.perf_counter() - start
        if not decimated:
            track.MAX_SERIES_POINTS = samples
        start = time.perf_counter()
        record = track.log_run_dir(run_dir, root / "experiment.json", run_dir / "mlflow.json")
        seconds = time.perf_counter() - start
        client = MlflowClient(track.tracking_uri())
        run = client.get_run(record["run_id"])
        lengths = {f: len(client.get_metric_history(record["run_id"], f"telemetry/{f}"))
                   for f in FIELDS}  # fmt: skip
        artifacts = sorted(a.path for a in client.list_artifacts(record["run_id"]))
        os.chdir(Path(__file__).resolve().parent)
    expected = samples if not decimated else min(samples, track.MAX_SERIES_POINTS)
    complete = (run.info.status == "FINISHED" and max(lengths.values()) <= expected
                and min(lengths.values()) >= expected * 0.9
                and "mAP" in run.data.metrics
                and len(artifacts) == len(track.RUN_FILES))  # fmt: skip
    return {"seconds": seconds, "experiment_s": experiment_s, "complete": complete,
            "points": sum(lengths.values()), "artifacts": artifacts}  # fmt: skip


def in_fresh_process(samples: int, decimated: bool) -> dict:
    command = [sys.executable, __file__, "--one", "decimated" if decimated else "every_point",
               "--samples", str(samples)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"logging ({'decimated' if decimated else 'every sample'}) failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=5.0)
    parser.add_argument("--one", choices=["decimated", "every_point"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(log_once(args.samples, decimated=args.one == "decimated")))
        return 0
    where = machine()
    ours = [in_fresh_process(args.samples, decimated=True) for _ in range(args.repeats)]
    plain = in_fresh_process(args.samples, decimated=False)
    seconds = statistics.median(r["seconds"] for r in ours)
    ratio = plain["seconds"] / seconds
    for name, runs in (("detbench", ours), ("log_batch only", [plain])):
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        facts = f"series points {runs[0]['points']}, complete {runs[0]['complete']}"
        print(f"{name:>15}: {times} s  ({facts})")
    print(f"log_batch only / detbench: {ratio:.1f}x")
    complete = all(r["complete"] for r in ours + [plain])
    return emit({
        "measure": f"MLflow logging of one voc run dir ({args.samples} telemetry samples x 9 "
        "fields, 4952-image detections) to a fresh SQLite store",
        "target": f"<= {args.target:g} s",
        "measured": f"{seconds:.2f} s (median of {args.repeats}; public API: series min-max "
        f"decimated to {track.MAX_SERIES_POINTS} points each, CSV artifact whole; every sample "
        f"through log_batch: {plain['seconds']:.2f} s, {ratio:.1f}x)",
        "pass": seconds <= args.target and complete,
        "machine": where,
        "seconds": [round(r["seconds"], 3) for r in ours],
        "log_batch_only_s": round(plain["seconds"], 3), "ratio": round(ratio, 2),
        "experiment_create_s": round(ours[0]["experiment_s"], 3),
        "points": ours[0]["points"], "complete": complete, "artifacts": ours[0]["artifacts"],
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
