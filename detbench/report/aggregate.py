"""Aggregate run directories into ``reports/<name>/summary.csv`` (docs/contracts.md).

One row per run directory, built from its ``result.json`` and, when present, ``map.json``
(voc runs, written by evaluate); never from MLflow, so the report needs no tracking server.
Failed runs are rows like any other, with ``status=failed`` and their error text; the weights
source and the untrained flag are always filled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from detbench.data.voc import VOC_CLASSES
from detbench.files import write_text_atomic

AP_COLUMNS = [f"AP_{name}" for name in VOC_CLASSES]
TIMING_COLUMNS = [
    "total_wall_s", "model_s", "data_s", "first_batch_s", "images_per_s", "model_images_per_s",
]  # fmt: skip
LATENCY_COLUMNS = ["p50", "p90", "p99", "mean", "max"]
TELEMETRY_COLUMNS = [
    "gpu_temp_c_delta", "gpu_temp_c_max", "swap_used_mb_delta", "swap_used_mb_max",
    "ram_used_mb_max", "power_w_mean", "energy_j", "energy_j_per_image", "throttled",
]  # fmt: skip
COLUMNS = [
    "kind", "model", "device", "mode", "status", "error", "weights_source", "untrained",
    "batch_size", "image_count", *TIMING_COLUMNS,
    *[f"latency_{q}_ms" for q in LATENCY_COLUMNS],
    "mAP", "mAP_all_classes", *AP_COLUMNS, "accuracy_flag", *TELEMETRY_COLUMNS,
    "telemetry_backend", "dataset_fingerprint", "host", "run_dir",
]  # fmt: skip
SORT_KEYS = ["kind", "model", "device", "mode", "run_dir"]
STATUSES = ("ok", "failed")


class ReportError(ValueError):
    """A run directory cannot be aggregated; the message names the file."""


def _read_json(path: Path, required: bool) -> dict:
    if not path.is_file():
        if required:
            raise ReportError(f"{path}: result.json missing; is {path.parent} a finished run dir?")
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _display_path(path: Path) -> str:
    """The run dir relative to the working directory when it lies below it (contracts: no
    absolute paths), else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def run_row(run_dir: Path | str) -> dict:
    """The summary row of one run directory (``result.json`` itself is accepted too)."""
    run_dir = Path(run_dir)
    if run_dir.name == "result.json":
        run_dir = run_dir.parent
    result = _read_json(run_dir / "result.json", required=True)
    scores = _read_json(run_dir / "map.json", required=False)
    status = result.get("status")
    if status not in STATUSES:
        raise ReportError(
            f"{run_dir / 'result.json'}: expected status in {STATUSES}, got {status!r}"
        )

    weights = result.get("weights") or {}
    source = weights.get("source") or "unknown"
    timings = result.get("timings") or {}
    latency = timings.get("latency_ms") or {}
    telemetry = result.get("telemetry") or {}
    ap = scores.get("ap_per_class") or {}
    row = {
        **{key: result.get(key) for key in ("kind", "model", "device", "mode", "status")},
        "error": (result.get("error") or "failed, no error text recorded")
        if status == "failed"
        else None,
        "weights_source": source,
        "untrained": bool(
            weights.get("untrained", source == "untrained") or scores.get("weights_untrained")
        ),
        "batch_size": result.get("batch_size"),
        "image_count": result.get("image_count"),
        **{key: timings.get(key) for key in TIMING_COLUMNS},
        **{f"latency_{q}_ms": latency.get(q) for q in LATENCY_COLUMNS},
        "mAP": scores.get("mAP"),
        "mAP_all_classes": scores.get("mAP_all_classes"),
        **{f"AP_{name}": ap.get(name) for name in VOC_CLASSES},
        "accuracy_flag": scores.get("accuracy_flag"),
        **{key: telemetry.get(key) for key in TELEMETRY_COLUMNS},
        "telemetry_backend": telemetry.get("backend"),
        "dataset_fingerprint": (result.get("dataset") or {}).get("fingerprint"),
        "host": (result.get("host") or {}).get("hostname"),
        "run_dir": _display_path(run_dir),
    }
    return row


def collect(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per run dir with exactly the summary.csv columns, sorted by kind, model, device,
    mode (then run dir), so the table is the same whatever order the dirs come in."""
    frame = pd.DataFrame([run_row(path) for path in run_dirs], columns=COLUMNS)
    frame = frame.sort_values(SORT_KEYS, key=lambda col: col.fillna("").astype(str), kind="stable")
    return frame.reset_index(drop=True)


def write_summary(run_dirs: list[Path], out_csv: Path | str) -> pd.DataFrame:
    """Write the summary of ``run_dirs`` to ``out_csv`` atomically (temp file, then rename)."""
    frame = collect(run_dirs)
    write_text_atomic(out_csv, frame.to_csv(index=False))
    return frame


def read_summary(path: Path | str) -> pd.DataFrame:
    """Read a summary.csv back with its types (``untrained`` as bool, text columns as str/NaN)."""
    frame = pd.read_csv(path)
    missing = [col for col in COLUMNS if col not in frame.columns]
    if missing:
        raise ReportError(f"{path}: expected the summary.csv columns, missing {missing}")
    frame["untrained"] = frame["untrained"].astype(str).str.lower().eq("true")
    return frame
