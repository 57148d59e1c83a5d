"""Model weights: where they come from, their hashes, and the JSON sidecar beside each file.

Sidecar (``<model>.json`` next to ``<model>.params``): ``model``, ``source``, ``untrained``,
``sha256``, ``size_bytes`` and source details (e.g. the seed of untrained weights).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from detbench.runs import REPO_ROOT


class WeightsError(RuntimeError):
    """Weights could not be obtained or failed their hash check; the message says which file."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sidecar(params_path: str | Path, sidecar_path: str | Path, **facts) -> dict:
    """Hash ``params_path`` and write its sidecar atomically; returns the sidecar."""
    sidecar = {
        **facts,
        "sha256": sha256_file(params_path),
        "size_bytes": os.path.getsize(params_path),
    }
    tmp = f"{sidecar_path}.tmp"
    Path(tmp).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, sidecar_path)
    return sidecar


def make_untrained(
    model: str,
    seed: int,
    params_path: str | Path,
    sidecar_path: str | Path,
    python: str | None = None,
    log_path: str | Path | None = None,
) -> dict:
    """Seeded, untrained weights made by the device runner (the only code importing mxnet).

    Untrained weights are for the offline demo: their detections and mAP mean nothing, and the
    sidecar's ``untrained: true`` carries that fact into every result, metric and figure."""
    command = [
        python or sys.executable, "-m", "detbench.runner", "init-weights",
        "--model", model, "--seed", str(seed), "--out", str(params_path),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(log_path or os.devnull, "a") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise WeightsError(
            f"making untrained weights for {model} failed (exit {code}); see {log_path}"
        )
    return write_sidecar(
        params_path, sidecar_path, model=model, source="untrained", untrained=True, seed=seed
    )
