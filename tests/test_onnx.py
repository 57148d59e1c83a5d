"""ONNX export (detbench/runner/onnx_export.py) and the onnxruntime engine
(detbench/runner/engine_onnxruntime.py), checked against the MXNet net they come from.

References: the same net hybridized in MXNet on the same input tensor. The exported NMS is
class-agnostic where MXNet's is per-class (the record's ``nms``), so detections are compared where
the two NMS flavours must agree: the top detection of untrained nets (the highest-scoring box is
never suppressed), and, for the trained darknet Nano model, every detection above 0.3, a missing
one only where a higher-scoring box of another class overlaps it by more than the NMS threshold;
and the Nano model's mAP on the demo's 24 photographs through both backends (within 1 point).
"""

from __future__ import annotations

import json
from pathlib import Path

import mxnet as mx
import numpy as np
import onnx
import pytest

from detbench import weights, zoo
from detbench.data.photos import make_photo_voc
from detbench.evaluate import evaluate_files
from detbench.runner import engine_onnxruntime, engines, nets, onnx_export
from detbench.runner.run import run_spec

SSD, YOLO, NANO = (
    "ssd_512_mobilenet1.0_voc",
    "yolo3_mobilenet1.0_voc",
    "mobilenetv2_yolov3_nano_voc",
)
NMS_THRESH = 0.45
pytestmark = pytest.mark.filterwarnings("ignore:`mapping.*:DeprecationWarning")
# Float32 convolutions summed in another order (MXNet/oneDNN vs ONNX Runtime's kernels):
# relative differences of ~1e-5 per layer; boxes are input pixels (<= 512), scores <= 1.
BOX_TOL_PX, SCORE_TOL = 0.05, 1e-4


def mxnet_entry(folder: Path, model: str) -> dict:
    """The runner's weights entry of ``model``: seeded untrained weights, or for the darknet
    model the project's own files (weights source darknet). Seeded weights have fresh BatchNorm
    statistics (``nets._initialise``): GluonCV's SSD expander would otherwise draw negative
    variances, on which ONNX Runtime computes NaN where MXNet still returns numbers."""
    params, sidecar = folder / f"{model}.params", folder / f"{model}.json"
    if zoo.is_darknet(model):
        weights.fetch_darknet(model, {}, params, folder / f"{model}.cfg", sidecar, progress=False)
    else:
        net = nets.build_net(model, mx.cpu(), params_path=None, seed=0)
        net.save_parameters(str(params))
        weights.write_sidecar(params, sidecar, model=model, source="untrained", untrained=True,
                              seed=0)  # fmt: skip
    return weights.runner_entry(str(params), str(sidecar))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """model -> (MXNet weights entry, .onnx path, record) for the three demo models; the
    darknet model through the workflow's step (the runner's ``export-onnx`` subcommand)."""
    folder = tmp_path_factory.mktemp("onnx")
    done = {}
    for model in (SSD, YOLO, NANO):
        entry = mxnet_entry(folder, model)
        onnx_path, record_path = folder / f"{model}.onnx", folder / f"{model}.record.json"
        if model == NANO:
            sidecar = str(folder / f"{model}.json")
            log = folder / "nano.log"
            record = weights.export_onnx(
                model, entry["path"], sidecar, onnx_path, record_path, log_path=log
            )
        else:
            record = onnx_export.export(model, entry, str(onnx_path), str(record_path))
        done[model] = (entry, onnx_path, record)
    return done


@pytest.fixture(scope="module")
def photos_devkit(tmp_path_factory) -> Path:
    devkit = tmp_path_factory.mktemp("photos") / "VOCdevkit"
    make_photo_voc(devkit)
    return devkit


def mxnet_net(model: str, entry: dict):
    net = nets.build_from_weights(model, mx.cpu(), entry)
    nets.use_eval_nms(net)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def ort_engine(onnx_path: Path, record_path: Path, **spec):
    entry = weights.onnx_entry(str(onnx_path), str(record_path))
    spec = {"model": "m", "device": "cpu", "threads": 2, "model_file": entry, **spec}
    return engine_onnxruntime.build(spec, mx.cpu())


def record_path_of(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.stem + ".record.json")


