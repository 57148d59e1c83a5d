"""Log run directories to MLflow (DESIGN §7), after the benchmark, as a job of its own.

A run's files never depend on MLflow: if the tracking server is down the ``track`` job fails
within seconds (:data:`HTTP_LIMITS`) with the URI in its error, the files stay, the report is
made without MLflow, and a rerun logs them without re-benchmarking.
Concurrent ``track`` jobs on the default SQLite store are serialised with a file lock (SQLite
allows one writer; MLflow's own retries do not cover a fresh store's migrations); on a tracking
server (a team's ``mlflow server`` on PostgreSQL, :mod:`detbench.server`) nothing is locked.

Logging is idempotent per result: each MLflow run carries the sha256 of its ``result.json``, so a
track job rerun after a failure (``mlflow.json`` is written only after the run is complete) reuses
the complete run of the same result, if one got through, and deletes a half-logged one, if the
server died under it: one MLflow run per result, never a duplicate.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import math
import os
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detbench import contract
from detbench.contract import DetbenchError
from detbench.files import write_json_atomic
from detbench.runs import REPO_ROOT, read_json

DEFAULT_STORE = "mlruns"
TELEMETRY_FIELDS = contract.TELEMETRY_FIELDS
MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit
# Points per telemetry series in MLflow (the CSV artifact keeps every sample): a 1.4-hour VOC
# pass on a Jetson at 0.5 s is 10 000 samples; 2000 min-max points draw the same chart and log in
# about a second through log_batch (benchmarks/mlflow_logging.py).
MAX_SERIES_POINTS = 2000
RUN_FILES = {
    "result": contract.RESULT, "spec": contract.SPEC, "telemetry": contract.TELEMETRY,
    "map": contract.MAP, "detections": contract.DETECTIONS,
}  # fmt: skip
# A tracking server that does not answer fails a track job in seconds, not MLflow's ~250 s of
# retries per call; the environment's own MLFLOW_HTTP_REQUEST_* settings win.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
# MLflow's usage telemetry off (set before mlflow is imported): it phones home, and its thread
# pops _MLFLOW_TELEMETRY_SESSION_ID from os.environ while a request copies the environment, which
# failed a track job with KeyError '_MLFLOW_TELEMETRY_SESSION_ID' among 50 concurrent ones.
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true"}
STACK = ("python", "mxnet", "gluoncv")  # the versions that make a run's software stack tag
# The experiment's kind as MLflow 3 records it: a model-training experiment. MLflow 3.17's UI does
# not read it (tests/test_mlflow_ui.py): its workflow type decides, see UI_QUERY.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
# MLflow 3.17's UI shows every experiment by its "GenAI | Model training" switch, whatever the
# experiment's kind: this query parameter when the URL has one, else a per-browser setting
# (localStorage `mlflow.workflowType_v1`, written by the switch) that starts at GenAI (an overview
# of traces, the runs hidden under "Evaluation runs"). This value opens the runs table.
UI_QUERY = "workflowType=machine_learning"


class TrackingError(DetbenchError, RuntimeError):
    """Logging to MLflow failed; the message names the tracking URI."""


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set (a team's server), else the SQLite store in mlruns/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE}/mlflow.db"


def artifact_root() -> str:
    return Path(DEFAULT_STORE, "artifacts").resolve().as_uri()


def ui_url(server: str, experiment_id: str | None = None) -> str:
    """The MLflow UI page of an experiment's runs table (or of the experiments) on ``server``."""
    page = f"experiments/{experiment_id}/runs" if experiment_id else "experiments"
    return f"{server.rstrip('/')}/#/{page}?{UI_QUERY}"


def experiment_name(config_name: str) -> str:
    return f"detbench-{config_name}"


@contextlib.contextmanager
def store_lock(uri: str):
    """Serialise writers of a SQLite store; a no-op for a tracking server."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri[len("sqlite:///") :])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / ".detbench.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mlflow_client(uri: str):
    """An MlflowClient on ``uri`` whose HTTP retries are bounded (:data:`HTTP_LIMITS`), with
    MLflow's usage telemetry off (:data:`NO_TELEMETRY`); the environment's own settings win."""
    for name, value in {**HTTP_LIMITS, **NO_TELEMETRY}.items():
        os.environ.setdefault(name, value)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_experiment(config_name: str, out_json: str | Path) -> dict:
    """Create the config's experiment once (upstream of every track job) and record its id."""
    uri = tracking_uri()
    name = experiment_name(config_name)
    try:
        with store_lock(uri):
            client = mlflow_client(uri)
            experiment_id = _experiment_id(client, {"experiment_name": name}, uri)
    except Exception as exc:
        raise TrackingError(
            f"MLflow at {uri}: cannot create experiment {name!r} ({type(exc).__name__}: {exc}); "
            "the runs' files are kept, rerun the same snakemake command to log them once the "
            "tracking store is reachable"
        ) from exc
    record = {"experiment_id": experiment_id, "experiment_name": name, "tracking_uri": uri}
    if uri.startswith(("http://", "https://")):
        record["ui"] = ui_url(uri, experiment_id)
        print(f"MLflow experiment {name}: {record['ui']}", flush=True)
    write_json_atomic(out_json, record)
    return record


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def run_key(result: dict) -> str:
    """Identity of a configuration: one current MLflow run per key."""
    parts = [result["config_name"], result["kind"], result["model"], backend_name(result)]
    return "/".join([*parts, device_id(result), result["mode"]])


