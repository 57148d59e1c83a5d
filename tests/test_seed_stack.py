"""The seed study's device stack for real: Python 3.6 + MXNet 1.6.0 + GluonCV 0.8.0.

``make test`` builds ``.venv36`` from requirements-seed36.txt; the workflow then drives the device
runner under that interpreter (``runner.python``) and the Python 3.11 orchestrator evaluates,
tracks and aggregates what it wrote, unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, copy_workflow, snakemake

SEED_PYTHON = Path(os.environ.get("DETBENCH_SEED_PYTHON", REPO / ".venv36/bin/python"))
MODEL = "yolo3_mobilenet1.0_voc"


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory) -> Path:
    assert SEED_PYTHON.exists(), f"{SEED_PYTHON} missing: run `make test` (it builds .venv36)"
    config = {
        "name": "seed",
        "voc": {"synthetic": {"images": 4, "seed": 1}},
        "models": [MODEL],
        "weights": {"source": "untrained", "seed": 0},
        "devices": ["cpu"],
        "speed": {"images": 2, "size": 320, "modes": ["hybrid"], "warmup": 1},
        "voc_run": {"batch": 2, "warmup": 1},
        "telemetry": {"interval_s": 0.1},
        "runner": {"python": str(SEED_PYTHON)},
    }
    workdir = copy_workflow(tmp_path_factory.mktemp("seed"), config)
    done = snakemake(workdir, "all", "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_runner_ran_under_the_seed_stack(seed_run):
    for run in (f"speed/{MODEL}/mxnet/cpu-hybrid", f"voc/{MODEL}/mxnet/cpu"):
        result = json.loads((seed_run / f"results/seed/{run}/result.json").read_text())
        assert result["status"] == "ok", result["error"]
        assert result["versions"]["python"].startswith("3.6.")
        assert result["versions"]["mxnet"] == "1.6.0"
        assert result["versions"]["gluoncv"] == "0.8.0"


def test_orchestrator_reads_seed_results_unchanged(seed_run):
    summary = pd.read_csv(seed_run / "reports/seed/summary.csv")
    assert list(summary.status) == ["ok", "ok"]
    assert summary.images_per_s.gt(0).all()
    voc_map = json.loads((seed_run / f"results/seed/voc/{MODEL}/mxnet/cpu/map.json").read_text())
    assert voc_map["images"] == 4 and 0 <= voc_map["mAP"] <= 1
