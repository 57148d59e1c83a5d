"""Faults survived with real processes: Ctrl-C, a tracking server that is down, a model that
fails, and two writers of one SQLite store.

Each workflow runs in a temporary copy on a tiny synthetic set. A "Ctrl-C" is SIGINT to the
whole process group, as a terminal sends it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, copy_workflow, snakemake, summary_rows
from mlflow.tracking import MlflowClient

from detbench import track

GOOD, BAD = "yolo3_mobilenet1.0_voc", "ssd_512_mobilenet1.0_voc"
TELEMETRY_HEADER = (
    "t_s,cpu_percent,ram_used_mb,swap_used_mb,gpu_util_percent,gpu_temp_c,cpu_temp_c,"
    "gpu_mem_used_mb,power_w\n"
)


def tiny_config(name: str, models: list[str], images: int, **extra) -> dict:
    return {
        "name": name,
        "voc": {"synthetic": {"images": images, "seed": 5}},
        "models": models,
        "weights": {"source": "untrained", "seed": 0},
        "devices": ["cpu"],
        "speed": {"images": 1, "size": 128, "modes": ["hybrid"], "warmup": 1},
        "voc_run": {"batch": 8, "warmup": 1},
        "telemetry": {"interval_s": 0.1},
        **extra,
    }


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 180.0) -> None:
    """Wait until ``path`` exists; on failure, kill the process group and say why."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        problem = None
        if process.poll() is not None:
            problem = f"process exited ({process.returncode}) before {path} appeared"
        elif time.monotonic() > deadline:
            problem = f"{path} did not appear within {timeout} s"
        if problem:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
            pytest.fail(f"{problem}:\n{(out or '')[-3000:]}")
        time.sleep(0.05)


def ctrl_c(process: subprocess.Popen, timeout: float = 120.0) -> str:
    """SIGINT to the process group of ``process`` (started with start_new_session); its output."""
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=timeout)
    return out or ""


def half_written(root: Path) -> list[str]:
    """Temporary, partial or staging files left anywhere under ``root`` (Snakemake's own
    metadata aside)."""
    patterns = ("*.tmp", "*.tmp.*", "*.part", ".*.partial-*")
    found = {p for pattern in patterns for p in root.rglob(pattern)}
    return sorted(str(p.relative_to(root)) for p in found if ".snakemake" not in p.parts)


def processes_in(workdir: Path) -> list[str]:
    import psutil

    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and Path(proc.cwd()) == workdir:
                left.append(" ".join(proc.info["cmdline"] or []))
        except (psutil.Error, OSError):
            continue
    return left