def device_id(result: dict) -> str:
    """The device across workstations: an SSH device by its configured name (a team names its
    boards once); a local ``cpu`` / ``gpuN`` with its host, ``cpu@ws1``, since every
    workstation has a ``cpu``."""
    if result.get("context"):
        return result["device"]
    host = (result.get("host") or {}).get("hostname") or socket.gethostname()
    return f"{result['device']}@{host}"


def backend_name(result: dict) -> str:
    """The run's inference backend (results from before backends existed ran MXNet)."""
    return (result.get("backend") or {}).get("name") or contract.MXNET


def board(result: dict) -> str:
    """What the run ran on: the Jetson board when there is one, else the GPU model for a GPU
    context (``gpuN``), else the CPU model."""
    host = result.get("host") or {}
    jetson = host.get("jetson") or {}
    context = result.get("context") or result["device"]
    if jetson.get("board"):
        return str(jetson["board"])
    if context.startswith("gpu") and host.get("gpu_name"):
        return str(host["gpu_name"])
    return str(host.get("cpu_model") or host.get("machine") or "unknown")


def stack(result: dict) -> str:
    """The software stack the runner ran on, e.g. ``python 3.6.9, mxnet 1.6.0, gluoncv 0.8.0``."""
    versions = result.get("versions") or {}
    return ", ".join(f"{name} {versions[name]}" for name in STACK if versions.get(name))


def run_tags(result: dict, map_json: dict | None) -> dict[str, str]:
    """Tags of the run: what the configuration was, and where it ran (device name, host, board,
    software stack, the workstation that logged it), so runs can be found across machines."""
    weights = result["weights"]
    tags = {
        "kind": result["kind"],
        "model": result["model"],
        "device": result["device"],
        "device_id": device_id(result),
        "mode": result["mode"],
        "backend": backend_name(result),
        "weights": weights["source"],
        "untrained": str(bool(weights["untrained"])).lower(),
        "dataset": result["dataset"]["name"],
        "dataset_fingerprint": result["dataset"]["fingerprint"],
        "config_name": result["config_name"],
        "git_commit": git_commit(),
        "host": (result.get("host") or {}).get("hostname") or socket.gethostname(),
        "board": board(result),
        "stack": stack(result) or "unknown",
        "workstation": socket.gethostname(),
        "status": result["status"],
        "detbench.key": run_key(result),
        "telemetry_backend": str((result.get("telemetry") or {}).get("backend")),
        "mlflow.runName": " ".join(
            [result["kind"], result["model"], backend_name(result), result["device"]]
            + [result["mode"]]
        ),
    }
    for key, value in sorted((result.get("backend") or {}).items()):
        if key != "name" and value not in (None, "", [], {}):
            tags[f"backend.{key}"] = (value if isinstance(value, str) else json.dumps(value))[:4900]
    for name, version in sorted((result.get("versions") or {}).items()):
        tags[f"version.{name}"] = str(version)
    if result.get("error"):
        tags["error"] = result["error"][:4900]
    if map_json and map_json.get("accuracy_flag"):
        tags["accuracy_flag"] = map_json["accuracy_flag"]
    return tags


def run_params(spec: dict, result: dict) -> dict[str, str]:
    params = {
        "batch_size": spec["batch_size"],
        "input_shape": "x".join(map(str, spec["input_shape"])) if spec["input_shape"] else "eval",
        "image_count": len(spec["image_ids"]),
        "warmup": spec["warmup"],
        "repeats": spec["repeats"],
        "telemetry_interval_s": spec["telemetry_interval_s"],
        "threads": result.get("threads"),
        "weights_sha256": spec["weights"]["sha256"],
        "split": spec["dataset"]["split"],
    }
    return {key: str(value) for key, value in params.items()}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def run_metrics(result: dict, map_json: dict | None) -> dict[str, float]:
    """The figures of DESIGN §5 (timings, telemetry summary) plus mAP and AP_<class>."""
    metrics: dict[str, float] = {}
    timings = result.get("timings") or {}
    for key in contract.TIMING_KEYS:
        if _finite(timings.get(key)):
            metrics[key] = float(timings[key])
    for key in contract.REPEAT_KEYS:  # present when speed.repeats > 1
        if _finite(timings.get(key)):
            metrics[f"repeat_wall_{key}"] = float(timings[key])
    for key, value in (timings.get("latency_ms") or {}).items():
        if _finite(value):
            metrics[f"latency_{key}_ms"] = float(value)
    for key, value in (result.get("telemetry") or {}).items():
        if _finite(value):
            metrics[f"telemetry_{key}"] = float(value)
    if map_json:
        for key in ("mAP", "mAP_all_classes"):
            if _finite(map_json.get(key)):
                metrics[key] = float(map_json[key])
        for name, ap in (map_json.get("ap_per_class") or {}).items():
            if _finite(ap):
                metrics[f"AP_{name}"] = float(ap)
    return metrics


