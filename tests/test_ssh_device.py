"""Devices over SSH for real: a real OpenSSH server on loopback whose Python is the seed stack.

The server (``detbench.remote.loopback``: Debian's openssh-server, installed when missing) has its
own host key and one authorized key; ``.venv36`` (Python 3.6, MXNet 1.6, GluonCV 0.8) is the
device's Python. The workflow runs the same model on ``cpu`` (locally) and on two SSH devices
that share the server; the faults (a cut connection, Ctrl-C, an unknown host key, a missing
Python) are driven through the run launcher.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, copy_workflow, snakemake
from snakemake.utils import validate

from detbench import plan, runs
from detbench.remote import ssh
from detbench.remote.archive import runner_archive, runner_files
from detbench.remote.loopback import LoopbackSSHD, keygen

SEED_PYTHON = Path(os.environ.get("DETBENCH_SEED_PYTHON", REPO / ".venv36/bin/python"))
MODEL = "yolo3_mobilenet1.0_voc"
SSH_DEVICES = ("loop_a", "loop_b")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert SEED_PYTHON.exists(), f"{SEED_PYTHON} missing: run `make test` (it builds .venv36)"
    with LoopbackSSHD(tmp_path_factory.mktemp("sshd")) as sshd:
        yield sshd


@pytest.fixture(scope="module")
def ssh_workflow(server, tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("ssh-workflow")
    config = {
        "name": "ssh",
        "voc": {"synthetic": {"images": 4, "seed": 1}},
        "models": [MODEL],
        "weights": {"source": "untrained", "seed": 0},
        "devices": ["cpu", *(server.device(name, SEED_PYTHON) for name in SSH_DEVICES)],
        "speed": {"images": 2, "size": 320, "modes": ["hybrid"], "warmup": 1},
        "voc_run": {"batch": 2, "warmup": 1},
        "telemetry": {"interval_s": 0.1},
        "runner": {"progress_s": 0.5, "cooldown": {"max_wait_s": 0.2}},
        "ssh": {"cache": str(base / "device-cache")},
    }
    workdir = copy_workflow(base / "wf", config)
    targets = [f"{run}/mlflow.json" for run in plan.run_dirs(config)] + ["reports/ssh/summary.csv"]
    done = snakemake(workdir, *targets, "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    validate(config, str(REPO / "config/schema.yaml"))  # the defaults the workflow applied
    return workdir, config


def run_dirs(workdir: Path, device: str) -> dict[str, Path]:
    results = workdir / "results/ssh"
    return {
        "speed": results / f"speed/{MODEL}/mxnet/{device}-hybrid",
        "voc": results / f"voc/{MODEL}/mxnet/{device}",
    }


def test_workflow_over_ssh_makes_the_files_of_a_local_run(ssh_workflow):
    workdir, _ = ssh_workflow
    local = run_dirs(workdir, "cpu")
    for device in SSH_DEVICES:
        for kind, remote in run_dirs(workdir, device).items():
            assert sorted(p.name for p in remote.iterdir()) == sorted(
                p.name for p in local[kind].iterdir()
            ), kind
            mine, theirs = (
                json.loads((d / "result.json").read_text()) for d in (remote, local[kind])
            )
            assert mine["status"] == "ok", mine["error"]
            assert set(mine) - set(theirs) == {"link", "context"}
            assert mine["device"] == device and mine["context"] == "cpu"
            assert mine["versions"]["python"].startswith("3.6.")
            assert mine["versions"]["mxnet"] == "1.6.0"
            assert mine["weights"] == theirs["weights"]
            for result in (mine, theirs):  # the cool-down ran on the device that ran the job
                assert result["cooldown"]["reason"] == "max_wait_s reached"
            link = mine["link"]
            assert link["transport"] == "ssh" and link["rtt_ms"] > 0
            assert abs(link["clock_offset_s"]) < 1  # one machine: one clock
            header = (remote / "telemetry.csv").read_text().splitlines()[0]
            assert header == (local[kind] / "telemetry.csv").read_text().splitlines()[0]
        with np.load(run_dirs(workdir, device)["voc"] / "detections.npz") as mine:
            with np.load(local["voc"] / "detections.npz") as theirs:
                assert list(mine["image_ids"]) == list(theirs["image_ids"])
    summary = pd.read_csv(workdir / "reports/ssh/summary.csv")
    assert sorted(summary.device) == sorted(["cpu", "cpu", *SSH_DEVICES, *SSH_DEVICES])
    assert (summary.status == "ok").all()
    assert not list(workdir.rglob(ssh.STAGING))


def test_second_run_of_a_device_sends_only_the_spec(ssh_workflow):
    workdir, _ = ssh_workflow
    sent = [
        json.loads((d / "result.json").read_text())["link"]
        for device in SSH_DEVICES
        for d in run_dirs(workdir, device).values()
    ]
    # The devices share one cache: a first run sent the runner, the weights and its images.
    assert max(link["files_sent"] for link in sent) >= 3
    assert max(link["bytes_sent"] for link in sent) > 1_000_000
    assert min(link["files_sent"] for link in sent) == 0
    cached = [link for link in sent if link["files_sent"] == 0]
    assert all(link["bytes_sent"] < 5000 for link in cached), cached


def job_interval(log: Path) -> tuple[datetime.datetime, datetime.datetime]:
    stamps = dict(
        (m.group(2), datetime.datetime.fromisoformat(m.group(1)))
        for m in re.finditer(r"^\[ssh \S+ (\S+)\] (run started|run ended)", log.read_text(), re.M)
    )
    return stamps["run started"], stamps["run ended"]


def test_one_job_per_device_at_a_time_and_devices_in_parallel(ssh_workflow):
    workdir, _ = ssh_workflow
    logs = workdir / "logs/ssh"
    spans = {
        device: [
            job_interval(logs / f"speed/{MODEL}/mxnet/{device}-hybrid.log"),
            job_interval(logs / f"voc/{MODEL}/mxnet/{device}.log"),
        ]
        for device in SSH_DEVICES
    }
    for (start1, end1), (start2, end2) in spans.values():
        assert end1 <= start2 or end2 <= start1, "two jobs of one device overlapped"
    a, b = spans.values()
    assert any(sa < eb and sb < ea for sa, ea in a for sb, eb in b), "devices ran one by one"


def test_progress_is_streamed_into_the_jobs_log(ssh_workflow):
    workdir, _ = ssh_workflow
    for device in ("cpu", *SSH_DEVICES):
        text = (workdir / f"logs/ssh/voc/{MODEL}/mxnet/{device}.log").read_text()
        lines = re.findall(r"detbench progress: voc .* (\d+)/4 images .* img/s, .* left", text)
        assert lines[0] == "0" and lines[-1] == "4", text


# ------------------------------------------------------------------------- faults


@pytest.fixture
def launch(ssh_workflow, monkeypatch, tmp_path):
    """Run the workflow's ``loop_a`` speed spec again through ``runs.execute`` in a fresh run
    dir, with ``device`` settings changed; returns (run dir, log, call)."""
    workdir, config = ssh_workflow
    monkeypatch.chdir(workdir)
    run_dir, log = tmp_path / "run", tmp_path / "run.log"
    run_dir.mkdir()
    spec_path = run_dir / "spec.json"
    shutil.copy(run_dirs(workdir, "loop_a")["speed"] / "spec.json", spec_path)

    def call(**changes):
        device = plan.device_entry(config, "loop_a")
        device["ssh"] = {**device["ssh"], **changes.pop("ssh", {})}
        return runs.execute(spec_path, None, log, device={**device, **changes})

    return run_dir, log, call


def wait_for(predicate, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def cut_when_running(server: LoopbackSSHD, log: Path, thread: threading.Thread) -> None:
    """Kill the sessions' sshd processes once the remote runner reports progress."""
    wait_for(lambda: not thread.is_alive() or (log.exists() and "progress:" in log.read_text()))
    assert thread.is_alive(), log.read_text()
    for pid in server.session_pids():
        os.kill(pid, signal.SIGKILL)


