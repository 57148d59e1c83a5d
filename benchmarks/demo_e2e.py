"""The offline demo end to end on a fresh copy, warm venv: <= 5 minutes (issue 9).

Copies the workflow's files into a temporary directory (no data, weights, results or MLflow
store carried over) and times ``snakemake all --cores 2 --configfile config/demo.yaml``, exactly
what ``make demo`` runs, then checks what it made (every run in summary.csv, every figure) and
that a second ``snakemake -n`` has nothing to do. Side by side: the time against the target.
The JSON last line is for ``run_all.py``; exits 1 when the target is missed or the demo failed.

    python benchmarks/demo_e2e.py [--target 300] [--cores 2]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
from pathlib import Path

from run_all import emit, machine, snakemake

from detbench.workspace import copy_workflow


def mode_spread(rows: list[dict]) -> dict:
    """Per speed model and device: each mode's total wall time over its repeats (min, median,
    max, cv) and whether imperative and hybrid are apart (their min-max ranges do not overlap)."""
    out = {}
    for row in rows:
        if row["kind"] != "speed" or row["status"] != "ok":
            continue
        figures = [float(row[f"total_wall_s_{s}"] or "nan") for s in ("min", "median", "max", "cv")]
        key = f"{row['model']} {row['device']}"
        mode = row["mode"] if row["backend"] == "mxnet" else f"{row['backend']} {row['mode']}"
        out.setdefault(key, {})[mode] = figures
    for modes in out.values():
        if {"imperative", "hybrid"} <= set(modes):
            (lo_i, _, hi_i, _), (lo_h, _, hi_h, _) = modes["imperative"], modes["hybrid"]
            modes["apart"] = hi_h < lo_i or hi_i < lo_h
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, default=300.0, help="seconds")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    where = machine()
    with tempfile.TemporaryDirectory(prefix="detbench-demo-") as tmp:
        workdir = copy_workflow(Path(tmp) / "wf")
        demo, seconds = snakemake(workdir, "all", "--configfile", "config/demo.yaml",
                                  cores=args.cores)  # fmt: skip
        jobs = len(re.findall(r"Finished jobid: \d+ \(Rule: (?!all\))", demo.stderr))
        summary = workdir / "reports/demo/summary.csv"
        rows = list(csv.DictReader(summary.open())) if summary.exists() else []
        figures = sorted(p.name for p in (workdir / "reports/demo/figures").glob("*.png"))
        table = workdir / "reports/demo/backends.csv"
        backends = list(csv.DictReader(table.open())) if table.exists() else []
        again, again_s = snakemake(workdir, "all", "-n", "--configfile", "config/demo.yaml")
        nothing = "Nothing to be done" in again.stdout + again.stderr
    if demo.returncode != 0:
        sys.stderr.write(demo.stderr[-6000:])
    statuses = sorted({(r["device"], r["status"]) for r in rows})
    print(f"demo: {seconds:.0f} s, exit {demo.returncode}, {jobs} jobs, {len(rows)} runs "
          f"{statuses}, {len(figures)} figures; rerun -n: {again_s:.1f} s, nothing to do: "
          f"{nothing}")  # fmt: skip
    picked = ("status", "mAP", "latency_p50_ms", "fps", "accuracy_gate", "error")
    by_backend = {f"{r['model']} {r['backend']}": {k: r[k] for k in picked} for r in backends}
    for name, row in by_backend.items():
        print(f"backends.csv {name}: {row}")
    real = [r for r in backends if r["model"] == "mobilenetv2_yolov3_nano_voc" and r["mAP"]]
    real_maps = ", ".join(f"{r['backend']} {float(r['mAP']):.4f}" for r in real)
    spread = mode_spread(rows)
    for run, modes in spread.items():
        print(f"{run}: total wall s (min, median, max, cv) {modes}")
    ok = demo.returncode == 0 and seconds <= args.target and rows and figures and nothing
    return emit({
        "measure": f"`make demo` end to end (snakemake all --cores {args.cores} --configfile "
        "config/demo.yaml) on a fresh copy, warm venv",
        "target": f"<= {args.target:g} s",
        "measured": f"{seconds:.0f} s ({seconds / args.target:.2f} of the target; {jobs} jobs, "
        f"{len(rows)} runs, {len(figures)} figures; then `-n`: nothing to do in {again_s:.1f} s); "
        f"the trained Nano's mAP (area, 24 photos) per backend: {real_maps}",
        "pass": bool(ok),
        "machine": where,
        "seconds": round(seconds, 1), "exit_code": demo.returncode, "jobs": jobs,
        "runs": len(rows), "figures": figures, "rerun_dry_run_s": round(again_s, 2),
        "nothing_to_be_done": nothing, "speed_total_wall_s_min_median_max_cv": spread,
        "backends_csv": by_backend,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