# --- Ctrl-C during a voc run -------------------------------------------------------------------


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> dict:
    """A voc run interrupted by Ctrl-C, the state it left, then the same snakemake again."""
    workdir = copy_workflow(tmp_path_factory.mktemp("sigint"), tiny_config("sig", [GOOD], 16))
    run_dir = workdir / f"results/sig/voc/{GOOD}/mxnet/cpu"
    target = f"results/sig/voc/{GOOD}/mxnet/cpu/result.json"
    command = [sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile",
               "test.yaml"]  # fmt: skip
    first = subprocess.Popen(
        command, cwd=workdir, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    wait_for(run_dir / "telemetry.csv", first)  # the runner is up and sampling
    time.sleep(2.0)
    output = ctrl_c(first)
    state = {
        "workdir": workdir,
        "run_dir": run_dir,
        "code": first.returncode,
        "output": output,
        "run_files": sorted(p.name for p in run_dir.iterdir()),
        "half_written": half_written(workdir),
        "processes": processes_in(workdir),
        "log": (workdir / f"logs/sig/voc/{GOOD}/mxnet/cpu.log").read_text(),
    }
    state["again"] = snakemake(workdir, target, "--configfile", "test.yaml")
    return state


def test_ctrl_c_during_voc_run_leaves_no_result_and_nothing_half_written(interrupted):
    assert interrupted["code"] != 0
    assert "KeyboardInterrupt" in interrupted["log"]  # it was stopped while running
    assert interrupted["run_files"] == ["spec.json"]  # no result.json, telemetry, detections
    assert interrupted["half_written"] == []
    assert interrupted["processes"] == []
    devkit = interrupted["workdir"] / "data/sig/VOCdevkit/VOC2007"
    assert len(list((devkit / "JPEGImages").glob("*.jpg"))) == 16


def test_next_snakemake_after_ctrl_c_completes(interrupted):
    again = interrupted["again"]
    assert again.returncode == 0, again.stderr[-3000:]
    result = json.loads((interrupted["run_dir"] / "result.json").read_text())
    assert result["status"] == "ok" and result["image_count"] == 16
    assert half_written(interrupted["workdir"]) == []


def test_ctrl_c_to_the_runner_itself_leaves_no_result(interrupted):
    workdir = interrupted["workdir"]
    direct = interrupted["run_dir"].parent / "direct"
    direct.mkdir()
    (direct / "spec.json").write_text((interrupted["run_dir"] / "spec.json").read_text())
    runner = subprocess.Popen(
        [sys.executable, "-m", "detbench.runner", "run", str(direct / "spec.json")],
        cwd=workdir, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    wait_for(direct / "telemetry.csv", runner)
    time.sleep(1.5)
    output = ctrl_c(runner)
    assert runner.returncode != 0 and "KeyboardInterrupt" in output
    assert not (direct / "result.json").exists()
    assert not (direct / "detections.npz").exists()
    assert half_written(direct) == []


# --- SIGKILL of the job script, then of Snakemake itself, during a voc run --------------------


def wait_until_gone(workdir: Path, timeout: float = 120.0) -> list[str]:
    """Wait for every process working in ``workdir`` to end; those left at the deadline."""
    deadline = time.monotonic() + timeout
    while (left := processes_in(workdir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def job_script(snakemake_pid: int):
    import psutil

    (job,) = [p for p in psutil.Process(snakemake_pid).children()
              if any(".snakemake/scripts/" in part for part in p.cmdline())]  # fmt: skip
    return job


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> dict:
    """A voc run whose job script is SIGKILLed, then one whose Snakemake is SIGKILLed, the state
    each left once every process ended, then ``--unlock`` and ``--rerun-incomplete``."""
    workdir = copy_workflow(tmp_path_factory.mktemp("sigkill"), tiny_config("kill", [GOOD], 16))
    run_dir = workdir / f"results/kill/voc/{GOOD}/mxnet/cpu"
    target = f"results/kill/voc/{GOOD}/mxnet/cpu/result.json"

    def start() -> subprocess.Popen:
        command = [sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile",
                   "test.yaml"]  # fmt: skip
        return subprocess.Popen(
            command, cwd=workdir, env=clean_env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip

    state = {}
    for victim in ("job script", "snakemake"):
        first = start()
        wait_for(run_dir / "telemetry.csv", first)  # the runner is up and sampling
        os.kill(job_script(first.pid).pid if victim == "job script" else first.pid, signal.SIGKILL)
        out, _ = first.communicate(timeout=120)
        state[victim] = {
            "code": first.returncode,
            "output": out,
            "left": wait_until_gone(workdir),
            "run_files": sorted(p.name for p in run_dir.iterdir()),
            "half_written": half_written(workdir),
        }
    state["unlock"] = snakemake(workdir, "--unlock", "--configfile", "test.yaml")
    state["again"] = snakemake(workdir, target, "--rerun-incomplete", "--configfile", "test.yaml")
    state["run_dir"], state["workdir"] = run_dir, workdir
    return state


def test_sigkilled_job_script_takes_its_runner_with_it(killed):
    job = killed["job script"]
    assert job["code"] != 0
    assert job["left"] == []
    assert job["run_files"] == ["spec.json"]  # the runner wrote nothing after the job failed


def test_sigkilled_snakemake_takes_its_job_and_runner_with_it(killed):
    gone = killed["snakemake"]
    assert gone["code"] == -signal.SIGKILL
    assert gone["left"] == []
    assert gone["run_files"] == ["spec.json"]
    assert gone["half_written"] == []


def test_rerun_incomplete_after_sigkill_writes_a_whole_run_dir(killed):
    assert killed["unlock"].returncode == 0, killed["unlock"].stderr[-3000:]
    again = killed["again"]
    assert again.returncode == 0, again.stderr[-3000:]
    run_dir = killed["run_dir"]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and result["image_count"] == 16
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "detections.npz", "result.json", "spec.json", "telemetry.csv",
    ]  # fmt: skip
    assert len((run_dir / "telemetry.csv").read_text().splitlines()) > 1


# --- MLflow run interrupted while logging ------------------------------------------------------


def make_run_dir(root: Path, config: str, model: str, device: str, samples: int) -> Path:
    run_dir = root / f"results/{config}/voc/{model}/mxnet/{device}"
    run_dir.mkdir(parents=True)
    weights = {"path": "w.params", "source": "untrained", "untrained": True, "sha256": "ab" * 32}
    dataset = {"name": config, "fingerprint": "f00d", "split": "test"}
    spec = {
        "batch_size": 8, "input_shape": None, "image_ids": ["000001"], "warmup": 1, "repeats": 1,
        "telemetry_interval_s": 0.5, "weights": weights, "dataset": dataset,
    }  # fmt: skip
    result = {
        "status": "ok", "error": None, "kind": "voc", "config_name": config, "model": model,
        "device": device, "mode": "hybrid", "weights": weights, "dataset": dataset,
        "timings": {"total_wall_s": 2.0, "images_per_s": 4.0},
        "started_at": "2026-11-25T10:00:00Z", "telemetry": {"backend": "psutil"},
        "host": {"hostname": "bench-host"}, "versions": {"mxnet": "1.9.1"},
    }  # fmt: skip
    (run_dir / "spec.json").write_text(json.dumps(spec))
    (run_dir / "result.json").write_text(json.dumps(result))
    rows = "".join(f"{i * 0.5},{i % 90},{800 + i},0,,,,,\n" for i in range(samples))
    (run_dir / "telemetry.csv").write_text(TELEMETRY_HEADER + rows)
    return run_dir


def test_interrupted_mlflow_logging_ends_the_run_killed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment = track.ensure_experiment("k", tmp_path / "experiment.json")
    run_dir = make_run_dir(tmp_path, "k", GOOD, "cpu", samples=1500)

    def ctrl_c_in_upload(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "log_artifact", ctrl_c_in_upload)
        with pytest.raises(KeyboardInterrupt):
            track.log_run_dir(run_dir, tmp_path / "experiment.json", run_dir / "mlflow.json")
    assert not (run_dir / "mlflow.json").exists()
    client = MlflowClient(track.tracking_uri())
    (killed,) = client.search_runs([experiment["experiment_id"]])
    assert killed.info.status == "KILLED"
    # the store lock was released: the rerun logs the same result once more and deletes the
    # half-logged run of it (one MLflow run per result.json)
    record = track.log_run_dir(run_dir, tmp_path / "experiment.json", run_dir / "mlflow.json")
    assert record["status"] == "FINISHED" and record["superseded"] == []
    (active,) = client.search_runs([experiment["experiment_id"]])
    assert active.info.run_id == record["run_id"] != killed.info.run_id
    assert client.get_run(killed.info.run_id).info.lifecycle_stage == "deleted"


def test_tracking_uri_changed_since_the_experiment_job_logs_to_the_right_experiment(
    tmp_path, monkeypatch
):
    """The experiment was made in one store (say a server, then down); the runs are logged to
    another, where the recorded experiment id is someone else's experiment."""
    monkeypatch.chdir(tmp_path)
    first, other = (f"sqlite:///{tmp_path / name}.db" for name in ("first", "other"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", first)
    recorded = track.ensure_experiment("moved", tmp_path / "experiment.json")
    foreign = MlflowClient(other).create_experiment("someone-else")
    assert foreign == recorded["experiment_id"]  # the same id means another experiment there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other)
    run_dir = make_run_dir(tmp_path, "moved", GOOD, "cpu", samples=3)
    record = track.log_run_dir(run_dir, tmp_path / "experiment.json", run_dir / "mlflow.json")
    client = MlflowClient(other)
    logged = client.get_experiment(client.get_run(record["run_id"]).info.experiment_id)
    assert logged.name == "detbench-moved" and record["experiment_id"] == logged.experiment_id
    assert client.search_runs([foreign]) == []


def in_fresh_process(workdir: Path, code: str) -> str:
    """Run ``code`` (with ``track`` and ``MlflowClient`` imported) in ``workdir`` as a new
    process, as each Snakemake job is; its stdout."""
    prelude = "from pathlib import Path\nfrom mlflow.tracking import MlflowClient\n"
    prelude += "from detbench import track\n"
    done = subprocess.run([sys.executable, "-c", prelude + code], cwd=workdir, env=clean_env(),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def experiment_of_run(db: Path, run_id: str) -> str:
    """The name of the experiment holding ``run_id``, read from the SQLite store itself (an
    MlflowClient in this process would keep reading a deleted store through its cached engine)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as connection:
        (name,) = connection.execute(
            "SELECT e.name FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id "
            "WHERE r.run_uuid = ?",
            (run_id,),
        ).fetchone()
    return name


def test_recreated_store_logs_to_this_configs_experiment_not_a_stale_id(tmp_path):
    """mlruns/mlflow.db deleted after the experiment job ran: the cached id names nothing, then
    (once another config has made an experiment) someone else's experiment."""
    db = tmp_path / "mlruns/mlflow.db"
    log = "r = track.log_run_dir(Path('{0}'), 'experiment.json', Path('{0}') / 'mlflow.json')\n"
    log += "print(r['run_id'])"
    in_fresh_process(tmp_path, "track.ensure_experiment('mine', 'experiment.json')")
    recorded = json.loads((tmp_path / "experiment.json").read_text())["experiment_id"]
    db.unlink()
    first = make_run_dir(tmp_path, "mine", GOOD, "cpu", samples=3)
    run_id = in_fresh_process(tmp_path, log.format(first)).strip()
    assert experiment_of_run(db, run_id) == "detbench-mine"
    db.unlink()
    other = in_fresh_process(
        tmp_path, "print(MlflowClient(track.tracking_uri()).create_experiment('detbench-other'))"
    ).strip()
    assert other == recorded  # the cached id is now another config's experiment
    second = make_run_dir(tmp_path, "mine", BAD, "cpu", samples=3)
    run_id = in_fresh_process(tmp_path, log.format(second)).strip()
    assert experiment_of_run(db, run_id) == "detbench-mine"


# --- tracking server down during track, and a model that fails ---------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _file_entry(path: Path) -> dict:
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _mtimes(workdir: Path, name: str) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns
            for p in sorted((workdir / "results").rglob(name))}  # fmt: skip


@pytest.fixture(scope="module")
def degraded(tmp_path_factory) -> dict:
    """Two models, one with corrupt weights, run with MLFLOW_TRACKING_URI at a port where nothing
    listens (MLflow's own retry settings untouched, no --keep-going); then the same command once
    tracking works again."""
    root = tmp_path_factory.mktemp("degraded")
    weights = root / "weights-in"
    weights.mkdir()
    made = subprocess.run(
        [sys.executable, "-m", "detbench.runner", "init-weights", "--model", GOOD,
         "--out", str(weights / "good.params")],
        env=clean_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    (weights / "bad.params").write_bytes(b"not an MXNet parameter file\n" * 64)
    files = {GOOD: _file_entry(weights / "good.params"), BAD: _file_entry(weights / "bad.params")}
    config = tiny_config("deg", [GOOD, BAD], 4, weights={"source": "file", "files": files})
    config["voc_run"]["batch"] = 4
    (root / "wf").mkdir()
    workdir = copy_workflow(root / "wf", config)
    uri = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    dead = {**env, "MLFLOW_TRACKING_URI": uri}
    down = snakemake(workdir, "all", "--configfile", "test.yaml", env=dead)
    state = {"workdir": workdir, "uri": uri, "down": down, "results": _mtimes(workdir, "*.json")}
    state["experiment_log"] = (workdir / "logs/deg/mlflow_experiment.log").read_text()
    state["reports"] = {str(p.relative_to(workdir)): p.stat().st_mtime_ns
                        for p in sorted((workdir / "reports/deg").rglob("*.*"))}  # fmt: skip
    state["summary"] = summary_rows(workdir, "test.yaml")
    state["rerun"] = snakemake(workdir, "all", "--configfile", "test.yaml")
    return state


def test_tracking_server_down_fails_only_tracking_naming_the_uri(degraded):
    uri, down = degraded["uri"], degraded["down"]
    assert down.returncode != 0
    assert uri in down.stderr
    log = degraded["experiment_log"]
    assert f"MLflow at {uri}" in log and "files are kept" in log, log[-2000:]
    # every benchmark ran and the report was made; nothing was logged
    results = degraded["results"]
    assert len([p for p in results if p.endswith("result.json")]) == 4
    assert len([p for p in results if p.endswith("map.json")]) == 2
    assert not [p for p in results if p.endswith("mlflow.json")]
    assert "reports/deg/summary.csv" in degraded["reports"]
    assert len(pd.read_csv(degraded["workdir"] / "reports/deg/summary.csv")) == 4
    assert [p for p in degraded["reports"] if p.endswith(".png")]


def test_rerun_after_server_down_only_logs_and_reports(degraded):
    workdir = degraded["workdir"]
    summary = degraded["summary"]
    pending = {(rule, path) for rule, path, state in summary if state == "update pending"}
    expected = {(rule, path) for rule, path, _ in summary
                if rule.startswith("track_") or rule == "mlflow_experiment"}  # fmt: skip
    assert len({path for _, path in expected if path.endswith("/mlflow.json")}) == 4
    assert pending == expected
    rerun = degraded["rerun"]
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _mtimes(workdir, "*.json")
    assert {p: t for p, t in after.items() if not p.endswith("mlflow.json")
            and not p.endswith("mlflow_experiment.json")} == degraded["results"]  # fmt: skip
    reports = {str(p.relative_to(workdir)): p.stat().st_mtime_ns
               for p in sorted((workdir / "reports/deg").rglob("*.*"))}  # fmt: skip
    assert reports == degraded["reports"]
    client = MlflowClient(f"sqlite:///{workdir}/mlruns/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("detbench-deg").experiment_id])
    assert sorted((r.data.tags["model"], r.info.status) for r in runs) == sorted(
        [(GOOD, "FINISHED")] * 2 + [(BAD, "FAILED")] * 2
    )


def test_failing_model_is_recorded_failed_and_the_rest_finishes(degraded):
    workdir = degraded["workdir"]
    assert degraded["rerun"].returncode == 0
    summary = pd.read_csv(workdir / "reports/deg/summary.csv")
    bad, good = summary[summary.model == BAD], summary[summary.model == GOOD]
    assert len(bad) == len(good) == 2
    assert (bad.status == "failed").all() and (good.status == "ok").all()
    assert bad.error.str.contains(f"weights/file/{BAD}.params: not an MXNet parameter file").all()
    assert good.mAP.notna().any()
    assert list((workdir / "reports/deg/figures").glob("*.png"))
    result = json.loads((workdir / f"results/deg/voc/{BAD}/mxnet/cpu/result.json").read_text())
    assert result["status"] == "failed" and result["error"]


# --- two writers of one SQLite store -----------------------------------------------------------

WRITER = """
import os, sys
from pathlib import Path
from detbench import track
os.chdir(sys.argv[1])
name = sys.argv[2]
track.ensure_experiment("shared", f"experiment-{name}.json")
for run_dir in sys.argv[3:]:
    track.log_run_dir(run_dir, f"experiment-{name}.json", Path(run_dir) / "mlflow.json")
"""


def test_two_workflows_log_into_one_sqlite_store_at_once(tmp_path):
    runs = {
        name: [make_run_dir(tmp_path, "shared", model, f"gpu{i}", samples=1200)
               for model in (GOOD, BAD) for i in ((0, 1) if name == "a" else (2, 3))]
        for name in ("a", "b")
    }  # fmt: skip
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(tmp_path),
                name,
                *(str(d.relative_to(tmp_path)) for d in dirs),
            ],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for name, dirs in runs.items()
    ]
    for writer in writers:
        out, _ = writer.communicate(timeout=300)
        assert writer.returncode == 0, out[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("detbench-shared")
    logged = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(logged) == 8
    assert {r.info.status for r in logged} == {"FINISHED"}
    records = [json.loads((d / "mlflow.json").read_text()) for ds in runs.values() for d in ds]
    ids = {record["run_id"] for record in records}
    assert ids == {r.info.run_id for r in logged}
    for run in logged:
        assert len(client.get_metric_history(run.info.run_id, "telemetry/ram_used_mb")) == 1200
