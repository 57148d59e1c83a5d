"""OpenCV's DNN module as an inference backend (detbench/runner/engine_opencv.py): the darknet
Nano model run by OpenCV and decoded by detbench (detbench/runner/yolo_decode.py) against the
MXNet block that detbench's other runs use, on the demo's real photographs; and the failures
that are results (an ONNX file OpenCV cannot read, a GPU this OpenCV build cannot use).

Reference: ``darknet.load_darknet`` (MXNet). With ``bn_eps=1e-6`` (OpenCV's batch-norm epsilon)
it computes the same network as OpenCV, so the detections must be the same rows in the same
order; with the runner's 1e-5 they differ only by the epsilon (detbench/runner/darknet.py:
scores by up to ~1e-3 on these photos, boxes by hundredths of a pixel).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from helpers import match

from detbench.data.photos import make_photo_voc
from detbench.evaluate import evaluate_files
from detbench.runner import darknet, engine_opencv, nets, run, yolo_decode
from detbench.runs import REPO_ROOT as REPO

MODEL = "mobilenetv2_yolov3_nano_voc"
FOLDER = REPO / "models" / "mobilenetv2-yolov3-nano-voc"
CFG = FOLDER / "MobileNetV2-YOLOv3-Nano-voc.cfg"
WEIGHTS = FOLDER / "MobileNetV2-YOLOv3-Nano-voc.weights"
# The runner's MXNet model vs OpenCV (batch-norm epsilon 1e-5 vs 1e-6): measured on the 24
# photos, 0.03 input pixels and 1.03e-3 in score at most; boxes are compared in original-image
# pixels (up to ~4x the 320-pixel input), so 0.25 px leaves twice the measured difference.
EDGE_PX, SCORE = 0.25, 2e-3


def darknet_weights() -> dict:
    return {
        "source": "darknet",
        "untrained": False,
        "format": "darknet",
        "path": str(WEIGHTS),
        "sha256": nets.file_digest(str(WEIGHTS)),
        "cfg": str(CFG),
        "cfg_sha256": nets.file_digest(str(CFG)),
    }


@pytest.fixture(scope="module")
def devkit(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos") / "VOCdevkit"
    make_photo_voc(root)
    return root


@pytest.fixture(scope="module")
def photos(devkit) -> list[Path]:
    return sorted((devkit / "VOC2007" / "JPEGImages").glob("*.jpg"))


def spec_for(run_dir: Path, devkit: Path, kind: str = "voc", **changes) -> Path:
    ids = sorted(p.stem for p in (devkit / "VOC2007" / "JPEGImages").glob("*.jpg"))
    spec = {
        "kind": kind,
        "config_name": "opencv-test",
        "model": MODEL,
        "family": "darknet",
        "device": "cpu",
        "mode": "hybrid",
        "backend": "opencv",
        "batch_size": 4 if kind == "voc" else 1,
        "input_shape": None if kind == "voc" else [3, 320, 320],
        "warmup": 1,
        "repeats": 1,
        "devkit": str(devkit),
        "image_ids": ids if kind == "voc" else ids[:3],
        "weights": darknet_weights(),
        "dataset": {"name": "photos", "fingerprint": "test", "split": "test"},
        "telemetry_interval_s": 0.2,
        "threads": 2,
        "progress_interval_s": 0,
    }
    spec.update(changes)
    run_dir.mkdir(parents=True)
    path = run_dir / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def rows(outputs, index: int = 0) -> np.ndarray:
    """An engine's detections of image ``index`` as rows [id, score, x1, y1, x2, y2]."""
    ids, scores, boxes = (np.asarray(engine_output(o))[index] for o in outputs)
    keep = ids[:, 0] >= 0
    return np.hstack([ids[keep], scores[keep], boxes[keep]])


def engine_output(array):
    return array.asnumpy() if hasattr(array, "asnumpy") else array


@pytest.fixture(scope="module")
def opencv_engine():
    spec = {"kind": "voc", "model": MODEL, "device": "cpu", "threads": 2}
    return engine_opencv.build(dict(spec, weights=darknet_weights()), mx.cpu())


