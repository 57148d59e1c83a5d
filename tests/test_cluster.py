"""Workstation jobs on a cluster: evaluate, track, aggregate and plots run unchanged under
Snakemake's ``cluster-generic`` executor plugin, and give what a local run gives.

The device's jobs (``speed``, ``voc``: ``localrules`` in the Snakefile) run once, locally; the
finished workflow is copied; the rest runs locally in one copy and through the executor in the
other, whose submit script starts each job script in the background as a batch system would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import copy_workflow, snakemake
from mlflow.tracking import MlflowClient

from detbench import contract

CONFIG = {
    "name": "cluster",
    "voc": {"synthetic": {"images": 3, "seed": 7}},
    "models": ["ssd_512_mobilenet1.0_voc"],
    "weights": {"source": "untrained", "seed": 0},
    "devices": ["cpu"],
    "speed": {"images": 1, "size": 256, "modes": ["hybrid"], "warmup": 1},
    "voc_run": {"batch": 3, "warmup": 1},
    "telemetry": {"interval_s": 0.05},
}
# A batch system's submit command in small: run the job script in the background, record which
# rule it is, print a job id.
SUBMIT = """#!/bin/bash
jobscript="$1"
sed -n 's/.*"rule": "\\([a-z_]*\\)".*/\\1/p' "$jobscript" | head -n 1 >> "$SUBMITTED"
nohup bash "$jobscript" > "$jobscript.out" 2>&1 &
echo "$!"
"""
DEVICE_FREE = {"evaluate", "mlflow_experiment", "track_speed", "track_voc", "aggregate", "plots",
               "detection_pictures", "backends_table", "modes_table"}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, str]:
    """Two copies of one workflow whose device runs are done: the rest finished locally in the
    first, through cluster-generic in the second (and the second's submitted rules)."""
    root = tmp_path_factory.mktemp("cluster")
    local = copy_workflow(root / "local", CONFIG)
    done = snakemake(local, "all", "--until", "speed", "voc", "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    assert not list(local.glob("results/cluster/**/map.json"))
    cluster = root / "cluster"
    shutil.copytree(local, cluster, symlinks=True)
    done = snakemake(local, "all", "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    submit = root / "submit.sh"
    submit.write_text(SUBMIT)
    submitted = root / "submitted.txt"
    done = snakemake(
        cluster, "all", "--configfile", "test.yaml", "--executor", "cluster-generic",
        "--cluster-generic-submit-cmd", f"SUBMITTED={submitted} bash {submit}", "--jobs", "4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return local, cluster, submitted.read_text()


def test_only_device_free_jobs_are_submitted(runs):
    _, _, submitted = runs
    rules = submitted.split()
    assert set(rules) == DEVICE_FREE
    assert rules.count("plots") > 1 and rules.count("evaluate") == 1


def test_cluster_results_equal_a_local_run(runs):
    local, cluster, _ = runs
    maps = sorted(p.relative_to(local) for p in local.glob("results/cluster/**/map.json"))
    assert maps
    for path in maps:
        assert json.loads((cluster / path).read_text()) == json.loads((local / path).read_text())
    summary = "reports/cluster/summary.csv"
    assert (cluster / summary).read_bytes() == (local / summary).read_bytes()
    figures = sorted(p.relative_to(local) for p in local.glob("reports/cluster/figures/*.png"))
    for path in figures:
        assert (cluster / path).read_bytes() == (local / path).read_bytes(), path
    records = sorted(p.relative_to(local) for p in local.glob(f"results/**/{contract.MLFLOW}"))
    assert len(records) == 2
    for path in records:
        ours, theirs = (json.loads((w / path).read_text()) for w in (local, cluster))
        stores = [MlflowClient(f"sqlite:///{w}/mlruns/mlflow.db") for w in (local, cluster)]
        mine, other = (s.get_run(r["run_id"]) for s, r in zip(stores, (ours, theirs), strict=True))
        assert mine.data.metrics == other.data.metrics and mine.data.params == other.data.params
        del ours["run_id"], theirs["run_id"]
        assert ours == theirs
