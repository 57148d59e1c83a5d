"""The team's tracking server for real: a throwaway PostgreSQL cluster, ``detbench server`` on it,
and track jobs (``detbench track``, one process each) logging to it: 50 at once, a server killed
mid-way and restarted, no local lock, the report rebuilt from MLflow, and the UI in Chromium."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import copy_workflow, snakemake
from mlflow.tracking import MlflowClient
from PIL import Image
from test_html_report import CHROMIUM_FLAGS, text_of, visible_dom

from detbench import contract, server, track
from detbench.report.aggregate import COLUMNS, read_summary
from detbench.report.captions import FIGURES

SAMPLES = 2000  # telemetry samples per run: one series of 2000 points per sensor, logged whole
SENSORS = ("cpu_percent", "ram_used_mb")
HEADER = "t_s," + ",".join(track.TELEMETRY_FIELDS) + "\n"
JOBS = 50


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster of its own (Debian's ``postgresql``, installed with apt-get when
    missing: set-up, never a skip), stopped and removed at the end."""
    if server.pg_bindir() is None:
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "postgresql"]
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run([*sudo, "apt-get", "update"], env=env, capture_output=True)
            done = subprocess.run(install, env=env, capture_output=True, text=True)
        assert server.pg_bindir(), f"apt-get could not install postgresql:\n{done.stderr}"
    with server.TempPostgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def tracking(postgres, tmp_path_factory):
    """``detbench server`` on the cluster, artifacts in a temporary directory."""
    root = tmp_path_factory.mktemp("tracking")
    with server.MlflowServer(postgres.url, root / "artifacts", log=root / "server.log") as running:
        yield running


def make_run(root: Path, device: str, model: str = "ssd_512_mobilenet1.0_voc") -> Path:
    """A finished voc run directory on ``device`` with SAMPLES telemetry rows of SENSORS."""
    run_dir = root / f"results/fleet/voc/{model}/mxnet/{device}"
    run_dir.mkdir(parents=True)
    rng = np.random.default_rng(len(device) + sum(map(ord, device)))
    weights = {"path": "w.params", "source": "untrained", "untrained": True, "sha256": "ab" * 32}
    dataset = {"name": "fleet", "fingerprint": "f00d", "split": "test"}
    spec = {"batch_size": 8, "input_shape": None, "image_ids": ["000001", "000002"],
            "warmup": 1, "repeats": 1, "telemetry_interval_s": 0.5, "weights": weights,
            "dataset": dataset}  # fmt: skip
    timings = {"total_wall_s": float(rng.uniform(1, 9)), "model_s": 1.5, "images_per_s": 1.0,
               "latency_ms": {"p50": 700.0, "p90": 800.0}}  # fmt: skip
    result = {
        "status": "ok", "error": None, "kind": "voc", "config_name": "fleet", "model": model,
        "device": device, "mode": "hybrid", "weights": weights, "dataset": dataset,
        "threads": "2", "timings": timings, "started_at": "2026-11-25T10:00:00Z",
        "telemetry": {"backend": "psutil", "samples": SAMPLES, "ram_used_mb_max": 900.0},
        "host": {"hostname": f"host-{device}", "cpu_model": "Cortex-A57", "jetson": None},
        "versions": {"python": "3.6.9", "mxnet": "1.6.0", "gluoncv": "0.8.0"},
    }  # fmt: skip
    (run_dir / contract.SPEC).write_text(json.dumps(spec))
    (run_dir / contract.RESULT).write_text(json.dumps(result))
    values = {name: rng.uniform(0, 100, SAMPLES).round(2) for name in SENSORS}
    rows = "".join(
        f"{i * 0.5}," + ",".join(
            str(values[f][i]) if f in values else "" for f in track.TELEMETRY_FIELDS
        ) + "\n"
        for i in range(SAMPLES)
    )  # fmt: skip
    (run_dir / contract.TELEMETRY).write_text(HEADER + rows)
    ap = {"aeroplane": float(rng.uniform()), "bicycle": 0.25}
    (run_dir / contract.MAP).write_text(json.dumps({"mAP": 0.4, "ap_per_class": ap}))
    return run_dir