def telemetry_series(csv_path: Path, start_ms: int, max_points: int | None = None):
    """mlflow Metric entities: the ``telemetry/<field>`` series of every present sensor, each
    point with its sample index as step and its sample time as timestamp.

    A series longer than ``max_points`` (default :data:`MAX_SERIES_POINTS`) is decimated by
    :func:`decimate`: the UI's chart keeps every peak and trough at a fraction of the points,
    and ``telemetry.csv``, logged whole as an artifact, keeps every sample."""
    from mlflow.entities import Metric

    if not csv_path.exists():
        return []
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    times = [start_ms + int(round(float(row["t_s"]) * 1000)) for row in rows]
    points = []
    for field in TELEMETRY_FIELDS:
        steps = [i for i, row in enumerate(rows) if row.get(field) not in (None, "")]
        values = [float(rows[i][field]) for i in steps]
        for index in decimate(values, max_points or MAX_SERIES_POINTS):
            step = steps[index]
            points.append(Metric(f"telemetry/{field}", values[index], times[step], step))
    return points


def decimate(values: list[float], max_points: int) -> list[int]:
    """Indices of at most ``max_points`` (>= 4) of ``values`` that draw the same chart: all of
    them when they fit, else the first, the last, and the minimum and maximum of each of
    ``(max_points - 2) // 2`` equal buckets (min-max decimation: every peak survives), in order."""
    count = len(values)
    if count <= max_points:
        return list(range(count))
    array = np.asarray(values, dtype=float)
    edges = np.linspace(0, count, (max_points - 2) // 2 + 1).astype(int)
    keep = {0, count - 1}
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        keep.add(low + int(np.argmin(array[low:high])))
        keep.add(low + int(np.argmax(array[low:high])))
    return sorted(keep)


def log_metrics(client, run_id: str, metrics: list) -> None:
    """Log ``metrics`` (mlflow ``Metric`` points) to the run through the public ``log_batch``,
    in batches within MLflow's limit."""
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + MAX_METRICS_PER_BATCH])


def _started_ms(result: dict) -> int:
    from datetime import datetime

    try:
        started = datetime.fromisoformat(result["started_at"].replace("Z", "+00:00"))
        return int(started.timestamp() * 1000)
    except (KeyError, ValueError):
        return int(time.time() * 1000)


def _experiment_id(client, experiment: dict, uri: str) -> str:
    """The id of the config's experiment in the store at ``uri``, checked by name.

    ``mlflow_experiment.json`` is only a cache: the store may have been recreated since (the id
    then names nothing, or another config's experiment) or ``MLFLOW_TRACKING_URI`` changed. The
    recorded id is used only where it still names this experiment; otherwise the experiment is
    found, or created, by name in this store."""
    from mlflow.exceptions import MlflowException

    name = experiment["experiment_name"]
    if "experiment_id" in experiment and experiment.get("tracking_uri") in (None, uri):
        try:
            recorded = client.get_experiment(experiment["experiment_id"])
        except MlflowException:  # no experiment with that id in this store
            recorded = None
        if recorded is not None and recorded.name == name:
            return recorded.experiment_id
    found = client.get_experiment_by_name(name)
    if found is None:
        location = artifact_root() if uri.startswith("sqlite:") else None
        try:
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
        except MlflowException:  # another track job created it meanwhile (a server has no lock)
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    for key, value in EXPERIMENT_TAGS.items():  # an experiment made before detbench set them
        if found.tags.get(key) != value:
            client.set_experiment_tag(found.experiment_id, key, value)
    return found.experiment_id


