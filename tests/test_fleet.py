"""A fleet for real: three devices over SSH beside the local ``cpu``, driven by one Snakemake run.

The three SSH devices are three names for one loopback OpenSSH server (``detbench.remote.loopback``)
whose Python is the seed stack (``.venv36``). Which jobs ran when is read from each run's
``result.json`` (``started_unix_s`` / ``finished_unix_s``, written by the runner); one machine
means one clock, so the devices' intervals compare directly.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
from pathlib import Path

import pytest
from helpers import REPO, copy_workflow, snakemake

from detbench import plan
from detbench.remote.loopback import LoopbackSSHD

SEED_PYTHON = Path(os.environ.get("DETBENCH_SEED_PYTHON", REPO / ".venv36/bin/python"))
FLEET = ("fleet_a", "fleet_b", "fleet_c")


@pytest.fixture(scope="module")
def fleet_runs(tmp_path_factory) -> list[dict]:
    """Every run's result.json after ``snakemake --cores 2`` over cpu and the three devices."""
    assert SEED_PYTHON.exists(), f"{SEED_PYTHON} missing: run `make test` (it builds .venv36)"
    base = tmp_path_factory.mktemp("fleet")
    with LoopbackSSHD(base / "sshd") as server:
        config = {
            "name": "fleet",
            "voc": {"synthetic": {"images": 2, "seed": 2}},
            "models": ["ssd_512_mobilenet1.0_voc"],
            "weights": {"source": "untrained", "seed": 0},
            "devices": ["cpu", *(server.device(name, SEED_PYTHON) for name in FLEET)],
            "speed": {"images": 2, "size": 128, "modes": ["hybrid"], "warmup": 1},
            "voc_run": {"batch": 2, "warmup": 1},
            "telemetry": {"interval_s": 0.2},
            "runner": {"threads": 1},
            "ssh": {"cache": str(base / "device-cache")},
        }
        workdir = copy_workflow(base / "wf", config)
        targets = [f"{run}/result.json" for run in plan.run_dirs(config)]
        done = snakemake(workdir, *targets, "--configfile", "test.yaml", cores=2)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((workdir / path).read_text()) for path in targets]


def overlap(a: dict, b: dict) -> bool:
    return a["started_unix_s"] < b["finished_unix_s"] and b["started_unix_s"] < a["finished_unix_s"]


def test_fleet_runs_devices_in_parallel_one_job_each_and_local_runs_alone(fleet_runs):
    assert sorted(r["device"] for r in fleet_runs) == sorted(["cpu", *FLEET] * 2)
    assert all(r["status"] == "ok" for r in fleet_runs), [r["error"] for r in fleet_runs]
    pairs = list(itertools.combinations(fleet_runs, 2))
    same = [(a, b) for a, b in pairs if a["device"] == b["device"]]
    assert len(same) == 4 and not any(overlap(a, b) for a, b in same), "a device ran two jobs"
    local = [(a, b) for a, b in pairs if "cpu" in (a["device"], b["device"])]
    assert not any(overlap(a, b) for a, b in local), "a local run had company"
    across = [(a, b) for a, b in pairs if a["device"] != b["device"] and (a, b) not in local]
    assert any(overlap(a, b) for a, b in across), "the SSH devices ran one by one"


def test_result_timestamps_agree_to_the_second(fleet_runs):
    for result in fleet_runs:
        for event in ("started", "finished"):
            at = datetime.datetime.fromisoformat(result[f"{event}_at"].replace("Z", "+00:00"))
            assert at.timestamp() <= result[f"{event}_unix_s"] < at.timestamp() + 1
        assert result["started_unix_s"] <= result["finished_unix_s"]