def make_runs(root: Path, count: int) -> list[Path]:
    return [make_run(root, f"nano{i:02d}") for i in range(count)]


def experiment(tracking, root: Path, name: str) -> Path:
    out = root / "mlflow_experiment.json"
    os.environ["MLFLOW_TRACKING_URI"] = tracking.uri
    try:
        track.ensure_experiment(name, out)
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    return out


def track_job(run_dir: Path, experiment_json: Path, uri: str, cwd: Path, **env):
    """One track job, ``detbench track RUN_DIR``, in a process of its own."""
    command = [sys.executable, "-m", "detbench.cli", "track", str(run_dir),
               "--experiment", str(experiment_json)]  # fmt: skip
    return subprocess.Popen(
        command, cwd=cwd, env={**os.environ, "MLFLOW_TRACKING_URI": uri, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def expected_metrics(run_dir: Path) -> set[str]:
    result = json.loads((run_dir / contract.RESULT).read_text())
    scores = json.loads((run_dir / contract.MAP).read_text())
    return set(track.run_metrics(result, scores)) | {f"telemetry/{name}" for name in SENSORS}


def assert_complete(client: MlflowClient, run_id: str, run_dir: Path) -> None:
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED", run_dir
    assert set(run.data.metrics) == expected_metrics(run_dir), run_dir
    for name in SENSORS:
        history = client.get_metric_history(run_id, f"telemetry/{name}")
        assert len(history) == SAMPLES, (run_dir, name, len(history))
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert artifacts == {contract.RESULT, contract.SPEC, contract.TELEMETRY, contract.MAP}
    assert run.data.tags["host"] == f"host-{run_dir.name}" and run.data.tags["board"]


def active_runs(client: MlflowClient, experiment_id: str) -> list:
    return client.search_runs([experiment_id], max_results=1000)


def test_fifty_track_jobs_at_once_all_arrive_complete_without_a_lock(tracking, tmp_path):
    run_dirs = make_runs(tmp_path, JOBS)
    record = experiment(tracking, tmp_path, "fifty")
    cwd = tmp_path / "jobs"
    (cwd / track.DEFAULT_STORE).mkdir(parents=True)
    lock = cwd / track.DEFAULT_STORE / ".detbench.lock"
    with open(lock, "w") as held:  # what SQLite's writers would wait on: held throughout
        fcntl.flock(held, fcntl.LOCK_EX)
        jobs = [track_job(run_dir, record, tracking.uri, cwd) for run_dir in run_dirs]
        outputs = [job.communicate(timeout=900) for job in jobs]
    for job, (_, err) in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, err[-3000:]
    assert {p.name for p in cwd.rglob("*")} == {track.DEFAULT_STORE, ".detbench.lock"}
    client = MlflowClient(tracking.uri)
    experiment_id = json.loads(record.read_text())["experiment_id"]
    runs = active_runs(client, experiment_id)
    assert len(runs) == JOBS
    ids = {json.loads((d / contract.MLFLOW).read_text())["run_id"]: d for d in run_dirs}
    assert set(ids) == {run.info.run_id for run in runs}
    for run_id, run_dir in ids.items():
        assert_complete(client, run_id, run_dir)


def test_server_killed_midway_then_a_rerun_logs_exactly_the_missing_runs(postgres, tmp_path):
    count = 12
    run_dirs = make_runs(tmp_path, count)
    with server.MlflowServer(postgres.url, tmp_path / "artifacts") as tracking:
        record = experiment(tracking, tmp_path, "killed")
        fast = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
        jobs = [track_job(d, record, tracking.uri, tmp_path, **fast) for d in run_dirs]
        deadline = time.monotonic() + 600
        while sum((d / contract.MLFLOW).exists() for d in run_dirs) < 3:
            assert time.monotonic() < deadline, "no track job finished in 600 s"
            time.sleep(0.05)
        tracking.stop(kill=True)  # the server dies under the other jobs
        outputs = [job.communicate(timeout=300) for job in jobs]
        logged = {d for d in run_dirs if (d / contract.MLFLOW).exists()}
        failed = [(d, err) for d, job, (_, err) in zip(run_dirs, jobs, outputs, strict=True)
                  if job.returncode != 0]  # fmt: skip
        assert failed, "every job finished before the server was killed"
        for run_dir, err in failed:
            assert run_dir not in logged
            assert f"MLflow at {tracking.uri}" in err and "files are kept" in err, err[-2000:]
            assert {p.name for p in run_dir.iterdir()} == {
                contract.RESULT,
                contract.SPEC,
                contract.TELEMETRY,
                contract.MAP,
            }
        assert len(logged) + len(failed) == count
        first_ids = {d: json.loads((d / contract.MLFLOW).read_text())["run_id"] for d in logged}

        tracking.start()  # the same server, back on its port
        client = MlflowClient(tracking.uri)
        experiment_id = json.loads(record.read_text())["experiment_id"]
        before = active_runs(client, experiment_id)
        half_logged = [r for r in before if r.info.status == "RUNNING"]
        missing = [d for d in run_dirs if d not in logged]  # what snakemake reruns
        rerun = [track_job(d, record, tracking.uri, tmp_path) for d in missing]
        for job in rerun:
            _, err = job.communicate(timeout=600)
            assert job.returncode == 0, err[-3000:]
        runs = active_runs(client, experiment_id)
        ids = {d: json.loads((d / contract.MLFLOW).read_text())["run_id"] for d in run_dirs}
        assert {d: ids[d] for d in logged} == first_ids  # the logged runs were left alone
        assert sorted(r.info.run_id for r in runs) == sorted(ids.values())  # one run per dir
        for run_dir in run_dirs:
            assert_complete(client, ids[run_dir], run_dir)
        assert half_logged, "the kill left no run half-logged: nothing checked the deletion"
        for run in half_logged:  # what the dead server left half-logged is deleted
            assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
        print(f"killed: {len(logged)} logged, {len(failed)} failed, "
              f"{len(half_logged)} half-logged and deleted on the rerun")  # fmt: skip


def test_store_lock_is_a_no_op_for_a_server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with track.store_lock("http://127.0.0.1:5000"), track.store_lock("http://127.0.0.1:5000"):
        assert list(tmp_path.iterdir()) == []


SMALL = {
    "name": "fleet",
    "voc": {"synthetic": {"images": 3, "seed": 4}},
    "models": ["ssd_512_mobilenet1.0_voc"],
    "weights": {"source": "untrained", "seed": 0},
    "devices": ["cpu", "gpu0"],
    "speed": {"images": 1, "size": 256, "modes": ["hybrid"], "warmup": 1},
    "voc_run": {"batch": 3, "warmup": 1},
    "telemetry": {"interval_s": 0.05},
}


@pytest.fixture(scope="module")
def workflow_on_server(tracking, tmp_path_factory) -> Path:
    """The small workflow (CPU runs and failed gpu0 runs) logging to the PostgreSQL server."""
    workdir = copy_workflow(tmp_path_factory.mktemp("fleet"), SMALL)
    done = snakemake(workdir, "all", "--configfile", "test.yaml",
                     env={"MLFLOW_TRACKING_URI": tracking.uri})  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def report_from_mlflow(uri: str, out: Path, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "detbench.cli", "report", "--from-mlflow", "detbench-fleet",
               "--out", str(out)]  # fmt: skip
    return subprocess.run(command, cwd=cwd, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True)  # fmt: skip


def test_report_from_mlflow_equals_the_report_from_the_run_dirs(workflow_on_server, tracking):
    workdir = workflow_on_server
    done = report_from_mlflow(tracking.uri, Path("elsewhere"), workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    local, remote = workdir / "reports/fleet", workdir / "elsewhere"
    ours, theirs = read_summary(local / "summary.csv"), read_summary(remote / "summary.csv")
    assert len(ours) == 4 and set(ours["status"]) == {"ok", "failed"}
    assert theirs["run_dir"].str.startswith("elsewhere/runs/").all()
    columns = [c for c in COLUMNS if c != "run_dir"]
    pd.testing.assert_frame_equal(ours[columns], theirs[columns])
    assert (local / "modes.csv").read_text() == (remote / "modes.csv").read_text()
    for key in FIGURES:
        mine = (local / "figures" / f"{key}.png").read_bytes()
        assert mine == (remote / "figures" / f"{key}.png").read_bytes(), key


def test_report_from_mlflow_takes_in_a_device_driven_from_another_workstation(
    workflow_on_server, tracking, tmp_path
):
    workdir = workflow_on_server
    other = tmp_path / "other-workstation"
    source = workdir / "results/fleet/voc/ssd_512_mobilenet1.0_voc/mxnet/cpu"
    run_dir = other / "results/fleet/voc/ssd_512_mobilenet1.0_voc/mxnet/nano"
    shutil.copytree(source, run_dir, ignore=shutil.ignore_patterns(contract.MLFLOW))
    result = json.loads((run_dir / contract.RESULT).read_text())
    result.update(device="nano", context="gpu0")
    result["host"].update(hostname="jetson-nano", jetson={"board": "Jetson Nano"})
    (run_dir / contract.RESULT).write_text(json.dumps(result))
    record = workdir / "results/fleet/mlflow_experiment.json"
    job = track_job(run_dir, record, tracking.uri, other)
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-3000:]
    done = report_from_mlflow(tracking.uri, tmp_path / "merged", workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    merged = read_summary(tmp_path / "merged/summary.csv")
    ours = read_summary(workdir / "reports/fleet/summary.csv")
    assert len(merged) == len(ours) + 1
    nano = merged[merged["device"] == "nano"].iloc[0]
    assert nano["host"] == "jetson-nano" and nano["status"] == "ok"
    run = MlflowClient(tracking.uri).get_run(json.loads((run_dir / "mlflow.json").read_text())[
        "run_id"])  # fmt: skip
    assert run.data.tags["board"] == "Jetson Nano" and run.data.tags["device"] == "nano"


def test_ui_opens_the_experiment_on_its_runs_table(workflow_on_server, tracking, chromium,
                                                    tmp_path):  # fmt: skip
    record = json.loads((workflow_on_server / "results/fleet/mlflow_experiment.json").read_text())
    url = record["ui"]
    assert url == track.ui_url(tracking.uri, record["experiment_id"])
    client = MlflowClient(tracking.uri)
    experiment = client.get_experiment(record["experiment_id"])
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    names = {r.data.tags["mlflow.runName"] for r in active_runs(client, record["experiment_id"])}
    shot = tmp_path / "ui.png"
    for action in ("--dump-dom", f"--screenshot={shot}"):  # a new user: a fresh profile each
        flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")]
        command = [chromium, *flags, "--virtual-time-budget=30000",
                   f"--user-data-dir={tmp_path / action[2:6]}", action, url]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        if action == "--dump-dom":
            page = text_of(visible_dom(done.stdout))
    assert re.search(r"detbench-fleet Runs .* matching runs", page), page[:2000]
    for name in names:
        assert name in page
    assert "Evaluation runs" not in page and "Token Usage" not in page
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (1000, 1400) and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
    status = pixels[250:450, 480:530]  # the table's status column: failed red, finished green
    red, green, blue = status[..., 0], status[..., 1], status[..., 2]
    assert ((red > 170) & (green < 100) & (blue < 100)).sum() > 20  # the failed gpu0 runs
    assert ((green > 110) & (red < 100) & (blue < 130)).sum() > 20  # the finished cpu runs