def _supersede(client, experiment_id: str, key: str, new_run_id: str) -> list[str]:
    """Tag every other current run of ``key`` as superseded by ``new_run_id``."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`detbench.key` = '{key}' and tags.superseded = 'false'",
        max_results=1000,
    )
    old = [run.info.run_id for run in runs if run.info.run_id != new_run_id]
    for run_id in old:
        client.set_tag(run_id, "superseded", "true")
        client.set_tag(run_id, "superseded_by", new_run_id)
    return old


def _earlier_attempt(client, experiment_id: str, key: str, digest: str, status: str):
    """The complete MLflow run of this very result (``detbench.result_sha256``) when an earlier
    track job logged it whole (terminated with ``status``, its last call) but did not write
    ``mlflow.json``; half-logged ones (still RUNNING, or KILLED) are deleted. ``None`` when there
    is no complete one."""
    same = f"tags.`detbench.key` = '{key}' and tags.`detbench.result_sha256` = '{digest}'"
    runs = client.search_runs([experiment_id], filter_string=same, max_results=1000)
    complete = [r.info.run_id for r in runs if r.info.status == status and r.info.end_time]
    for run in runs:
        if run.info.run_id not in complete:
            client.delete_run(run.info.run_id)
    return complete[0] if complete else None


def run_files(run_dir: str | Path) -> dict[str, Path]:
    """The contract's files present in ``run_dir``, by role (``result``, ``spec``,
    ``telemetry``, ``map``, ``detections``): what a ``track`` rule declares, for callers
    outside the workflow (tests, benchmarks)."""
    run_dir = Path(run_dir)
    return {role: run_dir / name for role, name in RUN_FILES.items() if (run_dir / name).exists()}


def log_run_dir(run_dir, experiment_json, out_json, pictures: Sequence[str | Path] = ()) -> dict:
    """:func:`log_run` of the files in ``run_dir``."""
    return log_run(run_files(run_dir), experiment_json, out_json, pictures)


def log_run(
    files: dict[str, str | Path],
    experiment_json: str | Path,
    out_json: str | Path,
    pictures: Sequence[str | Path] = (),
) -> dict:
    """Log one run as a new MLflow run from exactly ``files`` (roles of :data:`RUN_FILES`:
    ``result``, ``spec`` and ``telemetry`` always, ``map`` and ``detections`` for voc runs),
    with ``pictures`` (its detection pictures) under the artifact folder ``detections/``; write
    ``mlflow.json`` with its id. Every file is logged as an artifact."""
    from mlflow.entities import Metric, Param, RunStatus, RunTag

    files = {role: Path(path) for role, path in files.items()}
    run_dir = files["result"].parent
    result = read_json(files["result"])
    spec = read_json(files["spec"])
    map_json = read_json(files["map"]) if "map" in files else None
    experiment = read_json(experiment_json)
    uri = tracking_uri()
    start_ms = _started_ms(result)
    digest = hashlib.sha256(files["result"].read_bytes()).hexdigest()
    tags = {**run_tags(result, map_json), "superseded": "false", "detbench.result_sha256": digest}
    status = "FINISHED" if result["status"] == "ok" else "FAILED"
    metrics = [Metric(k, v, start_ms, 0) for k, v in sorted(run_metrics(result, map_json).items())]
    series = telemetry_series(files["telemetry"], start_ms)
    samples = (result.get("telemetry") or {}).get("samples")
    longest = max(Counter(point.key for point in series).values(), default=0)
    if samples and longest < samples:
        tags["telemetry_series"] = (
            f"min-max decimated: at most {longest} of {samples} samples per sensor; every "
            "sample is in the telemetry.csv artifact"
        )
    metrics += series
    created = None  # a run this call made and has not finished logging
    try:
        with store_lock(uri):
            client = mlflow_client(uri)
            experiment_id = _experiment_id(client, experiment, uri)
            key = tags["detbench.key"]
            run_id = _earlier_attempt(client, experiment_id, key, digest, status)
            if run_id is None:
                run_id = created = client.create_run(experiment_id, start_time=start_ms).info.run_id
                client.log_batch(
                    run_id,
                    params=[Param(k, v) for k, v in sorted(run_params(spec, result).items())],
                    tags=[RunTag(k, v) for k, v in sorted(tags.items())],
                )
                log_metrics(client, run_id, metrics)
                for role in RUN_FILES:
                    if role in files:
                        client.log_artifact(run_id, str(files[role]))
                for picture in pictures:
                    client.log_artifact(run_id, str(picture), artifact_path="detections")
                client.set_terminated(run_id, status=status)  # last: a terminated run is whole
                created = None
            superseded = _supersede(client, experiment_id, key, run_id)
    except KeyboardInterrupt:
        if created is not None:
            with contextlib.suppress(Exception):
                killed = RunStatus.to_string(RunStatus.KILLED)
                mlflow_client(uri).set_terminated(created, status=killed)
        raise
    except Exception as exc:
        raise TrackingError(
            f"MLflow at {uri}: logging {run_dir} failed ({type(exc).__name__}: {exc}); the run's "
            "files are kept, rerun the same snakemake command to log them once the tracking "
            "store is reachable"
        ) from exc
    record = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tracking_uri": uri,
        "status": status,
        "superseded": superseded,
    }
    write_json_atomic(out_json, record)
    return record
