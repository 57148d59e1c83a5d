"""Shared helpers of the end-to-end tests: a copy of the workflow and Snakemake runs in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from detbench.evaluate import Detections

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "envs", "report")


def copy_workflow(workdir: Path, config: dict, name: str = "test.yaml") -> Path:
    """Copy the workflow into ``workdir`` with ``config`` written as ``name``."""
    for entry in WORKFLOW_FILES:
        source = REPO / entry
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, workdir / entry)
    (workdir / name).write_text(yaml.safe_dump(config))
    return workdir


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` on 2 cores (MLflow: the local store unless ``env`` says)."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "snakemake", *args, "--cores", "2"]
    return subprocess.run(
        command, cwd=workdir, env={**base, **(env or {})}, capture_output=True, text=True
    )


def detections(ids: list[str], rows: list[tuple]) -> Detections:
    """Detections from (image_row, label, score, (x1, y1, x2, y2)) tuples, in file order."""
    return Detections(
        image_ids=np.array(ids, dtype=str),
        image_index=np.array([r[0] for r in rows], dtype=np.int64),
        labels=np.array([r[1] for r in rows], dtype=np.int64),
        scores=np.array([r[2] for r in rows], dtype=np.float32),
        boxes=np.array([r[3] for r in rows], dtype=np.float32).reshape(-1, 4),
    )
