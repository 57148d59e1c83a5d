"""One table of backends: which engine to deploy each model with (``reports/<name>/backends.csv``).

One row per model, backend and device, as Ultralytics' ``benchmark()`` answers "which format?":
whether it ran, the size of the file the backend loads, mAP from the voc run, batch-1 latency and
throughput from the speed run (MXNet: its hybrid mode where measured), and an accuracy gate: a
backend whose mAP differs from MXNet's on the same images and device by more than
``GATE_POINTS`` is flagged (MLPerf keeps 99 % of the reference accuracy).

Status: ``ran`` (every run of the row ok), ``export_failed`` (the ONNX export the backend needs
failed; its record says why), ``export_ok_run_failed`` (the model file was ready, a run failed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from detbench import zoo
from detbench.contract import MXNET, RESULT
from detbench.files import write_text_atomic
from detbench.report.aggregate import number as _number
from detbench.report.aggregate import read_summary

COLUMNS = ["model", "backend", "precision", "status", "size_mb", "mAP", "latency_p50_ms", "fps",
           "error"]  # fmt: skip
EXTRA_COLUMNS = ["device", "untrained", "mAP_mxnet", "mAP_delta_points", "accuracy_gate",
                 "nms", "engine", "speed_mode"]  # fmt: skip
GATE_POINTS = 1.0  # mAP points (0.01 mAP)
STATUSES = ("ran", "export_ok_run_failed", "export_failed")
_SIZE_KEYS = ("params", "cfg", "symbol")  # the MXNet weights files (darknet: .weights + .cfg)


def model_size_mb(files: dict[str, str], backend: str) -> float | None:
    """Megabytes of what ``backend`` loads: the ONNX file where it runs the export, else the
    weights files (``files``: :func:`detbench.plan.run_inputs`)."""
    paths = [files["onnx"]] if "onnx" in files else [files[k] for k in _SIZE_KEYS if k in files]
    sizes = [Path(p).stat().st_size for p in paths if Path(p).is_file()]
    if not sizes or (backend != MXNET and "onnx" in files and sizes == [0]):
        return None  # a failed export leaves an empty placeholder
    return round(sum(sizes) / 1e6, 3)


def _engine(run_dir: str | float, root: Path) -> str | None:
    """What the backend chose for the run (execution providers, optimisation level, OpenCV
    target), from its result.json ``backend`` entry."""
    if not isinstance(run_dir, str):
        return None
    path = root / run_dir / RESULT
    if not path.is_file():
        return None
    info = json.loads(path.read_text()).get("backend") or {}
    picked = {k: v for k, v in sorted(info.items()) if k != "name" and v not in (None, "", [])}
    return json.dumps(picked, sort_keys=True) if picked else None


def _speed_run(runs: pd.DataFrame, backend: str) -> dict | None:
    speed = runs[runs["kind"] == "speed"]
    if speed.empty:
        return None
    if backend == MXNET and (speed["mode"] == "hybrid").any():
        speed = speed[speed["mode"] == "hybrid"]
    return speed.iloc[0].to_dict()


def backend_rows(
    summary: pd.DataFrame, model_files: dict[str, dict[str, str]], root: Path | str = "."
) -> pd.DataFrame:
    """The backends table from the run summary and each ``model|backend``'s files (weights,
    and the ONNX export with its record where the backend runs it)."""
    root = Path(root)
    summary = summary.copy()
    if "backend" not in summary.columns:
        summary["backend"] = MXNET
    summary["backend"] = summary["backend"].fillna(MXNET)
    rows = []
    for (model, backend, device), runs in summary.groupby(
        ["model", "backend", "device"], sort=True
    ):
        files = model_files.get(f"{model}|{backend}", {})
        record = json.loads(Path(files["record"]).read_text()) if "record" in files else {}
        speed = _speed_run(runs, backend)
        voc = runs[runs["kind"] == "voc"]
        voc = voc.iloc[0].to_dict() if not voc.empty else None
        failed = runs[runs["status"] == "failed"]
        if record and record.get("status") != "ok":
            status, error = "export_failed", record.get("error") or "export failed"
        elif not failed.empty:
            status, error = "export_ok_run_failed", failed.iloc[0]["error"]
        else:
            status, error = "ran", None
        ok = status == "ran"
        rows.append(
            {
                "model": model,
                "backend": backend,
                "precision": "int8" if zoo.model_info(model)["int8"] else "fp32",
                "status": status,
                "size_mb": model_size_mb(files, backend) if files else None,
                "mAP": _number(voc["mAP"]) if voc and voc["status"] == "ok" else None,
                "latency_p50_ms": _number(speed["latency_p50_ms"]) if speed and ok else None,
                "fps": _number(speed["images_per_s"]) if speed and ok else None,
                "error": error,
                "device": device,
                "untrained": bool(runs["untrained"].any()),
                "nms": record.get("nms"),
                "engine": _engine((voc or speed or {}).get("run_dir"), root),
                "speed_mode": speed["mode"] if speed else None,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS + EXTRA_COLUMNS)
    return apply_gate(table)


def apply_gate(table: pd.DataFrame) -> pd.DataFrame:
    """``mAP_mxnet``, ``mAP_delta_points`` and ``accuracy_gate``: ``pass`` within
    ``GATE_POINTS`` of MXNet's mAP on the same model and device, ``FLAGGED`` beyond it, ``n/a``
    without both mAPs (MXNet's own row is the reference)."""
    table = table.copy()
    reference = table[table["backend"] == MXNET].set_index(["model", "device"])["mAP"]
    gates, refs, deltas = [], [], []
    for rec in table.to_dict("records"):
        ref = reference.get((rec["model"], rec["device"]))
        ref = _number(ref)
        mine = _number(rec["mAP"])
        refs.append(ref)
        if rec["backend"] == MXNET:
            deltas.append(None)
            gates.append("reference" if mine is not None else "n/a")
        elif ref is None or mine is None:
            deltas.append(None)
            gates.append("n/a")
        else:
            delta = round((mine - ref) * 100.0, 3)
            deltas.append(delta)
            flagged = abs(delta) > GATE_POINTS
            gates.append(f"FLAGGED: {delta:+.2f} points vs MXNet" if flagged else "pass")
    table["mAP_mxnet"], table["mAP_delta_points"], table["accuracy_gate"] = refs, deltas, gates
    return table


def write_backends(
    summary_csv: str | Path,
    model_files: dict[str, dict[str, str]],
    out_csv: str | Path,
    root: Path | str = ".",
) -> pd.DataFrame:
    """Write ``backends.csv`` (see :func:`backend_rows`) atomically; returns the table."""
    table = backend_rows(read_summary(summary_csv), model_files, root)
    write_text_atomic(out_csv, table.to_csv(index=False))
    return table


def read_backends(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path)


def draw_backends(table: pd.DataFrame, path: str | Path) -> Path:
    """The table as a figure: batch-1 throughput of each model (rows) on each backend (bars),
    one panel per device, each bar labelled with mAP, p50 latency and the accuracy gate; a
    backend that did not run is a hatched placeholder naming its status and error."""
    import seaborn as sns
    from matplotlib.figure import Figure

    from detbench.report.figures import DPI, save_png, style

    devices = sorted(table["device"].dropna().unique()) or ["(no runs)"]
    models = sorted(table["model"].unique())
    backends = [b for b in ("mxnet", "onnxruntime", "opencv") if b in set(table["backend"])]
    colors = dict(zip(backends, sns.color_palette(n_colors=max(1, len(backends))), strict=False))
    height = 1.2 + 0.45 * max(1, len(models) * max(1, len(backends)))
    with style():
        fig = Figure(figsize=(6.5 * len(devices), height), dpi=DPI, layout="constrained")
        axes = fig.subplots(1, len(devices), squeeze=False)[0]
        width = 0.8 / max(1, len(backends))
        for ax, device in zip(axes, devices, strict=True):
            mine = table[table["device"] == device]
            top = max([v for v in mine["fps"] if _number(v) is not None] or [1.0])
            for i, model in enumerate(models):
                for j, backend in enumerate(backends):
                    row = mine[(mine["model"] == model) & (mine["backend"] == backend)]
                    if row.empty:
                        continue
                    rec = row.iloc[0].to_dict()
                    y = i + (j - (len(backends) - 1) / 2) * width
                    fps = _number(rec["fps"])
                    if rec["status"] != "ran" or fps is None:
                        ax.barh(y, top * 0.15, width * 0.9, color="0.9", hatch="//",
                                edgecolor="0.5")  # fmt: skip
                        text = f"{backend}: {rec['status']}"
                        if isinstance(rec["error"], str):
                            text += f" ({rec['error'].splitlines()[0][:50]})"
                        ax.text(top * 0.17, y, text, va="center", fontsize=7, color="0.3")
                        continue
                    flagged = str(rec["accuracy_gate"]).startswith("FLAGGED")
                    ax.barh(y, fps, width * 0.9, color=colors[backend],
                            edgecolor="red" if flagged else "none", linewidth=2)  # fmt: skip
                    label = [backend, f"{fps:.1f} img/s"]
                    if _number(rec["latency_p50_ms"]) is not None:
                        label.append(f"p50 {rec['latency_p50_ms']:.1f} ms")
                    if _number(rec["mAP"]) is not None:
                        label.append(f"mAP {rec['mAP']:.3f}")
                    if flagged:
                        label.append(rec["accuracy_gate"])
                    ax.text(fps + top * 0.02, y, " · ".join(label), va="center", fontsize=7)
            ax.set_yticks(range(len(models)), models)
            ax.invert_yaxis()
            ax.set_xlim(0, top * 2.2)
            ax.set_xlabel("batch-1 throughput (images/s), higher is better")
            ax.set_title(str(device))
        title = "Backends: throughput, latency and mAP of each model per inference engine"
        if table["untrained"].any():
            title += "\n(untrained weights: mAP meaningless; the gate still compares backends)"
        fig.suptitle(title, fontsize=11, fontweight="bold")
        return save_png(fig, path)
