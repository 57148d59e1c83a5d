"""Spread of repeated speed runs: result.json keeps every pass, summary.csv has median, min, max
and coefficient of variation of each timing, and the speed figures draw min-max error bars."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from detbench.report import figures
from detbench.report.aggregate import (
    REPEATED_TIMINGS,
    SPREAD_COLUMNS,
    collect,
    read_summary,
    write_summary,
)
from detbench.runner.run import summarise_timings

MODEL = "ssd_512_mobilenet1.0_voc"
IMAGES = 8


def _passes(rng, repeats):
    """``repeats`` measured passes of IMAGES batch-1 images: (wall, model s, data s, images)."""
    out = []
    for _ in range(repeats):
        model_s = rng.uniform(0.1, 0.2, IMAGES).tolist()
        data_s = rng.uniform(0.001, 0.01, IMAGES).tolist()
        out.append((sum(model_s) + rng.uniform(0.01, 0.05), model_s, data_s, IMAGES))
    return out


def _write(root, mode, passes):
    run_dir = root / "results" / "t" / "speed" / MODEL / f"cpu-{mode}"
    run_dir.mkdir(parents=True)
    result = {
        "status": "ok", "error": None, "kind": "speed", "model": MODEL, "device": "cpu",
        "mode": mode, "batch_size": 1, "image_count": IMAGES,
        "weights": {"source": "untrained", "untrained": True},
        "timings": summarise_timings(0.3, 2, passes, batch_size=1),
        "telemetry": {}, "host": {"hostname": "testbox"},
    }  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(result))
    return run_dir


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(7)
    passes = {"hybrid": _passes(rng, 5), "imperative": _passes(rng, 1)}
    dirs = [_write(tmp_path, mode, p) for mode, p in passes.items()]
    return passes, dirs


def test_result_json_keeps_each_pass_in_order():
    passes = [(3.0, [1.0, 1.5], [0.1, 0.2], 2), (1.0, [0.4, 0.5], [0.0, 0.1], 2)]
    timings = summarise_timings(0.5, 2, passes, batch_size=1)
    assert timings["repeat_total_wall_s"] == [3.0, 1.0]
    assert timings["repeat_model_s"] == pytest.approx([2.5, 0.9])
    assert timings["repeat_data_s"] == pytest.approx([0.3, 0.1])


def test_summary_has_median_min_max_cv_of_each_repeated_timing(runs):
    passes, dirs = runs
    row = collect(dirs).set_index("mode").loc["hybrid"]
    per_pass = {
        "total_wall_s": [p[0] for p in passes["hybrid"]],
        "model_s": [sum(p[1]) for p in passes["hybrid"]],
        "data_s": [sum(p[2]) for p in passes["hybrid"]],
    }
    per_pass["images_per_s"] = [IMAGES / w for w in per_pass["total_wall_s"]]
    per_pass["model_images_per_s"] = [IMAGES / s for s in per_pass["model_s"]]
    assert sorted(per_pass) == sorted(REPEATED_TIMINGS) and row["repeats"] == 5
    for key, values in per_pass.items():
        values = np.array(values)
        assert row[f"{key}_median"] == pytest.approx(np.median(values)), key
        assert row[f"{key}_min"] == pytest.approx(values.min()), key
        assert row[f"{key}_max"] == pytest.approx(values.max()), key
        assert row[f"{key}_cv"] == pytest.approx(values.std() / values.mean()), key


def test_one_repeat_has_its_value_and_no_cv(runs, tmp_path):
    passes, dirs = runs
    write_summary(dirs, tmp_path / "summary.csv")
    row = read_summary(tmp_path / "summary.csv").set_index("mode").loc["imperative"]
    wall = passes["imperative"][0][0]
    assert row["repeats"] == 1
    assert row["total_wall_s_min"] == row["total_wall_s_max"] == pytest.approx(wall)
    assert row["images_per_s_median"] == pytest.approx(IMAGES / wall)
    assert np.isnan(row["total_wall_s_cv"])
    assert set(SPREAD_COLUMNS) <= set(read_summary(tmp_path / "summary.csv").columns)


def test_speed_figures_draw_min_max_of_the_repeated_run_only(runs, tmp_path):
    passes, dirs = runs
    write_summary(dirs, tmp_path / "summary.csv")
    summary = read_summary(tmp_path / "summary.csv")
    walls = [p[0] for p in passes["hybrid"]]
    for key in ("speed_modes_cpu", "speed_cpu_vs_gpu"):
        axes = figures.build(key, summary).axes
        bars = [(ax, c) for ax in axes for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 1, key  # the hybrid run's 5 repeats; the 1-repeat run has none
        ax, bar = bars[0]
        (segment,) = bar.lines[2][0].get_segments()
        assert segment[:, 1] == pytest.approx([min(walls), max(walls)]), key
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "min–max of 5 repeats" in labels, key
