"""The ``quantized`` weights source: INT8 made by the device runner's interpreter, loaded by the
runner as a symbol model; where quantizing fails, the error reaches every run of the model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mxnet as mx
import pytest

from detbench import weights
from detbench.data.synthetic import make_synthetic_voc
from detbench.runner import nets
from detbench.runner.quantize import symbol_path_for

MODEL = "ssd_300_mobilenet0.25_voc"
QUANTIZE = {"from": "untrained", "images": 3, "calib_mode": "naive"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """A synthetic VOCdevkit and a speed-sample file of its ids."""
    root = tmp_path_factory.mktemp("data")
    make_synthetic_voc(root / "VOCdevkit", images=4, seed=0)
    ids = root / "speed_images.txt"
    ids.write_text("000004\n000002\n000003\n000001\n")
    return root / "VOCdevkit", ids


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("untrained")
    params, sidecar = folder / f"{MODEL}.params", folder / f"{MODEL}.json"
    nets.build_net(MODEL, mx.cpu(), seed=0).save_parameters(str(params))
    weights.write_sidecar(params, sidecar, model=MODEL, source="untrained", untrained=True, seed=0)
    return params, sidecar


def quantized(tmp_path, fp32_params, fp32_sidecar, dataset):
    devkit, ids = dataset
    params, sidecar = tmp_path / f"{MODEL}.params", tmp_path / f"{MODEL}.json"
    log = tmp_path / "quantize.log"
    facts = weights.make_quantized(
        MODEL, QUANTIZE, fp32_params, fp32_sidecar, devkit, ids, 300, params, sidecar,
        python=sys.executable, log_path=log,
    )  # fmt: skip
    assert facts == json.loads(sidecar.read_text())
    return params, sidecar, facts


def test_symbol_file_sits_beside_the_params():
    assert symbol_path_for("weights/quantized/m.params") == "weights/quantized/m-symbol.json"


def test_quantized_model_is_a_hashed_symbol_model_that_the_runner_loads(tmp_path, fp32, dataset):
    params, sidecar, facts = quantized(tmp_path, *fp32, dataset)
    assert facts["format"] == "symbol" and facts["source"] == "quantized"
    assert facts["untrained"] is True  # inherited from the FP32 weights it was made from
    assert facts["calibration"] == {
        "mode": "naive", "image_ids": ["000004", "000002", "000003"], "size": 300,
        "input_shape": [300, 300],
    }  # fmt: skip
    assert facts["fp32"]["sha256"] == weights.sha256_file(fp32[0])
    assert facts["symbol"] == str(tmp_path / f"{MODEL}-symbol.json")
    assert facts["symbol_sha256"] == weights.sha256_file(facts["symbol"])
    entry = weights.runner_entry(str(params), str(sidecar))
    net = nets.build_from_weights(MODEL, mx.cpu(), entry)
    assert isinstance(net, mx.gluon.SymbolBlock)
    symbol = Path(facts["symbol"]).read_text()
    assert "_sg_mkldnn_conv" in symbol and "quantize" in symbol  # INT8 oneDNN kernels
    net.hybridize(static_alloc=True, static_shape=True)
    ids, scores, boxes = net(mx.nd.zeros((1, 3, 300, 300)))
    assert (ids.shape, scores.shape, boxes.shape) == ((1, 100, 1), (1, 100, 1), (1, 100, 4))


def test_failed_quantization_is_recorded_and_fails_every_run_with_its_error(tmp_path, dataset):
    broken = tmp_path / "broken.params"
    broken.write_bytes(b"not an MXNet parameter file")
    broken_sidecar = tmp_path / "broken.json"
    weights.write_sidecar(broken, broken_sidecar, model=MODEL, source="file", untrained=False)
    params, sidecar, facts = quantized(tmp_path, broken, broken_sidecar, dataset)
    assert facts["error"].startswith("quantizing failed: MXNetError") and params.stat().st_size == 0
    assert "symbol_sha256" not in facts and Path(facts["symbol"]).stat().st_size == 0
    entry = weights.runner_entry(str(params), str(sidecar))
    with pytest.raises(nets.WeightsRefused, match="no quantized weights for .*quantizing failed"):
        nets.build_from_weights(MODEL, mx.cpu(), entry)


def test_darknet_model_quantizes_with_its_yolo_heads_fp32_and_the_runner_loads_it(tmp_path):
    """The trained Nano from its cfg + weights, calibrated on two photos: every convolution is
    an INT8 oneDNN one except the two feeding the [yolo] layers, and the runner's symbol model
    finds the portrait's person as the FP32 block does."""
    from detbench.data.photos import make_photo_voc
    from detbench.runner import darknet, quantize
    from detbench.runner.run import image_reader

    nano = Path(__file__).resolve().parent.parent / "models" / "mobilenetv2-yolov3-nano-voc"
    cfg, raw = (
        nano / "MobileNetV2-YOLOv3-Nano-voc.cfg",
        nano / "MobileNetV2-YOLOv3-Nano-voc.weights",
    )
    make_photo_voc(tmp_path / "VOCdevkit")
    out = tmp_path / "nano_int8.params"
    symbol = quantize.quantize_to_files(
        "mobilenetv2_yolov3_nano_voc", str(raw), str(tmp_path / "VOCdevkit"), ["000001", "000002"],
        320, str(out), "naive", cfg_path=str(cfg),
    )  # fmt: skip
    fp32 = darknet.load_darknet(str(cfg), str(raw))
    heads = quantize.darknet_fp32_layers(fp32)
    assert len(heads) == 2 and all(
        fp32.specs[int(h.strip("_")[4:])]["type"] == "convolutional" for h in heads
    )
    fused = [
        n for n in json.loads(Path(symbol).read_text())["nodes"] if n["op"] == "_sg_mkldnn_conv"
    ]
    fp32_convs = [  # a fused node keeps its convolution's name in its subgraph
        inner["name"]
        for node in fused
        if not node["name"].startswith("quantized_")
        for inner in node["subgraphs"][0]["nodes"]
        if inner["op"] == "Convolution"
    ]
    assert len(fused) > 50  # the net's own prefix (darknetnetN) counts the nets built before
    assert sorted(n[n.index("_conv") :] for n in fp32_convs) == sorted(f"{h}fwd" for h in heads)
    net = mx.gluon.SymbolBlock.imports(symbol, ["data"], str(out))
    net.hybridize(static_alloc=True, static_shape=True)
    image = image_reader(str(tmp_path / "VOCdevkit"))("000001")
    x = darknet.DarknetTransform(320, 320)(image)[0].expand_dims(0)
    found = {}
    for name, model in (("fp32", fp32), ("int8", net)):
        ids, scores, _ = (a.asnumpy()[0, :, 0] for a in model(x))
        found[name] = set(ids[scores > 0.3].astype(int).tolist())
    assert found["int8"] == found["fp32"] and found["fp32"]
