"""Shared helpers of the end-to-end tests: a copy of the workflow and Snakemake runs in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

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