@pytest.mark.parametrize("model", [SSD, YOLO, NANO])
def test_export_writes_a_checked_opset_13_file_and_its_record(exported, model):
    entry, onnx_path, record = exported[model]
    assert record["status"] == "ok" and record["error"] is None, record["error"]
    assert record == json.loads(record_path_of(onnx_path).read_text())
    assert record["sha256"] == weights.sha256_file(onnx_path)
    assert record["size_bytes"] == onnx_path.stat().st_size > 1_000_000
    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto)
    assert (
        [(o.domain, o.version) for o in proto.opset_import] == [("", 13)] == [("", record["opset"])]
    )
    assert record["input"]["name"] == proto.graph.input[0].name == "data"
    assert record["input"]["shape"] == [None, 3, None, None]  # any batch and size
    assert record["weights"] == {k: entry[k] for k in ("source", "untrained", "sha256", "path")}
    assert record["exporter"] == {"mxnet": "1.9.1", "onnx": "1.17.0"}
    # GluonCV's and the darknet block's box_nms are per-class; the exporter's is not
    assert record["nms"]["mxnet"] == "per-class" and record["nms"]["onnx"] == "class-agnostic"
    assert record["nms"]["changed"] and "NonMaxSuppression" in record["nms"]["reason"]
    # the SSD feature expander's symbol BatchNorms; GluonCV's blocks and darknet's set it off
    assert (record["fix_gamma_batchnorms"] > 0) == (model == SSD)


def test_one_export_serves_the_speed_size_and_the_eval_size(exported):
    """yolo3_mobilenet1.0_voc evaluates at 416 and runs its speed runs at speed.size (512): the
    export's height and width are symbolic, and ONNX Runtime matches MXNet at both."""
    entry, onnx_path, _ = exported[YOLO]
    engine = ort_engine(onnx_path, record_path_of(onnx_path))
    net = mxnet_net(YOLO, entry)
    for size in (416, 512):
        x = np.random.default_rng(size).uniform(-2, 2, size=(1, 3, size, size)).astype(np.float32)
        ours, theirs = engine(x), [o.asnumpy() for o in net(mx.nd.array(x))]
        assert ours[0][0, 0, 0] == theirs[0][0, 0, 0]
        np.testing.assert_allclose(ours[1][0, 0], theirs[1][0, 0], atol=SCORE_TOL)


def test_faster_rcnn_exports_at_its_speed_shape():
    assert onnx_export.export_shape("faster_rcnn_resnet50_v1b_voc") == (1, 3, 600, 800)
    assert onnx_export.export_shape(NANO) == (1, 3, 320, 320)


