"""Aggregate run directories into ``reports/<name>/summary.csv`` (docs/contracts.md).

One row per run directory, built from its ``result.json`` and, when present, ``map.json``
(voc runs, written by evaluate); never from MLflow, so the report needs no tracking server.
Failed runs are rows like any other, with ``status=failed`` and their error text; the weights
source and the untrained flag are always filled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from detbench.contract import MAP, MXNET, RESULT, STATUSES, DetbenchError
from detbench.data.voc import VOC_CLASSES
from detbench.files import write_text_atomic
from detbench.runner import stats

AP_COLUMNS = [f"AP_{name}" for name in VOC_CLASSES]
TIMING_COLUMNS = [
    "total_wall_s", "model_s", "data_s", "first_batch_s", "images_per_s", "model_images_per_s",
]  # fmt: skip
LATENCY_COLUMNS = ["p50", "p90", "p99", "mean", "max"]
# Timings measured once per repeat (speed.repeats): each gets <timing>_<stat> columns.
REPEATED_TIMINGS = ["total_wall_s", "model_s", "data_s", "images_per_s", "model_images_per_s"]
SPREAD_STATS = ["median", "min", "max", "cv"]
SPREAD_COLUMNS = ["repeats", *[f"{t}_{s}" for t in REPEATED_TIMINGS for s in SPREAD_STATS]]
TELEMETRY_COLUMNS = [
    "gpu_temp_c_delta", "gpu_temp_c_max", "swap_used_mb_delta", "swap_used_mb_max",
    "ram_used_mb_max", "power_w_mean", "energy_j", "energy_j_per_image", "throttled",
]  # fmt: skip
COLUMNS = [
    "kind", "model", "backend", "device", "mode", "status", "error", "weights_source",
    "untrained", "batch_size", "image_count", *TIMING_COLUMNS,
    *[f"latency_{q}_ms" for q in LATENCY_COLUMNS], *SPREAD_COLUMNS,
    "mAP", "mAP_all_classes", *AP_COLUMNS, "accuracy_flag", *TELEMETRY_COLUMNS,
    "telemetry_backend", "dataset_fingerprint", "host", "run_dir",
]  # fmt: skip
SORT_KEYS = ["kind", "model", "backend", "device", "mode", "run_dir"]


class ReportError(DetbenchError, ValueError):
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


def repeat_values(timings: dict) -> dict[str, list[float]]:
    """Each repeated timing's value in every measured pass, from result.json ``timings``:
    ``repeat_total_wall_s`` / ``repeat_model_s`` / ``repeat_data_s`` (a result without a list
    and with one repeat has its single value), throughputs as ``measured_images`` / seconds."""
    values = {}
    for key in ("total_wall_s", "model_s", "data_s"):
        listed = timings.get(f"repeat_{key}")
        if listed is None and timings.get("repeats", 1) == 1 and timings.get(key) is not None:
            listed = [timings[key]]
        values[key] = [float(v) for v in listed or []]
    images = timings.get("measured_images")
    for key, seconds in (("images_per_s", "total_wall_s"), ("model_images_per_s", "model_s")):
        values[key] = [images / s for s in values[seconds] if s > 0] if images else []
    return values


def spread(values: list[float]) -> dict:
    """median, min, max and coefficient of variation (population std / mean) of one timing's
    repeats; cv is empty with fewer than two repeats, everything with none."""
    if not values:
        return dict.fromkeys(SPREAD_STATS)
    figures = stats.repeat_summary(values)
    if len(values) < 2:
        figures["cv"] = None
    return figures


def run_row(result_path: Path | str, map_path: Path | str | None = None) -> dict:
    """The summary row of one run: its ``result.json`` (or run directory) and ``map_path``."""
    result_path = Path(result_path)
    if result_path.name != RESULT:
        result_path = result_path / RESULT
    run_dir = result_path.parent
    result = _read_json(result_path, required=True)
    scores = _read_json(Path(map_path), required=True) if map_path else {}
    status = result.get("status")
    if status not in STATUSES:
        raise ReportError(
            f"{result_path}: expected status in {STATUSES}, got {status!r}"
        )

    weights = result.get("weights") or {}
    source = weights.get("source") or "unknown"
    timings = result.get("timings") or {}
    latency = timings.get("latency_ms") or {}
    telemetry = result.get("telemetry") or {}
    ap = scores.get("ap_per_class") or {}
    row = {
        **{key: result.get(key) for key in ("kind", "model", "device", "mode", "status")},
        "backend": (result.get("backend") or {}).get("name") or MXNET,
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
        "repeats": timings.get("repeats"),
        **{
            f"{key}_{stat}": value
            for key, values in repeat_values(timings).items()
            for stat, value in spread(values).items()
        },
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


def collect(runs: list[Path], maps: list[Path] | None = None) -> pd.DataFrame:
    """One row per run (``result.json`` paths or run dirs) with exactly the summary.csv columns,
    sorted by kind, model, device, mode (then run dir), so the table is the same whatever order
    the runs come in. ``maps``: the ``map.json`` files to score them with, matched by directory
    (the workflow's declared inputs); ``None`` takes the ``map.json`` beside each run, if any."""
    paths = [Path(p) if Path(p).name == RESULT else Path(p) / RESULT for p in runs]
    if maps is None:
        maps = [p.with_name(MAP) for p in paths if p.with_name(MAP).is_file()]
    by_dir = {Path(m).parent: Path(m) for m in maps}
    rows = [run_row(path, by_dir.get(path.parent)) for path in paths]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = frame.sort_values(SORT_KEYS, key=lambda col: col.fillna("").astype(str), kind="stable")
    return frame.reset_index(drop=True)


def write_summary(
    runs: list[Path], out_csv: Path | str, maps: list[Path] | None = None
) -> pd.DataFrame:
    """Write the summary of ``runs`` (see :func:`collect`) to ``out_csv`` atomically."""
    frame = collect(runs, maps)
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


def number(value) -> float | None:
    """A summary cell as a float; None for an empty cell, NaN or text."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