def in_thread(call, **kwargs) -> tuple[threading.Thread, dict]:
    outcome = {}

    def target():
        try:
            outcome["result"] = call(**kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def test_connection_cut_mid_run_is_retried(server, launch):
    run_dir, log, call = launch
    thread, outcome = in_thread(call, ssh={"retries": 1})
    cut_when_running(server, log, thread)
    thread.join(180)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result["status"] == "ok" and result["link"]["attempt"] == 2
    assert result["link"]["files_sent"] == 0
    text = log.read_text()
    assert "attempt 1 of 2 failed" in text and "connection lost" in text, text
    killed = int(re.search(r"stopping the remote runner \(pid (\d+)\)", text).group(1))
    assert not alive(killed)


def test_connection_cut_without_retry_fails_and_writes_nothing(server, launch):
    run_dir, log, call = launch
    thread, outcome = in_thread(call, ssh={"retries": 0})
    cut_when_running(server, log, thread)
    thread.join(180)
    error = outcome.get("error")
    assert isinstance(error, ssh.DeviceError), outcome
    assert "connection lost" in str(error) and "nothing was written" in str(error)
    assert sorted(p.name for p in run_dir.iterdir()) == ["spec.json"]
    killed = int(re.search(r"stopping the remote runner \(pid (\d+)\)", log.read_text()).group(1))
    assert not alive(killed)


def test_ctrl_c_stops_the_remote_runner(ssh_workflow, tmp_path):
    workdir, config = ssh_workflow
    run_dir, log = tmp_path / "run", tmp_path / "run.log"
    run_dir.mkdir()
    shutil.copy(run_dirs(workdir, "loop_a")["speed"] / "spec.json", run_dir / "spec.json")
    script = (
        "import json, sys; from detbench import plan, runs; "
        f"config = json.loads({json.dumps(json.dumps(config))}); "
        f"runs.execute({str(run_dir / 'spec.json')!r}, None, {str(log)!r}, "
        "device=plan.device_entry(config, 'loop_a'))"
    )
    job = subprocess.Popen([sys.executable, "-c", script], cwd=workdir, stderr=subprocess.PIPE)
    wait_for(lambda: log.exists() and "detbench progress:" in log.read_text())
    job.send_signal(signal.SIGINT)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode != 0 and b"KeyboardInterrupt" in stderr
    text = log.read_text()
    pid = int(re.search(r"stopping the remote runner \(pid (\d+)\)", text).group(1))
    assert not alive(pid), text
    assert sorted(p.name for p in run_dir.iterdir()) == ["spec.json"]


def test_unknown_host_key_is_refused(server, launch, tmp_path):
    _, _, call = launch
    other = tmp_path / "known_hosts"
    kind, key = keygen(tmp_path / "stranger").split()[:2]
    other.write_text(f"[127.0.0.1]:{server.port} {kind} {key}\n")
    with pytest.raises(ssh.DeviceError, match=r"host key of 127\.0\.0\.1:\d+ is not in .*refused"):
        call(known_hosts=str(other))


def test_missing_python_is_named(launch):
    _, _, call = launch
    with pytest.raises(ssh.DeviceError, match=r"no Python at /opt/none/bin/python3\.6 on"):
        call(python="/opt/none/bin/python3.6")


# ------------------------------------------------------------------------- pieces


def test_runner_archive_holds_every_module_the_runner_imports():
    import ast

    names = {p.as_posix() for p in runner_files()}
    for rel in sorted(names):
        tree = ast.parse((REPO / rel).read_text())
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            for module in modules:
                if module.startswith("detbench"):
                    path = module.replace(".", "/")
                    assert (
                        f"{path}.py" in names
                        or f"{path}/__init__.py" in names
                        or (not (REPO / f"{path}.py").exists() and not (REPO / path).is_dir())
                    ), f"{rel} imports {module}, which the runner archive lacks"
    assert runner_archive() == runner_archive()  # reproducible: one hash per runner version


class Wildcards:
    def __init__(self, device: str):
        self.device = device


def test_device_names_and_wildcard_pattern():
    config = {"devices": ["cpu", {"name": "nano", "gpu": 0}], "ssh": {"retries": 1}}
    assert plan.device_names(config) == ["cpu", "nano"]
    pattern = re.compile(plan.device_pattern(config))
    assert all(pattern.fullmatch(n) for n in ("cpu", "gpu1", "nano"))
    assert not pattern.fullmatch("nano2")
    entry = plan.device_entry(config, "nano")
    assert entry["context"] == "gpu0" and entry["ssh"] == {"retries": 1}
    assert plan.device_entry(config, "cpu") == {"name": "cpu"}
    assert plan.run_threads(config, "nano", 8) == 0 and plan.run_threads(config, "cpu", 8) == 8
    resources = plan.device_resources(config)
    assert resources.keys() == {"ssh_device_nano", "benchmark_slots"}
    assert plan.global_resources(config) == {"ssh_device_nano": 1, "benchmark_slots": 1}
    fleet = {"devices": ["cpu", *({"name": n} for n in ("a", "b", "c"))]}
    slots = plan.device_resources(fleet)["benchmark_slots"]
    assert plan.global_resources(fleet)["benchmark_slots"] == 3
    assert [slots(Wildcards(d)) for d in ("a", "b", "cpu", "gpu0")] == [1, 1, 3, 3]
    assert plan.device_resources({"devices": ["cpu", "gpu0"]}) == {}


NANO = "mobilenetv2_yolov3_nano_voc"


@pytest.mark.parametrize("python", ["orchestrator", "seed"])
def test_opencv_backend_on_a_device_over_ssh(ssh_workflow, monkeypatch, python):
    """The real darknet model on the opencv backend, on a device over SSH: it runs where the
    device's Python has OpenCV (here the orchestrator's own venv as the device's Python), and
    is a recorded failure naming cv2 on the seed stack, which has none."""
    workdir, config = ssh_workflow
    monkeypatch.chdir(workdir)
    folder = REPO / "models/mobilenetv2-yolov3-nano-voc"
    weights = {"source": "darknet", "untrained": False, "format": "darknet"}
    for key, name in (("path", "weights"), ("cfg", "cfg")):
        target = Path(f"weights/darknet/{NANO}.{name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / f"MobileNetV2-YOLOv3-Nano-voc.{name}", target)
        weights[key] = str(target)
        weights[f"{key}_sha256" if key == "cfg" else "sha256"] = ssh.sha256_file(target)
    spec = json.loads((run_dirs(workdir, "loop_a")["voc"] / "spec.json").read_text())
    spec.update(model=NANO, family="darknet", backend="opencv", mode="native", weights=weights)
    run_dir = Path(f"results/ssh/voc/{NANO}/opencv/loop_a-{python}")
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(spec))
    device = plan.device_entry(config, "loop_a")
    device["python"] = sys.executable if python == "orchestrator" else str(SEED_PYTHON)
    result = runs.execute(run_dir / "spec.json", None, run_dir / "run.log", device=device)
    assert result["backend"]["name"] == "opencv" and result["link"]["attempt"] == 1
    if python == "seed":
        assert result["status"] == "failed" and "cv2" in result["error"], result["error"]
        return
    assert result["status"] == "ok", result["error"]
    assert result["backend"]["model_format"] == "darknet"
    assert result["versions"]["python"].startswith("3.11")
    with np.load(run_dir / "detections.npz", allow_pickle=False) as found:
        assert list(found["image_ids"]) == spec["image_ids"]