@pytest.mark.parametrize("model", [SSD, YOLO])
def test_untrained_nets_top_detection_and_batches_match_mxnet(exported, model):
    entry, onnx_path, _ = exported[model]
    size = onnx_export.export_shape(model)[2]
    x = np.random.default_rng(0).uniform(-2, 2, size=(2, 3, size, size)).astype(np.float32)
    reference = [o.asnumpy() for o in mxnet_net(model, entry)(mx.nd.array(x))]
    engine = ort_engine(onnx_path, record_path_of(onnx_path))
    assert engine.host_inputs and engine.info["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert engine.info["providers"] == ["CPUExecutionProvider"] and engine.info["opset"] == 13
    batch = engine(x)
    one = engine(x[:1])
    for ours, single, theirs in zip(batch, one, reference, strict=True):
        assert ours.shape == theirs.shape and ours.shape[:2] == (2, 100)
        np.testing.assert_allclose(single[0], ours[0], rtol=1e-5, atol=1e-5)
    ids, scores, boxes = batch
    for image in range(2):  # the highest-scoring box survives either NMS
        assert ids[image, 0, 0] == reference[0][image, 0, 0]
        np.testing.assert_allclose(scores[image, 0], reference[1][image, 0], atol=SCORE_TOL)
        np.testing.assert_allclose(boxes[image, 0], reference[2][image, 0], atol=BOX_TOL_PX)


def rows(outputs) -> np.ndarray:
    """[class, score, x1, y1, x2, y2] rows of image 0 (padding dropped)."""
    ids, scores, boxes = (engines.to_numpy(o)[0] for o in outputs)
    keep = ids[:, 0] >= 0
    return np.hstack([ids[keep], scores[keep], boxes[keep]])


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    low, high = np.maximum(box[:2], others[:, :2]), np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    return inter / (area + np.prod(others[:, 2:] - others[:, :2], axis=1) - inter)


def test_nano_detections_match_mxnet_up_to_class_agnostic_nms(exported, photos_devkit):
    entry, onnx_path, _ = exported[NANO]
    net = mxnet_net(NANO, entry)
    engine = ort_engine(onnx_path, record_path_of(onnx_path))
    transform = nets.eval_transform(NANO)
    compared = explained = 0
    for photo in sorted((photos_devkit / "VOC2007" / "JPEGImages").glob("*.jpg")):
        tensor, _ = transform(mx.image.imread(str(photo)))
        theirs = rows(net(tensor.expand_dims(0)))
        ours = rows(engine(tensor.expand_dims(0).asnumpy()))
        for row in ours[ours[:, 1] > 0.3]:  # each ONNX detection is one of MXNet's
            same = theirs[theirs[:, 0] == row[0]]
            assert len(same), (photo.name, row)
            assert np.abs(same[:, 1:] - row[1:]).max(axis=1).min() <= BOX_TOL_PX, (photo, row)
        for row in theirs[theirs[:, 1] > 0.3]:  # MXNet's, unless another class suppressed it
            compared += 1
            same = ours[ours[:, 0] == row[0]]
            if len(same) and np.abs(same[:, 1:] - row[1:]).max(axis=1).min() <= BOX_TOL_PX:
                continue
            stronger = ours[(ours[:, 0] != row[0]) & (ours[:, 1] >= row[1])]
            assert len(stronger) and iou(row[2:], stronger[:, 2:]).max() > NMS_THRESH, row
            explained += 1
    print(f"nano: {compared} MXNet detections > 0.3, {explained} suppressed across classes")
    assert compared >= 30


def voc_spec(run_dir: Path, devkit: Path, entry: dict, backend: str, model_file=None) -> Path:
    ids = sorted(p.stem for p in (devkit / "VOC2007" / "JPEGImages").glob("*.jpg"))
    spec = {
        "kind": "voc", "config_name": "t", "model": NANO, "family": "darknet", "device": "cpu",
        "mode": "hybrid", "batch_size": 8, "input_shape": None, "warmup": 1, "repeats": 1,
        "devkit": str(devkit), "image_ids": ids, "weights": entry, "backend": backend,
        "dataset": {"name": "t", "fingerprint": "x", "split": "test"},
        "telemetry_interval_s": 0.5, "threads": 2, "prefetch": False,
    }  # fmt: skip
    if model_file is not None:
        spec["model_file"] = model_file
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(spec))
    return run_dir / "spec.json"


def test_onnxruntime_voc_run_writes_the_contract_and_keeps_the_map(
    exported, photos_devkit, tmp_path
):
    entry, onnx_path, _ = exported[NANO]
    model_file = weights.onnx_entry(str(onnx_path), str(record_path_of(onnx_path)))
    maps = {}
    for backend in ("onnxruntime", "mxnet"):
        extra = model_file if backend == "onnxruntime" else None
        spec = voc_spec(tmp_path / backend, photos_devkit, entry, backend, extra)
        result = run_spec(str(spec))
        assert result["status"] == "ok", result["error"]
        assert json.loads((tmp_path / backend / "result.json").read_text()) == result
        maps[backend] = evaluate_files(photos_devkit, tmp_path / backend / "detections.npz",
                                       metric="area")["mAP"]  # fmt: skip
    info = json.loads((tmp_path / "onnxruntime" / "result.json").read_text())["backend"]
    assert info["name"] == "onnxruntime" and info["version"] == "1.32.0"
    assert info["providers"] == ["CPUExecutionProvider"] and info["fallbacks"] == []
    assert info["nms"]["onnx"] == "class-agnostic" and info["opset"] == 13
    print(
        f"nano mAP (area) on the 24 photos: mxnet {maps['mxnet']:.4f}, "
        f"onnxruntime {maps['onnxruntime']:.4f}"
    )
    assert maps["mxnet"] > 0.3 and abs(maps["onnxruntime"] - maps["mxnet"]) <= 0.01


