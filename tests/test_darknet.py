"""Darknet cfg/weights as an MXNet HybridBlock (detbench/runner/darknet.py), checked layer by
layer against numpy and OpenCV's darknet importer, and end to end against OpenCV on photographs.

OpenCV (``cv2.dnn.readNetFromDarknet``) is an independent implementation of the same files: it
reads the same cfg and weights, and both nets are given the identical resized input tensor, so
only the networks (and their decoding and NMS) are compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import cv2
import mxnet as mx
import numpy as np
import pytest
from helpers import match

from detbench.data.photos import make_photo_voc
from detbench.runner import darknet
from detbench.runs import REPO_ROOT as REPO

SEED_PYTHON = Path(os.environ.get("DETBENCH_SEED_PYTHON", REPO / ".venv36/bin/python"))
NANO = "mobilenetv2-yolov3-nano-voc"
NANO_FILES = ("MobileNetV2-YOLOv3-Nano-voc.cfg", "MobileNetV2-YOLOv3-Nano-voc.weights")
ORACLE_SCORE = 0.3
MIN_ORACLE_DETECTIONS = 30
MIN_ORACLE_CLASSES = 6


def nano_files() -> tuple[str, str]:
    """The Nano VOC model's cfg and weights: the repository's own copy."""
    paths = tuple(REPO / "models" / NANO / name for name in NANO_FILES)
    assert all(p.is_file() for p in paths), f"models/{NANO} is incomplete: {paths}"
    return tuple(str(p) for p in paths)


def photo_paths(tmp: Path) -> list[Path]:
    """The demo's real photographs (detbench/data/photos: 24 photos that installed packages
    ship, over a dozen VOC classes), as the demo's VOCdevkit holds them."""
    devkit = tmp / "VOCdevkit"
    make_photo_voc(devkit)
    return sorted((devkit / "VOC2007" / "JPEGImages").glob("*.jpg"))


# ---------------------------------------------------------------------------------------------
# Small hand-made models


def write_model(folder: Path, cfg: str, seed: int = 0) -> tuple[str, str]:
    """A cfg file and a weights file of small random values (positive variances) for it."""
    cfg_path, weights_path = folder / "tiny.cfg", folder / "tiny.weights"
    cfg_path.write_text(textwrap.dedent(cfg))
    specs = darknet.plan_network(*darknet.parse_cfg(str(cfg_path)), str(cfg_path))
    rng = np.random.default_rng(seed)
    chunks = [np.array([0, 2, 5], "<i4").tobytes(), np.array([1000], "<i8").tobytes()]
    for spec in (s for s in specs if s["type"] == "convolutional"):
        n = spec["filters"]
        fan_in = spec["in_channels"] // spec["groups"] * spec["size"] ** 2
        parts = [rng.normal(0, 0.5, n)]
        if spec["batch_normalize"]:
            parts += [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n), rng.uniform(0.2, 2, n)]
        parts.append(rng.normal(0, 1 / np.sqrt(fan_in), n * fan_in))
        chunks.append(np.concatenate(parts).astype("<f4").tobytes())
    weights_path.write_bytes(b"".join(chunks))
    return str(cfg_path), str(weights_path)


