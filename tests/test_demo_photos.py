"""End to end with a real trained detector on real photos: the darknet MobileNetV2-YOLOv3-Nano on
the demo's hand-annotated photos, run by the Python 3.11 stack and by the seed stack (Python 3.6,
MXNet 1.6) as the device runner. Its accuracy is real and labelled as real everywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, copy_workflow, snakemake

SEED_PYTHON = Path(os.environ.get("DETBENCH_SEED_PYTHON", REPO / ".venv36/bin/python"))
MODEL = "mobilenetv2_yolov3_nano_voc"
VOC_RUN = f"voc/{MODEL}/mxnet/cpu"


def config(name: str, python: str | None) -> dict:
    return {
        "name": name,
        "voc": {"photos": True},
        "models": [MODEL],
        "weights": {"source": "untrained", "per_model": {MODEL: "darknet"}},
        "devices": ["cpu"],
        "speed": {"images": 2, "modes": ["hybrid"], "warmup": 1},
        "voc_run": {"batch": 4, "warmup": 1, "metric": "area"},
        "telemetry": {"interval_s": 0.1},
        "runner": {"python": python},
        "detection_pictures": {"images": ["000008", "000010", "000005"]},
    }


def run_workflow(tmp_path_factory, name: str, python: str | None) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp(name), config(name, python))
    done = snakemake(workdir, "all", "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    return run_workflow(tmp_path_factory, "photos", None)


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> Path:
    assert SEED_PYTHON.exists(), f"{SEED_PYTHON} missing: run `make test` (it builds .venv36)"
    return run_workflow(tmp_path_factory, "photos36", str(SEED_PYTHON))


def map_json(workdir: Path, name: str) -> dict:
    return json.loads((workdir / f"results/{name}/{VOC_RUN}/map.json").read_text())


def test_real_weights_give_a_real_accuracy_labelled_real(local):
    summary = pd.read_csv(local / "reports/photos/summary.csv")
    assert (summary.status == "ok").all() and not summary.untrained.any()
    assert (summary.weights_source == "darknet").all()
    scores = map_json(local, "photos")
    assert scores["weights_untrained"] is False and scores["images"] == 24
    # Trained weights find the hand-drawn objects; an off-by-one class or a wrong box mapping
    # would score near 0 (untrained models score about 0.01 on this set).
    assert scores["mAP"] > 0.6
    assert scores["published_mAP"] == 0.6527 and scores["published_metric"] == "area"
    assert scores["accuracy_flag"] is None
    assert "on 4952 VOC2007 test images, this run on 24" in scores["accuracy_check"]


def test_mlflow_records_real_weights_and_the_detection_picture(local):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{local}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("detbench-photos")
    (voc,) = [r for r in client.search_runs([experiment.experiment_id])
              if r.data.tags["kind"] == "voc"]  # fmt: skip
    assert voc.data.tags["untrained"] == "false" and voc.data.tags["weights"] == "darknet"
    assert voc.data.metrics["mAP"] == pytest.approx(map_json(local, "photos")["mAP"])
    pictures = [a.path for a in client.list_artifacts(voc.info.run_id, "detections")]
    assert pictures == [f"detections/{MODEL}.png"]
    assert (local / f"reports/photos/detections/{MODEL}.png").stat().st_size > 10_000


def test_seed_stack_runner_gives_the_same_detections_and_accuracy(local, seed):
    result = json.loads((seed / f"results/photos36/{VOC_RUN}/result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert (
        result["versions"]["python"].startswith("3.6.") and result["versions"]["mxnet"] == "1.6.0"
    )
    assert map_json(seed, "photos36")["mAP"] == pytest.approx(
        map_json(local, "photos")["mAP"], abs=1e-3
    )
    with (
        np.load(local / f"results/photos/{VOC_RUN}/detections.npz") as ours,
        np.load(seed / f"results/photos36/{VOC_RUN}/detections.npz") as theirs,
    ):
        strong_ours, strong_theirs = ours["scores"] > 0.3, theirs["scores"] > 0.3
        assert strong_ours.sum() == strong_theirs.sum() > 30
        np.testing.assert_array_equal(ours["labels"][strong_ours], theirs["labels"][strong_theirs])
        np.testing.assert_allclose(
            ours["boxes"][strong_ours], theirs["boxes"][strong_theirs], atol=1.0
        )
