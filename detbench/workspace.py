"""A copy of the workflow in a scratch directory, and Snakemake runs in it.

What the end-to-end tests and the workflow benchmarks (``make bench``) drive: the workflow's own
files copied beside a config of their own, so runs never touch this checkout's outputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from detbench.runs import REPO_ROOT

WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "envs", "report", "profiles")


def copy_workflow(workdir: Path, config: dict | None = None, name: str = "test.yaml") -> Path:
    """Copy the workflow into ``workdir`` (created if needed), with ``config`` as ``name``."""
    workdir.mkdir(parents=True, exist_ok=True)
    for entry in WORKFLOW_FILES:
        source = REPO_ROOT / entry
        if source.is_dir():
            shutil.copytree(source, workdir / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, workdir / entry)
    if config is not None:
        (workdir / name).write_text(yaml.safe_dump(config))
    return workdir


def snakemake(
    workdir: Path, *args: str, env: dict | None = None, cores: int = 2
) -> subprocess.CompletedProcess:
    """``snakemake ARGS --cores N`` in ``workdir``; MLflow goes to the copy's own store unless
    ``env`` names a tracking URI."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "snakemake", *args, "--cores", str(cores)]
    return subprocess.run(
        command, cwd=workdir, env={**base, **(env or {})}, capture_output=True, text=True
    )


def summary_rows(workdir: Path, configfile: str) -> list[tuple[str, str, str]]:
    """(rule, output file, plan) of every output of ``all``, from ``snakemake --summary``;
    plan is e.g. ``update pending`` or ``no update``."""
    done = snakemake(workdir, "all", "--summary", "--configfile", configfile)
    if done.returncode != 0:
        raise RuntimeError(f"snakemake --summary failed:\n{done.stderr[-2000:]}")
    rows = [line.split("\t") for line in done.stdout.splitlines()[1:] if "\t" in line]
    return [(row[2], row[0], row[-1]) for row in rows]
