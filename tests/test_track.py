"""MLflow tracking: the schema of a logged run, superseding, a real tracking server, and a
server that is down."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import copy_workflow, snakemake
from mlflow.tracking import MlflowClient

from detbench import track

TELEMETRY = "t_s,cpu_percent,ram_used_mb,swap_used_mb,gpu_util_percent,gpu_temp_c,cpu_temp_c,gpu_mem_used_mb,power_w\n"  # noqa: E501


def make_run_dir(root: Path, status: str = "ok", samples: int = 5) -> Path:
    run_dir = root / "results/t/voc/ssd_512_mobilenet1.0_voc/mxnet/cpu"
    run_dir.mkdir(parents=True)
    weights = {"path": "w.params", "source": "untrained", "untrained": True, "sha256": "ab" * 32}
    spec = {
        "batch_size": 8, "input_shape": None, "image_ids": ["000001", "000002"], "warmup": 1,
        "repeats": 1, "telemetry_interval_s": 0.5, "weights": weights,
        "dataset": {"name": "t", "fingerprint": "f00d", "split": "test"},
    }  # fmt: skip
    timings = {"total_wall_s": 2.0, "model_s": 1.5, "images_per_s": 1.0,
               "latency_ms": {"p50": 700.0, "p90": 800.0}}  # fmt: skip
    result = {
        "status": status, "error": None if status == "ok" else "MXNetError: out of memory",
        "kind": "voc", "config_name": "t", "model": "ssd_512_mobilenet1.0_voc", "device": "cpu",
        "mode": "hybrid", "weights": weights, "dataset": spec["dataset"], "threads": "2",
        "timings": timings if status == "ok" else None, "started_at": "2026-11-25T10:00:00Z",
        "telemetry": {"backend": "psutil", "ram_used_mb_max": 900.0, "gpu_temp_c_delta": None},
        "host": {"hostname": "bench-host"}, "versions": {"mxnet": "1.9.1"},
    }  # fmt: skip
    (run_dir / "spec.json").write_text(json.dumps(spec))
    (run_dir / "result.json").write_text(json.dumps(result))
    rows = "".join(f"{i * 0.5},{10 + i},{800 + i},0,,,,,\n" for i in range(samples))
    (run_dir / "telemetry.csv").write_text(TELEMETRY + rows)
    ap = {"aeroplane": 0.5, "bicycle": None}
    (run_dir / "map.json").write_text(json.dumps({"mAP": 0.5, "ap_per_class": ap}))
    return run_dir


@pytest.fixture
def local_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the default store's path, made absolute: MLflow caches one store per URI in a process
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/{track.DEFAULT_STORE}/mlflow.db"
    )
    track.ensure_experiment("t", tmp_path / "experiment.json")
    return tmp_path


def test_logged_run_has_tags_params_metrics_series_and_files(local_store):
    run_dir = make_run_dir(local_store, samples=1800)  # > one log_batch of 1000 metrics
    record = track.log_run_dir(run_dir, local_store / "experiment.json", run_dir / "mlflow.json")
    client = MlflowClient(track.tracking_uri())
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["weights"] == "untrained" and tags["untrained"] == "true"
    assert tags["kind"] == "voc" and tags["host"] == "bench-host"
    assert tags["dataset_fingerprint"] == "f00d" and tags["superseded"] == "false"
    assert run.data.params["batch_size"] == "8" and run.data.params["input_shape"] == "eval"
    assert run.data.metrics["mAP"] == 0.5 and run.data.metrics["AP_aeroplane"] == 0.5
    assert "AP_bicycle" not in run.data.metrics
    assert run.data.metrics["latency_p50_ms"] == 700.0
    history = client.get_metric_history(record["run_id"], "telemetry/ram_used_mb")
    assert [m.value for m in history[:3]] == [800, 801, 802] and len(history) == 1800
    assert history[1].timestamp - history[0].timestamp == 500
    assert client.get_metric_history(record["run_id"], "telemetry/gpu_temp_c") == []
    names = {a.path for a in client.list_artifacts(record["run_id"])}
    assert names == {"result.json", "spec.json", "telemetry.csv", "map.json"}
    assert json.loads((run_dir / "mlflow.json").read_text())["run_id"] == record["run_id"]


def test_failed_result_logs_a_failed_run_with_its_error(local_store):
    run_dir = make_run_dir(local_store, status="failed")
    record = track.log_run_dir(run_dir, local_store / "experiment.json", run_dir / "mlflow.json")
    run = MlflowClient(track.tracking_uri()).get_run(record["run_id"])
    assert run.info.status == "FAILED" and "out of memory" in run.data.tags["error"]


def test_a_new_result_supersedes_the_previous_run(local_store):
    run_dir = make_run_dir(local_store)
    first = track.log_run_dir(run_dir, local_store / "experiment.json", run_dir / "mlflow.json")
    result = json.loads((run_dir / "result.json").read_text())
    result["started_at"] = "2026-11-26T09:00:00Z"  # benchmarked again
    (run_dir / "result.json").write_text(json.dumps(result))
    second = track.log_run_dir(run_dir, local_store / "experiment.json", run_dir / "mlflow.json")
    client = MlflowClient(track.tracking_uri())
    old, new = client.get_run(first["run_id"]), client.get_run(second["run_id"])
    assert old.data.tags["superseded"] == "true"
    assert old.data.tags["superseded_by"] == second["run_id"]
    assert new.data.tags["superseded"] == "false" and second["superseded"] == [first["run_id"]]


def test_relogging_the_same_result_reuses_its_run_and_deletes_a_half_logged_one(local_store):
    run_dir = make_run_dir(local_store)
    experiment = local_store / "experiment.json"
    first = track.log_run_dir(run_dir, experiment, run_dir / "mlflow.json")
    client = MlflowClient(track.tracking_uri())
    # a track job that died mid-way on the same result: a RUNNING run with its identity tags
    tags = client.get_run(first["run_id"]).data.tags
    half = client.create_run(
        first["experiment_id"],
        tags={k: tags[k] for k in ("detbench.key", "detbench.result_sha256", "superseded")},
    )
    again = track.log_run_dir(run_dir, experiment, run_dir / "mlflow.json")
    assert again["run_id"] == first["run_id"] and again["superseded"] == []
    assert client.get_run(half.info.run_id).info.lifecycle_stage == "deleted"
    runs = client.search_runs([first["experiment_id"]])
    assert [r.info.run_id for r in runs] == [first["run_id"]]
    assert client.get_run(first["run_id"]).info.status == "FINISHED"


def test_tags_say_device_host_board_and_stack(local_store):
    run_dir = make_run_dir(local_store)
    result = json.loads((run_dir / "result.json").read_text())
    result["host"] = {
        "hostname": "nano-1",
        "cpu_model": "ARMv8 Processor rev 1 (v8l)",
        "gpu_name": None,
        "jetson": {"board": "NVIDIA Jetson Nano Developer Kit"},
    }
    result["versions"] = {"python": "3.6.9", "mxnet": "1.6.0", "gluoncv": "0.8.0",
                          "numpy": "1.19.5"}  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(result))
    record = track.log_run_dir(run_dir, local_store / "experiment.json", run_dir / "mlflow.json")
    tags = MlflowClient(track.tracking_uri()).get_run(record["run_id"]).data.tags
    assert tags["device"] == "cpu" and tags["host"] == "nano-1"
    assert tags["board"] == "NVIDIA Jetson Nano Developer Kit"
    assert tags["stack"] == "python 3.6.9, mxnet 1.6.0, gluoncv 0.8.0"
    assert tags["workstation"] == socket.gethostname()


def test_board_is_the_gpu_model_for_a_gpu_context_else_the_cpu_model():
    host = {"cpu_model": "AMD EPYC 7R13", "gpu_name": "NVIDIA H100", "jetson": None}
    assert track.board({"device": "gpu0", "host": host}) == "NVIDIA H100"
    assert track.board({"device": "cpu", "host": host}) == "AMD EPYC 7R13"
    assert track.board({"device": "box", "context": "gpu1", "host": host}) == "NVIDIA H100"


def test_experiment_is_marked_a_model_training_experiment(local_store):
    client = MlflowClient(track.tracking_uri())
    experiment = client.get_experiment_by_name("detbench-t")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    client.set_experiment_tag(
        experiment.experiment_id, "mlflow.experimentKind", "genai_development"
    )
    track.ensure_experiment("t", local_store / "again.json")
    experiment = client.get_experiment_by_name("detbench-t")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_fails_naming_the_uri_and_keeps_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    run_dir = make_run_dir(tmp_path)
    (tmp_path / "experiment.json").write_text(json.dumps({"experiment_id": "1"}))
    with pytest.raises(track.TrackingError, match=uri):
        track.log_run_dir(run_dir, tmp_path / "experiment.json", run_dir / "mlflow.json")
    assert not (run_dir / "mlflow.json").exists()
    assert (run_dir / "result.json").exists() and (run_dir / "telemetry.csv").exists()


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    store = tmp_path / "server"
    store.mkdir()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination", str(store / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            assert server.poll() is None, "mlflow server exited at start-up"
            assert time.monotonic() < deadline, "mlflow server did not answer within 90 s"
            time.sleep(0.5)
    yield uri
    server.terminate()
    server.wait(timeout=30)


def test_workflow_logs_to_a_tracking_server(mlflow_server, tmp_path):
    config = {
        "name": "srv",
        "voc": {"synthetic": {"images": 3, "seed": 2}},
        "models": ["ssd_512_mobilenet1.0_voc"],
        "weights": {"source": "untrained", "seed": 0},
        "devices": ["cpu"],
        "speed": {"images": 1, "size": 256, "modes": ["hybrid"], "warmup": 1},
        "voc_run": {"batch": 3, "warmup": 1},
        "telemetry": {"interval_s": 0.05},
    }
    (tmp_path / "wf").mkdir()
    workdir = copy_workflow(tmp_path / "wf", config)
    done = snakemake(workdir, "all", "--configfile", "test.yaml",
                     env={"MLFLOW_TRACKING_URI": mlflow_server})  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert not (workdir / "mlruns/mlflow.db").exists()
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("detbench-srv").experiment_id])
    assert {r.data.tags["kind"] for r in runs} == {"speed", "voc"}
    voc = next(r for r in runs if r.data.tags["kind"] == "voc")
    assert "mAP" in voc.data.metrics and voc.info.status == "FINISHED"
    assert len(client.get_metric_history(voc.info.run_id, "telemetry/ram_used_mb")) > 1
    local = client.download_artifacts(voc.info.run_id, "result.json", str(tmp_path))
    assert json.loads(Path(local).read_text())["kind"] == "voc"
    assert os.path.exists(
        workdir / "results/srv/voc/ssd_512_mobilenet1.0_voc/mxnet/cpu/mlflow.json"
    )


def test_a_short_series_is_logged_whole_with_its_latest_value(local_store):
    run_dir = make_run_dir(local_store, samples=1500)
    record = track.log_run_dir(run_dir, local_store / "experiment.json", run_dir / "mlflow.json")
    client = MlflowClient(track.tracking_uri())
    history = client.get_metric_history(record["run_id"], "telemetry/cpu_percent")
    assert sorted((m.step, m.value) for m in history) == [(i, 10 + i) for i in range(1500)]
    run = client.get_run(record["run_id"])
    assert run.data.metrics["telemetry/cpu_percent"] == 1509
    assert "telemetry_series" not in run.data.tags


def test_a_long_series_keeps_every_peak_at_a_fraction_of_the_points(local_store, monkeypatch):
    monkeypatch.setattr(track, "MAX_SERIES_POINTS", 200)
    run_dir = make_run_dir(local_store, samples=1500)
    rows = "".join(f"{i * 0.5},{5000 if i == 700 else 50 + i % 7},800,0,,,,,\n"
                   for i in range(1500))  # fmt: skip
    (run_dir / "telemetry.csv").write_text(TELEMETRY + rows)
    result = json.loads((run_dir / "result.json").read_text())
    result["telemetry"]["samples"] = 1500
    (run_dir / "result.json").write_text(json.dumps(result))
    record = track.log_run_dir(run_dir, local_store / "experiment.json", run_dir / "mlflow.json")
    client = MlflowClient(track.tracking_uri())
    history = sorted(client.get_metric_history(record["run_id"], "telemetry/cpu_percent"),
                     key=lambda m: m.step)  # fmt: skip
    assert len(history) <= 200 and history[0].step == 0 and history[-1].step == 1499
    assert (700, 5000) in [(m.step, m.value) for m in history]
    assert min(m.value for m in history) == 50
    tag = client.get_run(record["run_id"]).data.tags["telemetry_series"]
    assert "of 1500 samples" in tag and "telemetry.csv" in tag


def test_decimate_keeps_order_extremes_and_the_bound():
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000).tolist()
    values[4321] = 50.0
    kept = track.decimate(values, 2000)
    assert len(kept) <= 2000 and kept == sorted(set(kept))
    assert {0, 9999, 4321, int(np.argmin(values))} <= set(kept)
    assert track.decimate(values[:30], 2000) == list(range(30))
