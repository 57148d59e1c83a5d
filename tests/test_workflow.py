"""End-to-end: the workflow on a tiny synthetic config in a temporary directory.

One full run (two models, CPU and an absent GPU), then checks of the outputs, MLflow read back
through MlflowClient, a no-op rerun, and a per-model config change that reruns only that model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import copy_workflow, snakemake, summary_rows

MODELS = ["ssd_512_mobilenet1.0_voc", "yolo3_mobilenet1.0_voc"]
TINY = {
    "name": "tiny",
    "voc": {"synthetic": {"images": 6, "seed": 3}},
    "models": MODELS,
    "weights": {"source": "untrained", "seed": 0},
    "devices": ["cpu", "gpu0"],
    "speed": {"images": 2, "size": 320, "modes": ["imperative", "hybrid"], "warmup": 1},
    "voc_run": {"batch": 4, "warmup": 1},
    "telemetry": {"interval_s": 0.05},
}


REPORT_TABLES = {
    ("backends_table", "reports/tiny/backends.csv"),
    ("backends_table", "reports/tiny/figures/backends.png"),
    ("modes_table", "reports/tiny/modes.csv"),
}


def pending_outputs(workdir: Path, configfile: str) -> set[tuple[str, str]]:
    """(rule, output file) of every output ``snakemake --summary`` plans to update."""
    rows = summary_rows(workdir, configfile)
    return {(rule, output) for rule, output, plan in rows if plan == "update pending"}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"), TINY, "tiny.yaml")
    done = snakemake(workdir, "all", "--configfile", "tiny.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_summary_has_one_row_per_run_with_failed_gpu(workflow):
    summary = pd.read_csv(workflow / "reports/tiny/summary.csv")
    assert len(summary) == 2 * (2 * 2 + 2)  # models x (devices x modes + devices)
    cpu = summary[summary.device == "cpu"]
    gpu = summary[summary.device == "gpu0"]
    assert (cpu.status == "ok").all() and (gpu.status == "failed").all()
    assert gpu.error.str.contains("no GPU 0").all()
    assert summary.untrained.all() and (summary.weights_source == "untrained").all()
    assert (cpu.images_per_s > 0).all() and (cpu.latency_p50_ms > 0).all()
    voc = cpu[cpu.kind == "voc"]
    assert voc.mAP.between(0, 1).all()


def test_modes_table_compares_the_modes_of_each_model_and_device(workflow):
    """One pass per mode (no speed.repeats): a speed-up but no verdict on the noise; the
    absent GPU's runs failed, which the row says."""
    modes = pd.read_csv(workflow / "reports/tiny/modes.csv")
    assert sorted(zip(modes.model, modes.device, strict=True)) == [
        (model, device) for model in MODELS for device in ("cpu", "gpu0")
    ]
    cpu, gpu = modes[modes.device == "cpu"], modes[modes.device == "gpu0"]
    assert (cpu.verdict == "one_pass").all() and (cpu.speedup > 0).all()
    assert (cpu.repeats == 1).all() and (cpu.imperative_min_s == cpu.imperative_max_s).all()
    assert (gpu.verdict == "failed").all() and gpu.error.str.contains("no GPU 0").all()


def test_map_json_has_metric_fields(workflow):
    body = json.loads(
        (workflow / "results/tiny/voc/yolo3_mobilenet1.0_voc/mxnet/cpu/map.json").read_text()
    )
    for key in ("mAP", "ap_per_class", "metric", "iou_threshold", "images", "objects"):
        assert key in body
    assert body["metric"] == "voc07" and body["images"] == 6
    assert body["weights_untrained"] is True and body["accuracy_flag"] is None


def test_detections_follow_the_contract(workflow):
    import numpy as np

    with np.load(workflow / "results/tiny/voc/ssd_512_mobilenet1.0_voc/mxnet/cpu/detections.npz",
                 allow_pickle=False) as npz:  # fmt: skip
        assert npz["image_ids"].shape == (6,) and npz["boxes"].shape[1] == 4
        assert npz["labels"].dtype == np.int64 and npz["scores"].dtype == np.float32
        assert len(npz["image_index"]) == len(npz["labels"]) > 0