def test_a_tampered_or_empty_onnx_file_is_refused_by_sha256(exported, tmp_path):
    _, onnx_path, _ = exported[NANO]
    copy = tmp_path / "nano.onnx"
    copy.write_bytes(onnx_path.read_bytes()[:-1] + b"\x00")
    entry = weights.onnx_entry(str(copy), str(record_path_of(onnx_path)))
    with pytest.raises(nets.WeightsRefused, match=r"nano\.onnx: sha256 .* differs"):
        engine_onnxruntime.build({"model": NANO, "device": "cpu", "model_file": entry}, mx.cpu())
    copy.write_bytes(b"")
    with pytest.raises(nets.WeightsRefused, match="sha256"):
        engine_onnxruntime.build({"model": NANO, "device": "cpu", "model_file": entry}, mx.cpu())


def test_an_int8_model_fails_to_export_as_a_record_and_its_run_is_refused(exported, tmp_path):
    entry = exported[SSD][0]  # an _int8 model runs on its FP32 base's weights
    model = "ssd_512_mobilenet1.0_voc_int8"
    onnx_path, record_path = tmp_path / f"{model}.onnx", tmp_path / f"{model}.json"
    record = onnx_export.export(model, entry, str(onnx_path), str(record_path))
    assert record["status"] == "failed" and "_contrib_quantize_v2" in record["error"]
    assert onnx_path.stat().st_size == 0 == record["size_bytes"]
    assert json.loads(record_path.read_text())["status"] == "failed"
    model_file = weights.onnx_entry(str(onnx_path), str(record_path))
    assert model_file["error"] == record["error"]
    with pytest.raises(nets.WeightsRefused, match="no ONNX file for .*_contrib_quantize_v2"):
        engine_onnxruntime.build({"model": model, "device": "cpu", "model_file": model_file},
                                 mx.cpu())  # fmt: skip


def test_a_static_batch_yolo3_loads_only_with_optimisations_off_and_says_so(exported, tmp_path):
    """ONNX Runtime 1.32 cannot create a session of YOLOv3 exported with a fixed batch axis at
    ENABLE_ALL, EXTENDED or BASIC ("Attempt to replace the existing tensor"); the engine falls
    back to DISABLE_ALL, records why, and runs a batch image by image."""
    entry, dynamic_onnx, _ = exported[YOLO]
    onnx_path, record_path = tmp_path / "static.onnx", tmp_path / "static.record.json"
    record = onnx_export.export(YOLO, entry, str(onnx_path), str(record_path), dynamic_batch=False)
    assert record["status"] == "ok" and record["input"]["shape"] == [1, 3, 416, 416]
    engine = ort_engine(onnx_path, record_path)
    assert engine.info["graph_optimization_level"] == "ORT_DISABLE_ALL"
    failed = engine.info["fallbacks"]
    assert [f["level"] for f in failed] == list(engine_onnxruntime.LEVELS[:3])
    assert all("Attempt to replace the existing tensor" in f["error"] for f in failed)
    x = np.random.default_rng(1).uniform(-2, 2, size=(2, 3, 416, 416)).astype(np.float32)
    dynamic = ort_engine(dynamic_onnx, record_path_of(dynamic_onnx))
    for ours, theirs in zip(engine(x), dynamic(x), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)


def test_providers_follow_the_device():
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    choose = engine_onnxruntime.choose_providers
    assert choose("cpu", available) == ["CPUExecutionProvider"]
    assert choose("gpu1", available) == [
        ("TensorrtExecutionProvider", {"device_id": 1}),
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    with pytest.raises(nets.DeviceUnavailable, match="no GPU 0: .*onnxruntime-gpu"):
        choose("gpu0", ["AzureExecutionProvider", "CPUExecutionProvider"])


def test_a_spec_without_model_file_is_refused():
    with pytest.raises(nets.WeightsRefused, match="needs the spec's model_file"):
        engine_onnxruntime.build({"model": NANO, "device": "cpu"}, mx.cpu())
