"""No-op ``snakemake -n`` on config/config.yaml with a local VOC root: <= 3 s and 0 jobs (issue 9).

"No-op" means every output is up to date, so the study is first run to completion in a
temporary copy of the workflow: ``config/config.yaml`` (its four models, cpu + gpu0, both modes)
plus a small extra config file that points ``voc.root`` at a synthetic VOCdevkit made here,
switches to untrained weights (nothing is downloaded) and shrinks the image counts. The DAG has
the full study's shape; only the data is small. Then ``snakemake all -n`` is timed (median of
``--repeats``, each a new process, as a user types it) and must report nothing to do.

Side by side: the same dry run before the study ran (every job pending) and its job count.
The JSON last line is for ``run_all.py``; exits 1 when the target is missed.

    python benchmarks/noop_dryrun.py [--images 2] [--repeats 3] [--target 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from run_all import emit, machine, must, snakemake

from detbench.data.synthetic import make_synthetic_voc
from detbench.workspace import copy_workflow

NOTHING = "Nothing to be done"


def job_count(output: str) -> int:
    """Jobs a dry run lists (its "Job stats" total), 0 when there is nothing to do."""
    match = re.search(r"^total\s+(\d+)\s*$", output, re.MULTILINE)
    return int(match.group(1)) if match else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2, help="synthetic VOC images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=3.0)
    args = parser.parse_args(argv)
    where = machine()
    with tempfile.TemporaryDirectory(prefix="detbench-noop-") as tmp:
        root = Path(tmp)
        make_synthetic_voc(root / "voc" / "VOCdevkit", args.images, seed=0)
        workdir = copy_workflow(root / "wf")
        local = {
            "voc": {"root": str(root / "voc" / "VOCdevkit")},
            "weights": {"source": "untrained"},
            "speed": {"images": args.images, "size": 128, "warmup": 1},
            "voc_run": {"batch": args.images, "warmup": 1},
            "telemetry": {"interval_s": 0.5},
        }
        (workdir / "local.yaml").write_text(yaml.safe_dump(local))
        configs = ["--configfile", "config/config.yaml", "local.yaml"]

        plan, plan_s = snakemake(workdir, "all", "-n", *configs)
        must(plan, "dry run before the study")
        pending = job_count(plan.stdout + plan.stderr)
        print(f"dry run, every job pending: {plan_s:.2f} s, {pending} jobs", flush=True)
        study, study_s = snakemake(workdir, "all", *configs)
        must(study, "the study on the synthetic root")
        print(f"study (4 models, untrained, {args.images} images): {study_s:.0f} s", flush=True)

        noop = []
        for _ in range(args.repeats):
            dry, seconds = snakemake(workdir, "all", "-n", *configs)
            must(dry, "no-op dry run")
            text = dry.stdout + dry.stderr
            noop.append({"seconds": seconds, "jobs": job_count(text), "nothing": NOTHING in text})
            print(f"no-op dry run: {seconds:.2f} s, {noop[-1]['jobs']} jobs", flush=True)
    seconds = statistics.median(r["seconds"] for r in noop)
    jobs = max(r["jobs"] for r in noop)
    nothing = all(r["nothing"] for r in noop)
    return emit({
        "measure": "no-op `snakemake all -n` on config/config.yaml (4 models x cpu/gpu0, local "
        "VOC root) after a completed run",
        "target": f"<= {args.target:g} s and 0 jobs",
        "measured": f"{seconds:.2f} s, {jobs} jobs (median of {args.repeats}; the same dry run "
        f"before the run, {pending} jobs pending: {plan_s:.2f} s)",
        "pass": seconds <= args.target and jobs == 0 and nothing,
        "machine": where,
        "noop_s": [round(r["seconds"], 3) for r in noop], "nothing_to_be_done": nothing,
        "pending_dry_run_s": round(plan_s, 3), "pending_jobs": pending,
        "study_s": round(study_s, 1), "images": args.images,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
