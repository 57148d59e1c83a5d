"""Tests of detbench.report: summary.csv aggregation and the figures drawn from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from detbench.data.voc import VOC_CLASSES
from detbench.report import figures
from detbench.report.aggregate import COLUMNS, ReportError, collect, read_summary, write_summary

MODELS = ("yolo3_mobilenet1.0_voc", "ssd_512_mobilenet1.0_voc")
MAPS = dict(zip(MODELS, (0.01, 0.02), strict=True))
GPU_ERROR = "no GPU: mxnet reports 0 CUDA devices (gpu0 requested)"
TELEMETRY_HEADER = (
    "t_s,cpu_percent,ram_used_mb,swap_used_mb,gpu_util_percent,gpu_temp_c,cpu_temp_c,"
    "gpu_mem_used_mb,power_w"
)


def _result(rng, kind, model, device, mode, failed):
    batch = 1 if kind == "speed" else 8
    batch_ms = rng.uniform(20, 40, size=10).round(2).tolist()
    timings = {
        "total_wall_s": 3.2,
        "model_s": 2.9,
        "data_s": 0.2,
        "first_batch_s": 0.8,
        "warmup_batches": 2,
        "measured_batches": 10,
        "measured_images": 10 * batch,
        "images_per_s": 31.2 / (1 + MODELS.index(model)),
        "model_images_per_s": 34.0,
        "latency_ms": {"mean": 29.0, "p50": 28.7, "p90": 31.0, "p99": 35.2, "max": 40.1},
        "batch_ms": batch_ms,
        "repeats": 1,
        "repeat_total_wall_s": [3.2],
    }
    return {
        "status": "failed" if failed else "ok",
        "error": GPU_ERROR if failed else None,
        "kind": kind,
        "config_name": "demo",
        "model": model,
        "device": device,
        "mode": mode,
        "batch_size": batch,
        "input_shape": [3, 512, 512] if kind == "speed" else None,
        "image_count": 10,
        "weights": {
            "source": "untrained",
            "untrained": True,
            "sha256": "ab" * 32,
            "path": f"weights/untrained/{model}.params",
        },
        "dataset": {"name": "demo", "fingerprint": "3f2a9c1d0b7e", "split": "test"},
        "timings": None if failed else timings,
        "versions": {"python": "3.11.7", "mxnet": "1.9.1", "gluoncv": "0.10.5.post0"},
        "host": {"hostname": "testbox", "cpu_model": "x", "gpu_name": None, "jetson": None},
        "telemetry": None
        if failed
        else {
            "backend": "psutil",
            "interval_s": 0.5,
            "samples": 12,
            "gpu_temp_c_delta": None,
            "gpu_temp_c_max": None,
            "swap_used_mb_delta": 0.0,
            "swap_used_mb_max": 0.0,
            "ram_used_mb_max": 5120.0,
            "power_w_mean": None,
            "energy_j": None,
        },
    }


def _write_run(root: Path, rel: str, result: dict, rng) -> Path:
    run_dir = root / rel
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps(result))
    if result["kind"] == "voc" and result["status"] == "ok":
        ap = {name: round(float(rng.uniform(0, 0.05)), 4) for name in VOC_CLASSES}
        ap["tvmonitor"] = None
        scores = {
            "metric": "voc07",
            "iou_threshold": 0.5,
            "mAP": MAPS[result["model"]],
            "mAP_all_classes": MAPS[result["model"]],
            "ap_per_class": ap,
            "weights_untrained": True,
            "accuracy_flag": None,
        }
        (run_dir / "map.json").write_text(json.dumps(scores))
        t = np.arange(12) * 0.5
        rows = [f"{s},50,{5000 + 10 * i},0,,,{45 + i},," for i, s in enumerate(t)]
        (run_dir / "telemetry.csv").write_text("\n".join([TELEMETRY_HEADER, *rows]) + "\n")
        (run_dir / "mlflow.json").write_text(json.dumps({"run_id": f"id-{result['model']}"}))
    return run_dir


@pytest.fixture
def run_dirs(tmp_path, monkeypatch) -> list[Path]:
    """Speed runs (2 models x cpu/gpu0 x imperative/hybrid, gpu0 failed) and voc runs (2 models x
    cpu ok, gpu0 failed), written in scrambled order under a fake repo root (the CWD)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    dirs = []
    for model in MODELS:
        for device in ("gpu0", "cpu"):
            for mode in ("hybrid", "imperative"):
                result = _result(rng, "speed", model, device, mode, failed=device == "gpu0")
                rel = f"results/demo/speed/{model}/mxnet/{device}-{mode}"
                dirs.append(_write_run(tmp_path, rel, result, rng))
            result = _result(rng, "voc", model, device, "hybrid", failed=device == "gpu0")
            dirs.append(
                _write_run(tmp_path, f"results/demo/voc/{model}/mxnet/{device}", result, rng)
            )
    return [d.relative_to(tmp_path) for d in dirs]


