"""A run that failed before timing is drawn once, as failed: never as a telemetry trace of the
seconds before it failed. The failed run is real: the device runner on a GPU no host has."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.text import Text

from detbench.report import figures
from detbench.report.aggregate import read_summary, write_summary

REPO = Path(__file__).resolve().parent.parent
MODEL = "mobilenetv2_yolov3_nano_voc"
NANO = REPO / "models" / "mobilenetv2-yolov3-nano-voc"
TELEMETRY_HEADER = (
    "t_s,cpu_percent,ram_used_mb,swap_used_mb,gpu_util_percent,gpu_temp_c,cpu_temp_c,"
    "gpu_mem_used_mb,power_w"
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _failed_run(root: Path) -> Path:
    """The runner's own result.json and telemetry.csv of a voc run on gpu99 (absent here)."""
    from detbench.runner.run import run_spec

    run_dir = root / "results" / "t" / "voc" / MODEL / "gpu99"
    run_dir.mkdir(parents=True)
    cfg, weights = (
        NANO / "MobileNetV2-YOLOv3-Nano-voc.cfg",
        NANO / "MobileNetV2-YOLOv3-Nano-voc.weights",
    )
    spec = {
        "kind": "voc", "config_name": "t", "model": MODEL, "device": "gpu99", "mode": "hybrid",
        "batch_size": 8, "input_shape": None, "warmup": 1, "repeats": 1,
        "devkit": str(root / "VOCdevkit"), "image_ids": ["000001"],
        "weights": {"source": "darknet", "untrained": False, "format": "darknet",
                    "path": str(weights), "sha256": _digest(weights),
                    "cfg": str(cfg), "cfg_sha256": _digest(cfg)},
        "dataset": {"name": "t", "fingerprint": "x", "split": "test"},
        "telemetry_interval_s": 0.05, "threads": 1,
    }  # fmt: skip
    (run_dir / "spec.json").write_text(json.dumps(spec))
    result = run_spec(str(run_dir / "spec.json"))
    assert result["status"] == "failed" and "no GPU 99" in result["error"]
    return run_dir


def _ok_run(root: Path) -> Path:
    run_dir = root / "results" / "t" / "voc" / MODEL / "cpu"
    run_dir.mkdir(parents=True)
    result = {
        "status": "ok", "error": None, "kind": "voc", "model": MODEL, "device": "cpu",
        "mode": "hybrid", "batch_size": 8, "image_count": 24,
        "weights": {"source": "darknet", "untrained": False},
        "timings": {"total_wall_s": 1.0, "images_per_s": 24.0, "measured_images": 24},
        "telemetry": {"backend": "psutil"}, "host": {"hostname": "testbox"},
    }  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(result))
    rows = [f"{0.5 * i},50,{5000 + 10 * i},0,,,,," for i in range(6)]
    (run_dir / "telemetry.csv").write_text("\n".join([TELEMETRY_HEADER, *rows]) + "\n")
    return run_dir


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("failed")
    failed = _failed_run(root)
    ok = _ok_run(root)
    assert len(pd.read_csv(failed / "telemetry.csv")) >= 2  # it did sample before failing
    write_summary([failed, ok], root / "summary.csv")
    return read_summary(root / "summary.csv"), root


def _texts(obj) -> list[str]:
    return [t.get_text() for t in obj.findobj(Text)]


def test_telemetry_traces_draw_the_failed_run_as_failed_not_as_a_trace(summary):
    frame, root = summary
    fig = figures.build("telemetry_traces", frame, root)
    (ram,) = [ax for ax in fig.axes if ax.get_ylabel() == "RAM used (MB)"]
    assert len(ram.lines) == 1  # the ok run's trace only
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [f"{MODEL} · cpu hybrid", f"{MODEL} · gpu99 hybrid: FAILED"]
    assert any(t.startswith(f"FAILED  {MODEL} · gpu99 hybrid: DeviceUnavailable") for t in
               _texts(fig))  # fmt: skip


def test_telemetry_by_device_has_no_trace_in_the_failed_devices_column(summary):
    frame, root = summary
    fig = figures.build("telemetry_by_device", frame, root)
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes[:2]]
    assert titles == ["cpu", "gpu99"]
    ram_row = fig.axes[2 * 2 : 3 * 2]  # the RAM row of panels: cpu, gpu99
    assert [len(ax.lines) for ax in ram_row] == [1, 0]
    assert "no trace: failed" in _texts(ram_row[1])
    assert any(t == f"{MODEL} · gpu99 hybrid: FAILED" for t in _texts(fig))


def test_only_failed_runs_say_every_run_failed(summary):
    frame, root = summary
    fig = figures.build("telemetry_traces", frame[frame["status"] == "failed"], root)
    assert all(len(ax.lines) == 0 for ax in fig.axes)
    assert "no trace: every run failed" in _texts(fig)