def inputs(photos):
    transform = darknet.DarknetTransform(320, 320)
    for path in photos:
        tensor, unwarp = transform(mx.image.imread(str(path)))
        yield path, tensor.expand_dims(0), unwarp


@pytest.fixture(scope="module")
def photo_detections(opencv_engine, photos) -> list[tuple]:
    """Per photo: (path, input tensor, unwarp, the opencv engine's rows)."""
    return [
        (path, tensor, unwarp, rows(opencv_engine(tensor.asnumpy())))
        for path, tensor, unwarp in inputs(photos)
    ]


def mxnet_model(**kwargs):
    net = darknet.load_darknet(str(CFG), str(WEIGHTS), **kwargs)
    nets.use_eval_nms(net)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def test_same_network_gives_the_same_detections_in_the_same_order(photo_detections):
    reference = mxnet_model(bn_eps=1e-6)
    total = 0
    for path, tensor, _, ours in photo_detections:
        theirs = rows(reference(tensor))
        assert ours.shape == theirs.shape, path
        assert (ours[:, 0] == theirs[:, 0]).all(), path
        assert np.abs(ours[:, 1] - theirs[:, 1]).max() < 1e-5, path
        assert np.abs(ours[:, 2:] - theirs[:, 2:]).max() < 1e-3, path
        total += len(ours)
    assert total > 200


def test_detections_match_the_runner_mxnet_model_both_ways(photo_detections):
    reference = mxnet_model()
    compared, classes = 0, set()
    for path, tensor, unwarp, ours in photo_detections:
        theirs = rows(reference(tensor))
        ours, theirs = ours.copy(), theirs.copy()
        ours[:, 2:], theirs[:, 2:] = unwarp(ours[:, 2:]), unwarp(theirs[:, 2:])
        for a, b in ((ours, theirs), (theirs, ours)):
            edge, score, missing = match(a[a[:, 1] > 0.05], b)
            assert missing == 0 and edge <= EDGE_PX and score <= SCORE, (path, edge, score)
        compared += int((ours[:, 1] > 0.05).sum())
        classes.update(ours[ours[:, 1] > 0.3, 0].astype(int).tolist())
    assert compared >= 50 and len(classes) >= 6


def test_batches_decode_image_by_image(opencv_engine, photos):
    tensors = [tensor for _, tensor, _ in inputs(photos[:3])]
    batch = opencv_engine(mx.nd.concat(*tensors, dim=0).asnumpy())
    assert [o.shape for o in batch] == [(3, 100, 1), (3, 100, 1), (3, 100, 4)]
    for index, tensor in enumerate(tensors):
        alone = rows(opencv_engine(tensor.asnumpy()))
        assert np.allclose(rows(batch, index), alone, atol=1e-4)