def test_collect_columns_rows_status_and_flags(run_dirs):
    frame = collect(run_dirs)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 12
    failed = frame[frame["status"] == "failed"]
    assert set(failed["device"]) == {"gpu0"} and len(failed) == 6
    assert (failed["error"] == GPU_ERROR).all()
    assert frame.loc[frame["status"] == "ok", "error"].isna().all()
    assert frame["untrained"].all() and (frame["weights_source"] == "untrained").all()
    voc = frame[(frame["kind"] == "voc") & (frame["status"] == "ok")]
    assert (
        voc["mAP"].tolist() == [MAPS[m] for m in voc["model"]] and voc["AP_tvmonitor"].isna().all()
    )
    assert frame.loc[0, "run_dir"] == "results/demo/speed/ssd_512_mobilenet1.0_voc/mxnet/cpu-hybrid"


def test_collect_sorts_by_kind_model_device_mode(run_dirs):
    frame = collect(list(reversed(run_dirs)))
    keys = list(zip(frame["kind"], frame["model"], frame["device"], frame["mode"], strict=True))
    assert keys[:4] == [
        ("speed", MODELS[1], "cpu", "hybrid"),
        ("speed", MODELS[1], "cpu", "imperative"),
        ("speed", MODELS[1], "gpu0", "hybrid"),
        ("speed", MODELS[1], "gpu0", "imperative"),
    ]
    assert keys == sorted(keys)
    assert collect(run_dirs).equals(frame)


def test_collect_missing_result_json_names_the_path(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ReportError, match=str(tmp_path / "run" / "result.json")):
        collect([tmp_path / "run"])


def test_write_summary_round_trips_and_leaves_no_temp_file(run_dirs, tmp_path):
    out = tmp_path / "reports" / "demo" / "summary.csv"
    write_summary(run_dirs, out)
    assert [p.name for p in out.parent.iterdir()] == ["summary.csv"]
    back = read_summary(out)
    assert list(back.columns) == COLUMNS and back["untrained"].dtype == bool
    assert back.loc[back["status"] == "failed", "error"].eq(GPU_ERROR).all()


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


@pytest.fixture
def summary(run_dirs, tmp_path) -> pd.DataFrame:
    write_summary(run_dirs, tmp_path / "summary.csv")
    return read_summary(tmp_path / "summary.csv")


def test_figures_titles_say_untrained(summary):
    for key in figures.FIGURES:
        title = figures.build(key, summary).get_suptitle()
        about_map = key in ("voc_map", "pareto_map_fps", "pareto_by_device", "ap_heatmap")
        expected = "UNTRAINED WEIGHTS: mAP meaningless" if about_map else "untrained weights"
        assert expected in title, key


def test_figures_show_failed_runs_with_their_reason(summary):
    for key in figures.FIGURES:
        if key == "speed_modes_cpu":
            continue
        texts = " ".join(_texts(figures.build(key, summary)))
        assert "failed" in texts.lower() and "no GPU" in texts, key


def test_figures_without_runs_or_sensors_say_so(summary):
    no_gpu = summary[summary["device"] == "cpu"]
    assert "no runs" in _texts(figures.build("speed_modes_gpu", no_gpu))
    assert "no sensor" in _texts(figures.build("voc_gpu_temp_delta", summary))
    assert "no sensor" in _texts(figures.build("telemetry_traces", summary))
    trained = summary.assign(untrained=False)
    assert "untrained" not in figures.build("voc_map", trained).get_suptitle().lower()


def test_draw_all_writes_every_figure(summary, tmp_path):
    summary_csv = tmp_path / "summary.csv"
    paths = figures.draw_all(summary_csv, tmp_path / "figures")
    assert [p.stem for p in paths] == list(figures.FIGURES)
    assert all(
        p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in paths
    )
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(p.name for p in paths)


