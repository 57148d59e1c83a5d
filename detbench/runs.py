"""Write a run's self-contained spec and execute it with the device runner's interpreter.

The spec holds everything the runner needs, with paths relative to the repository root, so the
same run directory can be executed on another host (DESIGN §9) and copied back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from detbench import zoo
from detbench.runner.nets import speed_shape

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_OUTPUTS = ("result.json", "telemetry.csv", "detections.npz")


class RunnerCrashed(RuntimeError):
    """The runner process died without recording a result (not a model failure: those are
    recorded as failed results)."""


def read_json(path: str | Path) -> dict:
    with open(path) as handle:
        return json.load(handle)


def runner_env() -> dict[str, str]:
    """This process's environment with the repository importable, for a runner interpreter
    (e.g. a Jetson's Python 3.6) that has no detbench installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def build_spec(
    *,
    kind: str,
    config_name: str,
    model: str,
    device: str,
    mode: str,
    settings: dict,
    image_ids: list[str],
    dataset_json: str,
    weights: dict,
    telemetry_interval_s: float,
    threads: int | None,
) -> dict:
    """The runner's spec for one speed or voc run (``settings``: the model's speed / voc_run)."""
    dataset = read_json(dataset_json)
    if kind == "speed":
        height, width = speed_shape(model, settings["size"])
        input_shape = [3, height, width]
        warmup, repeats = settings["warmup"], settings["repeats"]
    else:
        input_shape, warmup, repeats = None, settings["warmup"], 1
    family = zoo.model_info(model)["family"]
    return {
        "kind": kind,
        "config_name": config_name,
        "model": model,
        "family": family,
        "device": device,
        "mode": mode,
        "batch_size": settings["batch"],
        "input_shape": input_shape,
        "warmup": warmup,
        "repeats": repeats,
        "devkit": dataset["devkit"],
        "image_ids": list(image_ids),
        "weights": weights,
        "dataset": {
            "name": config_name,
            "fingerprint": dataset["fingerprint"],
            "split": dataset["split"],
        },
        "telemetry_interval_s": telemetry_interval_s,
        "threads": threads,
    }


def execute(
    spec: dict,
    run_dir: str | Path,
    python: str | None,
    log_path: str | Path,
    device: dict | None = None,
) -> dict:
    """Write ``spec.json`` into ``run_dir``, run ``python -m detbench.runner run`` on it with
    output to ``log_path``, and return the result it recorded. A ``device`` entry with a ``host``
    (:func:`detbench.plan.device_entry`) runs it on that device over SSH instead."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    result_path = run_dir / "result.json"
    result_path.unlink(missing_ok=True)
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    if device is not None and device.get("host"):  # a device over SSH (DESIGN §9)
        from detbench.remote import ssh

        remove_outputs(run_dir)
        code = ssh.execute(spec, run_dir, device, log_path)
        if not result_path.exists():
            raise RunnerCrashed(f"the runner on {device['name']} exited with code {code} and "
                                f"recorded no result; see {log_path}")  # fmt: skip
        return read_json(result_path)
    command = [python or sys.executable, "-m", "detbench.runner", "run", str(spec_path)]
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        runner = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=runner_env())
        try:
            code = runner.wait()
        except BaseException:  # Ctrl-C: stop the runner, then leave no partial output behind
            _stop(runner)
            remove_outputs(run_dir)
            raise
    if not result_path.exists():
        raise RunnerCrashed(
            f"the runner exited with code {code} and recorded no result in {run_dir}; "
            f"see {log_path}"
        )
    return read_json(result_path)


def _stop(runner: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Let an interrupted runner finish its own interrupt handling (Ctrl-C reaches the whole
    process group), then interrupt it, then kill it."""
    for action in (None, signal.SIGINT, signal.SIGKILL):
        if action is not None and runner.poll() is None:
            runner.send_signal(action)
        try:
            runner.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def remove_outputs(run_dir: str | Path) -> None:
    """Delete the run files of an interrupted run (and their temporary files).

    A Snakemake job interrupted part-way leaves its existing outputs marked incomplete, and the
    next ``snakemake`` then refuses to start (IncompleteFilesException); an interrupted run's
    telemetry.csv is half a series anyway. ``spec.json`` stays: it is rewritten by the next run.
    """
    run_dir = Path(run_dir)
    for name in RUN_OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
    for leftover in sorted(run_dir.glob("*.tmp*")):
        leftover.unlink(missing_ok=True)