def test_mlflow_runs_read_back_with_client(workflow):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workflow}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("detbench-tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) == 12
    statuses = {(r.data.tags["device"], r.info.status) for r in runs}
    assert statuses == {("cpu", "FINISHED"), ("gpu0", "FAILED")}
    voc = next(
        r for r in runs
        if r.data.tags["kind"] == "voc" and r.data.tags["device"] == "cpu"
        and r.data.tags["model"] == MODELS[0]
    )  # fmt: skip
    assert voc.data.tags["weights"] == "untrained" and voc.data.tags["untrained"] == "true"
    assert "mAP" in voc.data.metrics and "AP_person" in voc.data.metrics
    assert voc.data.metrics["total_wall_s"] > 0
    history = client.get_metric_history(voc.info.run_id, "telemetry/ram_used_mb")
    assert len(history) > 1 and [m.step for m in history] == list(range(len(history)))
    artifacts = {a.path for a in client.list_artifacts(voc.info.run_id)}
    assert {"result.json", "telemetry.csv", "map.json", "detections.npz"} <= artifacts
    pictures = {a.path for a in client.list_artifacts(voc.info.run_id, "detections")}
    assert pictures == {f"detections/{MODELS[0]}.png"}


def test_every_figure_is_drawn(workflow):
    from detbench.report.captions import FIGURES

    for key in FIGURES:
        assert (workflow / f"reports/tiny/figures/{key}.png").stat().st_size > 1000


def test_each_models_detections_are_pictured(workflow):
    for model in MODELS:
        assert (workflow / f"reports/tiny/detections/{model}.png").stat().st_size > 1000


def test_second_run_has_nothing_to_do(workflow):
    dry = snakemake(workflow, "all", "-n", "--configfile", "tiny.yaml")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_one_model_change_reruns_that_model_and_the_report_only(workflow):
    changed = {**TINY, "overrides": {MODELS[1]: {"voc_run": {"batch": 2}}}}
    (workflow / "changed.yaml").write_text(yaml.safe_dump(changed))
    pending = pending_outputs(workflow, "changed.yaml")
    voc_dirs = [f"results/tiny/voc/{MODELS[1]}/mxnet/{device}" for device in ("cpu", "gpu0")]
    expected = {("aggregate", "reports/tiny/summary.csv")}
    for run in voc_dirs:
        expected |= {
            ("voc_spec", f"{run}/spec.json"),
            ("voc", f"{run}/result.json"),
            ("voc", f"{run}/telemetry.csv"),
            ("voc", f"{run}/detections.npz"),
            ("evaluate", f"{run}/map.json"),
            ("track_voc", f"{run}/mlflow.json"),
        }
    from detbench.report.captions import FIGURES

    expected |= {("plots", f"reports/tiny/figures/{key}.png") for key in FIGURES}
    expected |= REPORT_TABLES
    expected.add(("detection_pictures", f"reports/tiny/detections/{MODELS[1]}.png"))
    assert pending == expected


def test_changing_the_metric_reruns_evaluate_and_what_depends_on_it_only(workflow):
    """voc_run.metric reaches only the evaluate jobs (each rule gets only the config it uses):
    no benchmark, spec or detection picture reruns."""
    changed = {**TINY, "voc_run": {**TINY["voc_run"], "metric": "area"}}
    (workflow / "metric.yaml").write_text(yaml.safe_dump(changed))
    pending = pending_outputs(workflow, "metric.yaml")
    from detbench.report.captions import FIGURES

    expected = {("aggregate", "reports/tiny/summary.csv")}
    expected |= {("plots", f"reports/tiny/figures/{key}.png") for key in FIGURES}
    expected |= REPORT_TABLES
    for model in MODELS:
        for device in ("cpu", "gpu0"):
            run = f"results/tiny/voc/{model}/mxnet/{device}"
            expected |= {("evaluate", f"{run}/map.json"), ("track_voc", f"{run}/mlflow.json")}
    assert pending == expected


def test_adding_a_backend_runs_that_backend_only(workflow):
    """backends [mxnet] -> [mxnet, onnxruntime]: the exports and the new backend's runs, and
    the report; not one MXNet run, spec or track job."""
    changed = {**TINY, "backends": ["mxnet", "onnxruntime"]}
    (workflow / "backends.yaml").write_text(yaml.safe_dump(changed))
    pending = pending_outputs(workflow, "backends.yaml")
    from detbench.report.captions import FIGURES

    expected = {("aggregate", "reports/tiny/summary.csv")} | REPORT_TABLES
    expected |= {("plots", f"reports/tiny/figures/{key}.png") for key in FIGURES}
    for model in MODELS:
        stem = f"weights/onnx/untrained/{model}"
        expected |= {("export_onnx", f"{stem}.onnx"), ("export_onnx", f"{stem}.json")}
        for device in ("cpu", "gpu0"):
            speed = f"results/tiny/speed/{model}/onnxruntime/{device}-native"
            voc = f"results/tiny/voc/{model}/onnxruntime/{device}"
            expected |= {
                ("speed_spec", f"{speed}/spec.json"),
                ("speed", f"{speed}/result.json"),
                ("speed", f"{speed}/telemetry.csv"),
                ("track_speed", f"{speed}/mlflow.json"),
                ("voc_spec", f"{voc}/spec.json"),
                ("voc", f"{voc}/result.json"),
                ("voc", f"{voc}/telemetry.csv"),
                ("voc", f"{voc}/detections.npz"),
                ("evaluate", f"{voc}/map.json"),
                ("track_voc", f"{voc}/mlflow.json"),
            }
    assert pending == expected


def test_spec_json_is_a_declared_output_the_runs_read(workflow):
    spec = json.loads(
        (workflow / "results/tiny/voc/yolo3_mobilenet1.0_voc/mxnet/cpu/spec.json").read_text()
    )
    assert spec["kind"] == "voc" and spec["batch_size"] == 4 and len(spec["image_ids"]) == 6
    rows = summary_rows(workflow, "tiny.yaml")
    rules = {rule for rule, output, _ in rows if output.endswith("/spec.json")}
    assert rules == {"speed_spec", "voc_spec"}