def test_draw_all_with_no_runs_still_writes_every_figure(tmp_path):
    write_summary([], tmp_path / "summary.csv")
    paths = figures.draw_all(tmp_path / "summary.csv", tmp_path / "figures")
    assert len(paths) == len(figures.FIGURES) and all(p.stat().st_size > 0 for p in paths)


def test_figure_captions_say_how_measured():
    assert all(len(text) > 80 for text in figures.FIGURES.values())
    assert "synchronised" in figures.FIGURES["speed_modes_gpu"]


FLEET = {"cpu": "workstation", "nano": "jetson-nano", "xavier": "xavier-nx"}


@pytest.fixture
def fleet_summary(tmp_path, monkeypatch) -> pd.DataFrame:
    """Voc runs of both models on three devices: the nano measures power, yolo3 failed on the
    xavier, the cpu and the xavier have no power sensor."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    dirs = []
    for model in MODELS:
        for speed, (device, host) in enumerate(FLEET.items(), start=1):
            failed = device == "xavier" and model == MODELS[0]
            result = _result(rng, "voc", model, device, "hybrid", failed=failed)
            result["host"]["hostname"] = host
            if not failed:
                result["timings"]["images_per_s"] *= speed
            if device == "nano":
                result["telemetry"].update(power_w_mean=5.0, energy_j=20.0 * speed)
                result["telemetry"]["energy_j_per_image"] = 2.0 * (1 + MODELS.index(model))
            run_dir = _write_run(tmp_path, f"results/demo/voc/{model}/mxnet/{device}", result, rng)
            if device == "nano":
                rows = [f"{0.5 * i},50,{6000 + i},0,,{40 + i},{45 + i},,{5 + i}" for i in range(9)]
                (run_dir / "telemetry.csv").write_text("\n".join([TELEMETRY_HEADER, *rows]) + "\n")
            dirs.append(run_dir.relative_to(tmp_path))
    write_summary(dirs, tmp_path / "summary.csv")
    return read_summary(tmp_path / "summary.csv")


def test_fps_by_device_has_one_cell_per_model_and_device(fleet_summary):
    fig = figures.build("fps_by_device", fleet_summary)
    texts = _texts(fig)
    cells = [fig.axes[0].texts[i].get_text() for i in range(len(fig.axes[0].texts))]
    ok = fleet_summary[fleet_summary["status"] == "ok"]
    assert sorted(c for c in cells if c and c != "FAILED") == sorted(
        f"{v:.3g}" for v in ok["images_per_s"]
    )
    assert cells.count("FAILED") == 1 and any(GPU_ERROR in t for t in texts)
    labels = [t.get_text().split("\n") for t in fig.axes[0].get_xticklabels()]
    assert labels == [["cpu", "workstation"], ["nano", "jetson-nano"], ["xavier", "xavier-nx"]]


def test_pareto_by_device_labels_the_fleet_front(fleet_summary):
    fig = figures.build("pareto_by_device", fleet_summary)
    texts = _texts(fig)
    # ssd (mAP 0.02) is the most accurate and the xavier its fastest device: the whole front
    assert f"{MODELS[1]} · xavier" in texts and f"{MODELS[1]} · cpu" not in texts
    assert f"FAILED  {MODELS[0]} · xavier hybrid: {GPU_ERROR}" in texts
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["cpu", "nano", "xavier", "fleet Pareto front", *sorted(MODELS)]


def test_energy_by_device_says_where_no_power_sensor(fleet_summary):
    fig = figures.build("energy_by_device", fleet_summary)
    texts = _texts(fig)
    assert texts.count("no power sensor") == 3  # cpu x 2 models, xavier's ok run
    assert "2" in texts and "4" in texts  # the nano's bars, labelled with their values
    assert any(t.startswith("failed: no GPU") for t in texts)


def test_telemetry_by_device_has_a_column_per_device(fleet_summary, tmp_path):
    fig = figures.build("telemetry_by_device", fleet_summary, tmp_path)
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles == ["cpu\nworkstation", "nano\njetson-nano", "xavier\nxavier-nx"]
    power = fig.axes[4 * 3 : 5 * 3]  # the last row of panels: power on cpu, nano, xavier
    assert [ax.get_ylabel() for ax in power] == ["power (W)", "", ""]
    assert [len(ax.lines) for ax in power] == [0, 2, 0]
    assert ["no sensor" in _texts(ax) for ax in power] == [True, False, True]
    assert power[1].get_ylim() == power[0].get_ylim()  # one y scale per row
    assert any(f"FAILED  {MODELS[0]} · xavier" in t for t in _texts(fig))
