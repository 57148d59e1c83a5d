"""The table of backends (detbench.report.backends) and the backends axis of the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image

from detbench import plan
from detbench.report import backends
from detbench.report.aggregate import COLUMNS

MODEL = "ssd_512_mobilenet1.0_voc"


def _row(kind, backend, mode, *, status="ok", mAP=None, fps=20.0, p50=50.0, error=None):
    row = dict.fromkeys(COLUMNS)
    row.update(
        kind=kind, model=MODEL, backend=backend, device="cpu", mode=mode, status=status,
        error=error, untrained=False, images_per_s=fps if status == "ok" else None,
        latency_p50_ms=p50 if status == "ok" else None, mAP=mAP,
        run_dir=f"results/t/{kind}/{MODEL}/{backend}/cpu",
    )  # fmt: skip
    return row


def _files(tmp_path: Path, export: dict | None) -> dict:
    params = tmp_path / "w.params"
    params.write_bytes(b"x" * 2_000_000)
    files = {f"{MODEL}|mxnet": {"params": str(params), "sidecar": str(tmp_path / "w.json")}}
    if export is not None:
        onnx, record = tmp_path / "m.onnx", tmp_path / "m.json"
        onnx.write_bytes(b"o" * (3_000_000 if export["status"] == "ok" else 0))
        record.write_text(json.dumps(export))
        files[f"{MODEL}|onnxruntime"] = {**files[f"{MODEL}|mxnet"], "onnx": str(onnx),
                                         "record": str(record)}  # fmt: skip
    return files


def test_table_columns_status_size_and_gate(tmp_path):
    summary = pd.DataFrame(
        [
            _row("speed", "mxnet", "imperative", fps=5.0, p50=200.0),
            _row("speed", "mxnet", "hybrid", fps=10.0, p50=100.0),
            _row("voc", "mxnet", "hybrid", mAP=0.700),
            _row("speed", "onnxruntime", "native", fps=25.0, p50=40.0),
            _row("voc", "onnxruntime", "native", mAP=0.680),
        ]
    )
    export = {"status": "ok", "nms": "class-agnostic"}
    table = backends.backend_rows(summary, _files(tmp_path, export), tmp_path)
    assert list(table.columns[:9]) == backends.COLUMNS
    mx, ort = table.set_index("backend").loc["mxnet"], table.set_index("backend").loc["onnxruntime"]
    assert (mx["status"], mx["fps"], mx["latency_p50_ms"], mx["speed_mode"]) == (
        "ran", 10.0, 100.0, "hybrid",
    )  # fmt: skip
    assert mx["size_mb"] == 2.0 and ort["size_mb"] == 3.0
    assert mx["accuracy_gate"] == "reference" and mx["precision"] == "fp32"
    assert ort["mAP_delta_points"] == -2.0
    assert ort["accuracy_gate"].startswith("FLAGGED") and ort["nms"] == "class-agnostic"


def test_within_one_point_passes(tmp_path):
    summary = pd.DataFrame(
        [_row("voc", "mxnet", "hybrid", mAP=0.700), _row("voc", "onnxruntime", "native", mAP=0.691)]
    )
    table = backends.backend_rows(summary, _files(tmp_path, {"status": "ok"}), tmp_path)
    assert table.set_index("backend").loc["onnxruntime", "accuracy_gate"] == "pass"


def test_failed_export_and_failed_run_are_rows_with_their_error(tmp_path):
    export = {"status": "failed", "error": "No conversion function registered for op type X"}
    summary = pd.DataFrame(
        [
            _row("voc", "mxnet", "hybrid", status="failed", error="MXNetError: out of memory"),
            _row("voc", "onnxruntime", "native", status="failed", error="WeightsRefused: ..."),
        ]
    )
    table = backends.backend_rows(summary, _files(tmp_path, export), tmp_path).set_index("backend")
    assert table.loc["onnxruntime", "status"] == "export_failed"
    assert table.loc["onnxruntime", "error"] == export["error"]
    assert pd.isna(table.loc["onnxruntime", "size_mb"])  # the empty placeholder is no size
    assert table.loc["mxnet", "status"] == "export_ok_run_failed"
    assert table.loc["mxnet", "error"] == "MXNetError: out of memory"
    out = backends.draw_backends(table.reset_index(), tmp_path / "backends.png")
    assert Image.open(out).size[0] > 300


def test_backends_axis_paths_modes_and_inputs():
    config = {
        "name": "t", "models": ["mobilenetv2_yolov3_nano_voc", MODEL],
        "backends": ["mxnet", "onnxruntime", "opencv"], "devices": ["cpu"],
        "speed": {"modes": ["imperative", "hybrid"]},
        "weights": {"source": "untrained", "per_model": {"mobilenetv2_yolov3_nano_voc": "darknet"}},
    }  # fmt: skip
    dirs = plan.speed_dirs(config)
    assert f"results/t/speed/{MODEL}/mxnet/cpu-hybrid" in dirs
    assert f"results/t/speed/{MODEL}/onnxruntime/cpu-native" in dirs
    assert not any(d.endswith("onnxruntime/cpu-hybrid") for d in dirs)
    assert len(dirs) == 2 * (2 + 1 + 1)
    # OpenCV reads darknet models from .cfg/.weights, the others from the ONNX export
    assert "onnx" not in plan.run_inputs(config, "mobilenetv2_yolov3_nano_voc", "opencv")
    onnx = plan.run_inputs(config, MODEL, "opencv")["onnx"]
    assert onnx == f"weights/onnx/untrained/{MODEL}.onnx"
    assert "onnx" not in plan.run_inputs(config, MODEL, "mxnet")
    voc = {"batch": 8, "warmup": 1, "mode": "hybrid"}
    config["voc_run"] = voc
    assert plan.run_settings(config, MODEL, "voc_run", "onnxruntime")["mode"] == "native"
    assert plan.run_settings(config, MODEL, "voc_run", "mxnet")["mode"] == "hybrid"
