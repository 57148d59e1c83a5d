"""Write a run's self-contained spec and execute it with the device runner's interpreter.

The spec holds everything the runner needs, with paths relative to the repository root, so the
same run directory can be executed on another host (DESIGN §9) and copied back.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from detbench import zoo
from detbench.contract import MXNET, RESULT, RUN_OUTPUTS, DetbenchError
from detbench.runner.nets import speed_shape

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_WAIT_S = 60.0
_PR_SET_PDEATHSIG = 1


class RunnerCrashed(DetbenchError, RuntimeError):
    """The runner process died without recording a result (not a model failure: those are
    recorded as failed results)."""


class Terminated(BaseException):
    """SIGTERM reached the job (or its parent, Snakemake, died): stop the runner, clean up."""


def _on_parent_death(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent() -> None:
    """Make this job process end with the Snakemake process that started it.

    SIGTERM, sent by Linux when the parent dies (even by SIGKILL) or by anyone else, raises
    :class:`Terminated`, so :func:`execute` stops its runner and removes the partial run files.
    """

    def terminated(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the cleanup finish
        raise Terminated(f"signal {signum}: the job was stopped")

    signal.signal(signal.SIGTERM, terminated)
    _on_parent_death(signal.SIGTERM)  # (no getppid() check: Snakemake may be PID 1 in a container)


def _runner_dies_with(parent: int):
    """``preexec_fn`` of the runner: SIGKILL when ``parent`` (this job process) dies."""

    def preexec():
        _on_parent_death(signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _lock_run_dir(run_dir: Path) -> int:
    """An exclusive lock on ``run_dir`` (flock on the directory itself), shared with the runner
    (it inherits the descriptor), so two runners never write one run directory at once."""
    fd = os.open(run_dir, os.O_RDONLY)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise DetbenchError(
                    f"{run_dir}: another runner still holds this run directory after "
                    f"{LOCK_WAIT_S:.0f} s; stop it (see `fuser -v {run_dir}`) and rerun"
                ) from None
            time.sleep(0.2)


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
    backend: str = MXNET,
    model_file: dict | None = None,
) -> dict:
    """The runner's spec for one speed or voc run (``settings``: the model's speed / voc_run).

    ``backend``: the inference engine; ``model_file``: the file it runs when that is not the
    MXNet weights (the ONNX export's entry, :func:`detbench.weights.onnx_entry`)."""
    dataset = read_json(dataset_json)
    if kind == "speed":
        height, width = speed_shape(model, settings["size"])
        input_shape = [3, height, width]
        warmup, repeats = settings["warmup"], settings["repeats"]
    else:
        input_shape, warmup, repeats = None, settings["warmup"], 1
    family = zoo.model_info(model)["family"]
    spec = {
        "kind": kind,
        "config_name": config_name,
        "model": model,
        "family": family,
        "device": device,
        "mode": mode,
        "backend": backend,
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
    if model_file is not None:
        spec["model_file"] = model_file
    return spec


def write_spec(spec: dict, path: str | Path) -> Path:
    """``spec.json``: what the spec rule hands the run rule (docs/contracts.md)."""
    from detbench.files import write_json_atomic

    return write_json_atomic(path, spec)


def execute(
    spec_path: str | Path,
    python: str | None,
    log_path: str | Path,
    device: dict | None = None,
) -> dict:
    """Run ``python -m detbench.runner run spec_path`` (the spec's directory is the run
    directory) with output to ``log_path``, and return the result it recorded. A ``device``
    entry with a ``host`` (:func:`detbench.plan.device_entry`) runs it on that device over SSH
    instead (:mod:`detbench.remote.ssh`), whose files come back whole or not at all.

    This process owns the runner (see :func:`launch`) and holds the run directory's lock with
    it; whatever an earlier, killed runner left in the run directory is removed first."""
    spec_path = Path(spec_path)
    run_dir = spec_path.parent
    lock = _lock_run_dir(run_dir)
    try:
        remove_outputs(run_dir)
        if device is not None and device.get("host"):  # a device over SSH (DESIGN §9)
            from detbench.remote import ssh

            code = ssh.execute(read_json(spec_path), run_dir, device, log_path)
        else:
            code = launch(
                ["detbench.runner", "run", str(spec_path)], python, log_path,
                pass_fds=(lock,), on_interrupt=lambda: remove_outputs(run_dir),
            )  # fmt: skip
    finally:
        os.close(lock)
    result_path = run_dir / RESULT
    if not result_path.exists():
        raise RunnerCrashed(
            f"the runner exited with code {code} and recorded no result in {run_dir}; "
            f"see {log_path}"
        )
    return read_json(result_path)


def launch(
    module_args: list[str],
    python: str | None,
    log_path: str | Path | None,
    *,
    pass_fds: tuple[int, ...] = (),
    on_interrupt=None,
) -> int:
    """The one way detbench starts the device runner: ``python -m <module_args>`` (the
    orchestrator's own interpreter when ``python`` is None) with the repository importable and
    its output appended to ``log_path``; returns its exit code.

    This process owns the runner: the runner is killed when this process dies (Linux), and is
    stopped when this process is interrupted (Ctrl-C) or terminated, after which
    ``on_interrupt`` runs (e.g. removing partial outputs) and the interrupt propagates."""
    command = [python or sys.executable, "-m", *module_args]
    with open(log_path or os.devnull, "a") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        runner = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=runner_env(), pass_fds=pass_fds,
            preexec_fn=_runner_dies_with(os.getpid()),
        )  # fmt: skip
        try:
            return runner.wait()
        except BaseException as exc:  # Ctrl-C or SIGTERM: stop the runner, leave no partial output
            _stop(runner, interrupt_now=not isinstance(exc, KeyboardInterrupt))
            if on_interrupt is not None:
                on_interrupt()
            raise


def _stop(runner: subprocess.Popen, grace_s: float = 10.0, interrupt_now: bool = False) -> None:
    """Let an interrupted runner finish its own interrupt handling (Ctrl-C reaches the whole
    process group), then interrupt it, then kill it. ``interrupt_now``: the runner got no
    signal of its own (this process was terminated), so interrupt it at once."""
    actions = (
        (signal.SIGINT, signal.SIGKILL) if interrupt_now else (None, signal.SIGINT, signal.SIGKILL)
    )
    for action in actions:
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
    telemetry.csv is half a series anyway. ``spec.json`` stays: it is the spec rule's output.
    """
    run_dir = Path(run_dir)
    for name in RUN_OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
    for leftover in sorted(run_dir.glob("*.tmp*")):
        leftover.unlink(missing_ok=True)
