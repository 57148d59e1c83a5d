"""Imperative vs hybrid against the noise: modes.csv's verdicts from the passes of real
result.json files (through the runner's own summarise_timings and the summary's collect), and the
speed figure's note under each model."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from detbench.report import figures
from detbench.report.aggregate import collect
from detbench.report.modes import COLUMNS, mode_rows, verdict_note, write_modes
from detbench.runner.run import summarise_timings

SSD, YOLO = "ssd_512_mobilenet1.0_voc", "yolo3_mobilenet1.0_voc"
NANO = "mobilenetv2_yolov3_nano_voc"


def _write(root, model, mode, walls, device="cpu", backend="mxnet", host="box", error=None):
    """A speed run's result.json whose passes took ``walls`` seconds (one image each)."""
    run_dir = root / "results" / host / "speed" / model / backend / f"{device}-{mode}"
    run_dir.mkdir(parents=True)
    passes = [(w, [w * 0.9], [0.01], 1) for w in walls]
    result = {
        "status": "failed" if error else "ok", "error": error, "kind": "speed", "model": model,
        "device": device, "mode": mode, "backend": {"name": backend}, "batch_size": 1,
        "image_count": 1, "weights": {"source": "untrained", "untrained": True},
        "timings": None if error else summarise_timings(0.3, 1, passes, batch_size=1),
        "telemetry": {}, "host": {"hostname": host},
    }  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(result))
    return run_dir


@pytest.fixture
def summary(tmp_path, monkeypatch) -> pd.DataFrame:
    monkeypatch.chdir(tmp_path)
    dirs = [
        # every hybrid pass beats every imperative pass
        _write(tmp_path, SSD, "imperative", [2.0, 2.1, 1.9, 2.2, 2.05]),
        _write(tmp_path, SSD, "hybrid", [1.6, 1.5, 1.7, 1.55, 1.65]),
        # overlapping ranges: one slow hybrid pass reaches the imperative ones
        _write(tmp_path, YOLO, "imperative", [3.0, 3.1, 2.95, 3.2, 3.05]),
        _write(tmp_path, YOLO, "hybrid", [2.5, 2.45, 3.0, 2.55, 2.6]),
        # imperative ahead on every pass
        _write(tmp_path, NANO, "imperative", [0.40, 0.41, 0.42]),
        _write(tmp_path, NANO, "hybrid", [0.50, 0.52, 0.51]),
        # a single pass each: a speed-up, no spread to read it against
        _write(tmp_path, SSD, "imperative", [2.0], host="other"),
        _write(tmp_path, SSD, "hybrid", [1.0], host="other"),
        # a failed GPU run, and another backend's runs, which have no Gluon modes
        _write(tmp_path, SSD, "imperative", [1.0, 1.1], device="gpu0"),
        _write(tmp_path, SSD, "hybrid", [], device="gpu0", error="MXNetError: no GPU 0"),
        _write(tmp_path, NANO, "native", [0.1, 0.12], backend="onnxruntime"),
    ]
    return collect(dirs)


def _row(table, model, device="cpu", host="box") -> dict:
    found = table[(table.model == model) & (table.device == device) & (table.host == host)]
    assert len(found) == 1, table
    return found.iloc[0].to_dict()


def test_verdicts_read_the_modes_against_their_passes(summary):
    table = mode_rows(summary)
    assert list(table.columns) == COLUMNS and len(table) == 5
    ssd = _row(table, SSD)
    assert ssd["verdict"] == "hybrid_faster" and ssd["repeats"] == 5
    assert ssd["imperative_s"] == pytest.approx(2.05) and ssd["hybrid_s"] == pytest.approx(1.6)
    assert ssd["speedup"] == pytest.approx(2.05 / 1.6)
    assert ssd["speedup_low"] == pytest.approx(1.9 / 1.7)
    assert ssd["speedup_high"] == pytest.approx(2.2 / 1.5)
    assert _row(table, YOLO)["verdict"] == "within_noise"
    nano = _row(table, NANO)
    assert nano["verdict"] == "imperative_faster" and nano["speedup"] < 1
    single = _row(table, SSD, host="other")
    assert single["verdict"] == "one_pass" and single["speedup"] == pytest.approx(2.0)
    gpu = _row(table, SSD, device="gpu0")
    assert gpu["verdict"] == "failed" and gpu["error"] == "hybrid: MXNetError: no GPU 0"


def test_notes_say_the_speedup_and_whether_it_is_outside_the_noise(summary):
    notes = {(r["model"], r["device"], r["host"]): verdict_note(r)
             for r in mode_rows(summary).to_dict("records")}  # fmt: skip
    assert notes[(SSD, "cpu", "box")] == "hybrid 1.28x faster, every pass"
    assert notes[(YOLO, "cpu", "box")] == "hybrid 1.20x: within noise"
    assert notes[(NANO, "cpu", "box")] == "imperative 1.24x faster, every pass"
    assert notes[(SSD, "cpu", "other")] == "hybrid 2.00x (one pass: no spread)"
    assert notes[(SSD, "gpu0", "box")] == "modes: a run failed"


def test_modes_csv_is_written_from_the_summary(summary, tmp_path):
    summary.to_csv(tmp_path / "summary.csv", index=False)
    write_modes(tmp_path / "summary.csv", tmp_path / "modes.csv")
    written = pd.read_csv(tmp_path / "modes.csv")
    assert list(written.columns) == COLUMNS
    assert sorted(written.verdict) == sorted(
        ["hybrid_faster", "within_noise", "imperative_faster", "one_pass", "failed"]
    )


def test_speed_figure_prints_each_models_verdict_above_its_bars(summary):
    one_host = summary[summary.host == "box"]
    fig = figures.build("speed_modes_cpu", one_host)
    texts = " ".join(t.get_text().replace("\n", " ") for t in fig.axes[0].texts)
    assert "hybrid 1.28x faster, every pass" in texts
    assert "hybrid 1.20x: within noise" in texts
    assert "imperative 1.24x faster, every pass" in texts
    gpu = " ".join(t.get_text().replace("\n", " ") for t in
                   figures.build("speed_modes_gpu", one_host).axes[0].texts)  # fmt: skip
    assert "modes: a run failed" in gpu