def test_numpy_nms_equals_mxnet_box_nms():
    rng = np.random.default_rng(7)
    for trial in range(60):
        count = int(rng.integers(1, 200))
        corner = rng.uniform(0, 100, (count, 2))
        boxes = np.hstack([corner, corner + rng.uniform(1, 40, (count, 2))]).astype(np.float32)
        boxes[count // 2 :] = boxes[: count - count // 2]  # duplicates: ties and IoU 1
        scores = rng.choice([0.1, 0.2, 0.5, 0.9], count).astype(np.float32)
        classes = rng.integers(0, 3, count)
        topk, overlap = int(rng.choice([-1, 40])), float(rng.choice([0.3, 0.45, 0.7]))
        table = np.hstack([classes[:, None], scores[:, None], boxes]).astype(np.float32)
        expected = mx.nd.contrib.box_nms(
            mx.nd.array(table[None]), overlap_thresh=overlap, valid_thresh=0.005, topk=topk,
            id_index=0, score_index=1, coord_start=2, force_suppress=False,
        ).asnumpy()[0]  # fmt: skip
        expected = expected[expected[:, 0] >= 0]
        order = np.argsort(-scores, kind="stable")[: topk if topk > 0 else None]
        kept = yolo_decode.greedy_nms(boxes[order], classes[order], overlap, count)
        assert np.array_equal(table[order][kept], expected), trial


def run_result(path: Path) -> dict:
    run.run_spec(str(path))
    return json.loads((path.parent / "result.json").read_text())


def test_voc_run_records_opencv_and_scores_as_the_mxnet_run(tmp_path, devkit):
    results, maps = {}, {}
    for backend in ("opencv", "mxnet"):
        path = spec_for(tmp_path / backend, devkit, backend=backend)
        results[backend] = run_result(path)
        assert results[backend]["status"] == "ok", results[backend]["error"]
        body = evaluate_files(devkit, path.parent / "detections.npz", metric="area")
        maps[backend] = body["mAP"]
    info = results["opencv"]["backend"]
    assert info["name"] == "opencv" and info["version"]
    assert (info["dnn_backend"], info["dnn_target"]) == ("DNN_BACKEND_OPENCV", "DNN_TARGET_CPU")
    assert info["model_format"] == "darknet" and info["threads"] == 2
    assert info["build"]["cuda"] is False and info["build"]["parallel_framework"]
    assert results["opencv"]["timings"]["measured_images"] == 24
    assert maps["mxnet"] > 0.95 and abs(maps["opencv"] - maps["mxnet"]) <= 0.01, maps


def test_gpu_without_cuda_in_opencv_is_a_recorded_failure(tmp_path, devkit):
    result = run_result(spec_for(tmp_path / "gpu", devkit, kind="speed", device="gpu0"))
    assert result["status"] == "failed" and result["timings"] is None
    assert "OpenCVError" in result["error"] and "no CUDA DNN backend" in result["error"]
    assert "OPENCV_DNN_CUDA=ON" in result["error"]


def onnx_entry(path: Path, **extra) -> dict:
    return dict(format="onnx", path=str(path), sha256=nets.file_digest(str(path)), **extra)


def test_unreadable_onnx_is_a_recorded_failure(tmp_path, devkit):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07 this is not an ONNX protobuf")
    weights = {"source": "untrained", "untrained": True, "sha256": "unused", "path": "unused"}
    result = run_result(
        spec_for(
            tmp_path / "onnx", devkit, kind="speed", weights=weights,
            model_file=onnx_entry(broken),
        )
    )  # fmt: skip
    assert result["status"] == "failed" and result["timings"] is None
    assert "cannot read the ONNX file" in result["error"] and str(broken) in result["error"]


def test_failed_export_is_a_recorded_failure_with_its_error(tmp_path, devkit):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    entry = onnx_entry(empty, error="MXNetError: no translation for _contrib_foo")
    weights = {"source": "untrained", "untrained": True, "sha256": "unused", "path": "unused"}
    path = spec_for(tmp_path / "run", devkit, kind="speed", weights=weights, model_file=entry)
    result = run_result(path)
    assert result["status"] == "failed" and "no translation for _contrib_foo" in result["error"]


@pytest.mark.skipif(
    importlib.util.find_spec("detbench.runner.onnx_export") is None,
    reason="detbench.runner.onnx_export (the ONNX exporter) is not in this checkout",
)
def test_exported_darknet_model_is_a_result(tmp_path, devkit):
    from detbench.runner import onnx_export

    onnx_path, record_path = tmp_path / "nano.onnx", tmp_path / "nano.json"
    record = onnx_export.export(MODEL, darknet_weights(), str(onnx_path), str(record_path))
    assert record["status"] == "ok", record["error"]
    result = run_result(
        spec_for(
            tmp_path / "run",
            devkit,
            kind="speed",
            model_file=record,
            weights={"format": "params", "path": "-", "sha256": "-"},
        )
    )
    # OpenCV 4.11 cannot parse MXNet's export (a Squeeze of the repeat-based upsampling)
    if result["status"] == "failed":
        assert "cannot read the ONNX file" in result["error"], result["error"]
    else:
        assert result["backend"]["model_format"] == "onnx"


def test_cfg_handed_to_opencv_has_no_score_floor_in_yolo_sections():
    text = engine_opencv.yolo_cfg_without_floor(str(CFG))
    assert text.count("[yolo]\nthresh=0\n") == CFG.read_text().count("[yolo]") == 2