def run_both(cfg: str, weights: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last layer's output of detbench's net (hybridized) and of OpenCV's, for input x."""
    net = darknet.load_darknet(cfg, weights)
    net.hybridize(static_alloc=True, static_shape=True)
    ours = net(mx.nd.array(x)).asnumpy()
    cv_net = cv2.dnn.readNetFromDarknet(cfg, weights)
    cv_net.setInput(x)
    return ours, cv_net.forward()


NET = "[net]\nwidth={w}\nheight={h}\nchannels={c}\n"
LAYER_CASES = {
    "conv_bn_leaky_depthwise_shortcut": """
        [convolutional]
        filters=8
        size=3
        stride=2
        pad=1
        batch_normalize=1
        activation=leaky
        [convolutional]
        filters=8
        size=3
        groups=8
        pad=1
        batch_normalize=1
        activation=relu
        [convolutional]
        filters=8
        size=1
        activation=linear
        [shortcut]
        from=-3
        activation=linear
        """,
    "maxpool_padding_and_spp": """
        [convolutional]
        filters=6
        size=1
        activation=linear
        [maxpool]
        size=2
        stride=1
        [maxpool]
        size=3
        stride=2
        [maxpool]
        size=5
        stride=1
        [route]
        layers=-2
        [maxpool]
        size=9
        stride=1
        [route]
        layers=-1,-3
        [maxpool]
        size=2
        stride=2
        """,
    "route_groups_and_upsample": """
        [convolutional]
        filters=8
        size=3
        stride=2
        pad=1
        batch_normalize=1
        activation=leaky
        [route]
        layers=-1
        groups=2
        group_id=1
        [convolutional]
        filters=4
        size=3
        pad=1
        activation=relu
        [route]
        layers = -1, -2
        [upsample]
        stride=2
        [convolutional]
        filters=6
        size=1
        activation=linear
        [route]
        layers=-1,-2
        [route]
        layers=-1
        groups=2
        group_id=1
        """,
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layers_match_opencv(tmp_path, case):
    # Odd sizes make max pooling use its right/bottom padding; the linear convolution with a
    # zero-mean bias makes pooled values negative, so a zero-padded pool would differ.
    height, width = (13, 11) if case != "route_groups_and_upsample" else (14, 10)
    cfg, weights = write_model(tmp_path, NET.format(w=width, h=height, c=3) + LAYER_CASES[case])
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, height, width)).astype("float32")
    ours, theirs = run_both(cfg, weights, x)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def darknet_maxpool(x: np.ndarray, size: int, stride: int, padding: int) -> np.ndarray:
    """darknet's forward_maxpool_layer, loop for loop."""
    _, channels, height, width = x.shape
    out_h, out_w = (height + padding - size) // stride + 1, (width + padding - size) // stride + 1
    out = np.full((1, channels, out_h, out_w), -np.inf, dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            for n in range(size):
                for m in range(size):
                    row, col = i * stride - padding // 2 + n, j * stride - padding // 2 + m
                    if 0 <= row < height and 0 <= col < width:
                        out[0, :, i, j] = np.maximum(out[0, :, i, j], x[0, :, row, col])
    return out


@pytest.mark.parametrize("size,stride,padding", [(2, 1, None), (2, 2, None), (3, 2, None),
                                                 (5, 1, None), (3, 2, 0), (3, 1, 3)])
def test_maxpool_is_darknets(tmp_path, size, stride, padding):
    option = "" if padding is None else f"padding={padding}\n"
    cfg, weights = write_model(
        tmp_path, NET.format(w=9, h=7, c=2) + f"[maxpool]\nsize={size}\nstride={stride}\n{option}")
    x = np.random.default_rng(2).normal(-5, 1, (1, 2, 7, 9)).astype("float32")
    ours = darknet.load_darknet(cfg, weights)(mx.nd.array(x)).asnumpy()
    expected = darknet_maxpool(x, size, stride, size - 1 if padding is None else padding)
    np.testing.assert_array_equal(ours, expected)


def test_route_group_takes_one_channel_chunk(tmp_path):
    cfg = NET.format(w=4, h=3, c=6) + "[maxpool]\nsize=1\nstride=1\n" \
        "[route]\nlayers=-1\ngroups=3\ngroup_id=2\n[route]\nlayers=0,1\n"
    cfg, weights = write_model(tmp_path, cfg)
    x = np.arange(72, dtype="float32").reshape(1, 6, 3, 4)
    out = darknet.load_darknet(cfg, weights)(mx.nd.array(x)).asnumpy()
    np.testing.assert_array_equal(out, np.concatenate([x, x[:, 4:6]], axis=1))


# ---------------------------------------------------------------------------------------------
# Parsing and refusals


def test_parse_cfg_types_values_and_skips_comments(tmp_path):
    path = tmp_path / "a.cfg"
    path.write_text("# top\n[net]\nwidth = 320\nhue=.1\n; note\nsteps=40000,45000\n\n"
                    "[yolo]\nanchors = 26, 48,  67, 84\nmask=0 # inline\niou_loss=ciou\n")
    net, layers = darknet.parse_cfg(str(path))
    assert net == {"width": 320, "hue": 0.1, "steps": [40000, 45000]}
    assert layers == [{"type": "yolo", "anchors": [26, 48, 67, 84], "mask": 0,
                       "iou_loss": "ciou"}]


def test_nano_cfg_plans_to_two_yolo_heads():
    specs = darknet.plan_network(*darknet.parse_cfg(nano_files()[0]))
    yolos = [s for s in specs if s["type"] == "yolo"]
    assert [y["grid"] for y in yolos] == [(10, 10), (20, 20)]
    assert [y["scale_x_y"] for y in yolos] == [1.1, 1.05]
    assert yolos[0]["anchors"][0] == (189.0, 126.0) and yolos[1]["classes"] == 20


@pytest.mark.parametrize("layer,message", [
    ("[reorg]\nstride=2\n", "layer 1 [reorg]"),
    ("[convolutional]\nfilters=4\nsize=1\nactivation=mish\n", "activation=mish unsupported"),
    ("[convolutional]\nfilters=4\nsize=1\n", "activation=logistic unsupported"),
    ("[maxpool]\nsize=2\nstride=2\nmaxpool_depth=1\n", "unsupported option(s) maxpool_depth"),
    ("[route]\nlayers=-5\n", "not an earlier layer"),
    ("[maxpool]\n[route]\nlayers=-1,-2\ngroups=2\ngroup_id=1\n", "groups=2 with several"),
])
def test_unsupported_layers_are_refused_by_name(tmp_path, layer, message):
    path = tmp_path / "bad.cfg"
    path.write_text(NET.format(w=8, h=8, c=3) + "[convolutional]\nfilters=4\nsize=1\n"
                    "activation=linear\n" + layer)
    with pytest.raises(darknet.DarknetError) as error:
        darknet.build_darknet(str(path))
    assert message in str(error.value) and str(path) in str(error.value)


def test_malformed_cfg_is_refused(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("[net]\nwidth=8\nheight 8\n")
    with pytest.raises(darknet.DarknetError, match="line 3"):
        darknet.parse_cfg(str(path))


@pytest.mark.parametrize("change", [-4, 4])
def test_weights_of_the_wrong_length_are_refused(tmp_path, change):
    cfg, weights = write_model(tmp_path, NET.format(w=8, h=8, c=3) + LAYER_CASES[
        "conv_bn_leaky_depthwise_shortcut"])
    data = Path(weights).read_bytes()
    Path(weights).write_bytes(data[:change] if change < 0 else data + bytes(change))
    with pytest.raises(darknet.DarknetError) as error:
        darknet.load_darknet(cfg, weights)
    message = str(error.value)
    assert f"{len(data) + change} bytes" in message and f"need {len(data)} bytes" in message
    assert weights in message


# ---------------------------------------------------------------------------------------------
# The real model


@pytest.fixture(scope="module")
def nano():
    return darknet.load_darknet(*nano_files())


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return photo_paths(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def group_photo(photos):
    """insightface's t1.jpg: six people at a table, many detections."""
    return next(p for p in photos if p.name == "000010.jpg")


def detect(net, path: Path) -> tuple[np.ndarray, mx.nd.NDArray, tuple[int, int]]:
    """detbench's detections on a photo as rows [class, score, x1, y1, x2, y2] in original-image
    pixels, plus the input tensor and the image's (height, width)."""
    image = mx.image.imread(str(path))
    tensor, unwarp = darknet.DarknetTransform(*net.input_size)(image)
    ids, scores, boxes = (a[0].asnumpy() for a in net(tensor.expand_dims(0)))
    valid = ids[:, 0] >= 0
    rows = np.hstack([ids[valid], scores[valid], unwarp(boxes[valid])])
    return rows, tensor, image.shape[:2]


def opencv_detect(cv_net, tensor: mx.nd.NDArray, shape: tuple[int, int], floor: float):
    """OpenCV's detections above ``floor``: per-class NMS 0.45 on its yolo rows ([cx, cy, w, h,
    objectness, objectness * class probability...], relative to the input), boxes mapped to
    original-image pixels and clipped as detbench's unwarp clips them."""
    cv_net.setInput(tensor.expand_dims(0).asnumpy())
    out = np.vstack(cv_net.forward(cv_net.getUnconnectedOutLayersNames()))
    assert np.all(out[:, 5:] <= out[:, 4:5] + 1e-6), "class columns are not objectness-scaled"
    height, width = shape
    corners = np.hstack([out[:, :2] - out[:, 2:4] / 2, out[:, :2] + out[:, 2:4] / 2])
    rows = []
    for cls in range(out.shape[1] - 5):
        scores = out[:, 5 + cls]
        xywh = [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in corners * 320]
        for i in np.asarray(cv2.dnn.NMSBoxes(xywh, scores.tolist(), floor, 0.45)).reshape(-1):
            box = np.clip(corners[i] * [width, height, width, height], 0, [width, height] * 2)
            rows.append([cls, scores[i], *box])
    return np.array(rows).reshape(-1, 6)


def test_opencv_oracle_on_photographs(nano, photos):
    cv_net = cv2.dnn.readNetFromDarknet(*nano_files())
    compared, worst_edge, worst_score, classes = 0, 0.0, 0.0, set()
    for path in photos:
        ours, tensor, shape = detect(nano, path)
        theirs = opencv_detect(cv_net, tensor, shape, ORACLE_SCORE)
        edge, score, missing = match(theirs, ours)
        assert missing == 0 and edge <= 1.0 and score <= 1e-3, (path, edge, score, theirs, ours)
        # and the other way round, away from the threshold
        edge, score, missing = match(ours[ours[:, 1] > ORACLE_SCORE + 0.01], theirs)
        assert missing == 0 and edge <= 1.0 and score <= 1e-3, (path, edge, score, theirs, ours)
        compared += len(theirs)
        classes.update(theirs[:, 0].astype(int).tolist())
        worst_edge, worst_score = max(worst_edge, edge), max(worst_score, score)
    print(f"oracle: {compared} OpenCV detections > {ORACLE_SCORE} of {len(classes)} classes on "
          f"{len(photos)} photos, max box-edge diff {worst_edge:.4f} px, max score diff "
          f"{worst_score:.2e}")
    assert compared >= MIN_ORACLE_DETECTIONS and len(classes) >= MIN_ORACLE_CLASSES


def test_oracle_would_catch_a_class_shift_or_a_wrong_unwarp(nano, group_photo):
    cv_net = cv2.dnn.readNetFromDarknet(*nano_files())
    ours, tensor, shape = detect(nano, group_photo)
    theirs = opencv_detect(cv_net, tensor, shape, ORACLE_SCORE)
    shifted = ours.copy()
    shifted[:, 0] += 1
    assert match(theirs, shifted)[2] > 0
    unscaled = ours.copy()
    unscaled[:, 2:] *= 320 / np.array([shape[1], shape[0]] * 2)  # boxes left in input pixels
    assert match(theirs, unscaled)[0] > 1.0


def test_hybridized_equals_imperative(group_photo):
    imperative = darknet.load_darknet(*nano_files())
    hybrid = darknet.load_darknet(*nano_files())
    hybrid.hybridize(static_alloc=True, static_shape=True)
    hybrid.set_nms(nms_thresh=0.45, nms_topk=400)
    tensor, _ = darknet.DarknetTransform(320, 320)(mx.image.imread(str(group_photo)))
    batch = mx.nd.stack(tensor, tensor.flip(axis=2))
    for a, b in zip(imperative(batch), hybrid(batch), strict=True):
        assert a.shape == b.shape and a.shape[:2] == (2, 100)
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-4)


def test_output_contract(nano, group_photo):
    rows, _, shape = detect(nano, group_photo)
    assert len(rows) and rows[:, 1].min() > nano.thresh and (np.diff(rows[:, 1]) <= 0).all()
    assert (rows[:, 2:] >= 0).all() and (rows[:, [2, 4]] <= shape[1]).all()
    assert (rows[:, [3, 5]] <= shape[0]).all()


# ---------------------------------------------------------------------------------------------
# The seed stack: Python 3.6, MXNet 1.6


SEED_SCRIPT = """
import json, sys
import mxnet as mx
from detbench.runner import darknet
net = darknet.load_darknet(sys.argv[1], sys.argv[2])
net.hybridize(static_alloc=True, static_shape=True)
net.set_nms(nms_thresh=0.45, nms_topk=400)
tensor, unwarp = darknet.DarknetTransform(*net.input_size)(mx.image.imread(sys.argv[3]))
ids, scores, boxes = (a[0].asnumpy() for a in net(tensor.expand_dims(0)))
keep = ids[:, 0] >= 0
rows = [[float(v) for v in row] for row in zip(ids[keep, 0], scores[keep, 0],
                                                *unwarp(boxes[keep]).T)]
print(json.dumps({"mxnet": mx.__version__, "rows": rows}))
"""


def test_seed_stack_gives_the_same_detections(nano, group_photo):
    assert SEED_PYTHON.exists(), f"{SEED_PYTHON} missing: run `make test` (it builds .venv36)"
    photo = group_photo
    done = subprocess.run(
        [str(SEED_PYTHON), "-c", SEED_SCRIPT, *nano_files(), str(photo)], capture_output=True,
        text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mxnet"] == "1.6.0"
    seed = np.array(result["rows"]).reshape(-1, 6)
    ours, _, _ = detect(nano, photo)
    strong = seed[:, 1] > 0.05
    assert strong.sum() >= 3
    for a, b in ((seed[strong], ours), (ours[ours[:, 1] > 0.06], seed)):
        edge, score, missing = match(a, b)
        assert missing == 0 and edge <= 1.0 and score <= 1e-3, (edge, score)
