"""A synthetic VOC-format dataset, for the offline demo and the tests.

The set is laid out exactly like ``VOCdevkit/VOC2007`` (``JPEGImages/``, ``Annotations/``,
``ImageSets/Main/<split>.txt``) and exercises every path real data takes: real JPEG files of
200-500 px sides (landscape and portrait, RGB and grayscale), genuine VOC XML with the 20 class
names, 0-6 objects per image, empty images, overlapping objects of one class, and ``difficult``
and ``truncated`` flags. Each object is a coloured shape filling its box, so images are not blank.

With at least three images the set is guaranteed to contain an empty image, a pair of overlapping
objects of one class, a difficult object, a truncated object, a portrait image and a grayscale
image. The output depends only on ``(images, seed, split)``: the same arguments give the same
bytes on any machine (numpy's PCG64 stream, Pillow's JPEG encoder at a fixed quality).

A ``detbench-synthetic.json`` file at the devkit's top records the arguments, so a dataset
check can report the set as synthetic; it is outside ``VOC2007/`` and invisible to VOC readers.
"""

from __future__ import annotations

import colorsys
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from detbench.data._fs import already_made, publish, staging
from detbench.data.voc import VOC_CLASSES, YEAR_DIR

MARKER = "detbench-synthetic.json"
_POSES = ("Unspecified", "Left", "Right", "Frontal", "Rear")
_COUNT_WEIGHTS = np.array([2, 4, 4, 3, 2, 1, 1], dtype=float)  # P(0..6 objects per image)
# One fixed colour per class, spread over the hue circle; deterministic and seed-independent.
_PALETTE = [
    tuple(round(255 * c) for c in colorsys.hsv_to_rgb(i / 20, 0.8, 0.9))
    for i in range(len(VOC_CLASSES))
]


def make_synthetic_voc(devkit: Path, images: int, seed: int, split: str = "test") -> None:
    """Write a synthetic VOC set of ``images`` images to ``devkit`` (a ``VOCdevkit`` directory).

    The set is built in a temporary directory beside ``devkit`` and renamed into place, so
    ``devkit`` appears only complete; an existing empty ``devkit`` directory is replaced. If
    ``devkit`` already holds the set these arguments make, nothing is done; if it holds anything
    else, :class:`DataError` is raised and nothing is touched.
    """
    devkit = Path(devkit)
    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    meta = {"generator": "detbench.data.synthetic", "images": images, "seed": seed, "split": split}
    if already_made(devkit, MARKER, meta, f"the synthetic set {meta}"):
        return
    rng = np.random.default_rng(seed)
    with staging(devkit) as tmp:
        root = tmp / devkit.name
        year = root / YEAR_DIR
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (year / sub).mkdir(parents=True)
        ids = [f"{i + 1:06d}" for i in range(images)]
        for index, image_id in enumerate(ids):
            _write_image(year, image_id, index, rng, seed)
        (year / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
        (root / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
        publish(root, devkit)


def _write_image(year: Path, image_id: str, index: int, rng: np.random.Generator, seed: int):
    long_side, short_side = sorted(rng.integers(200, 501, size=2))[::-1]
    portrait = index == 2 or rng.random() < 0.3
    width, height = (short_side, long_side) if portrait else (long_side, short_side)
    gray = index == 2 or rng.random() < 0.15
    if index == 1:
        count = 0
    else:
        count = int(rng.choice(7, p=_COUNT_WEIGHTS / _COUNT_WEIGHTS.sum()))
        count = max(count, 2) if index == 0 else count
    objects = []
    for k in range(count):
        if index == 0 and k == 1 or k > 0 and rng.random() < 0.2:
            objects.append(_overlapping(objects[-1], width, height, rng))
        else:
            objects.append(
                _random_object(width, height, rng, force_truncated=index == 2 and k == 0)
            )
    if index == 0:
        objects[-1]["difficult"] = 1
    pixels = _draw(width, height, objects, rng)
    image = Image.fromarray(pixels, "RGB")
    if gray:
        image = image.convert("L")
    image.save(year / "JPEGImages" / f"{image_id}.jpg", "JPEG", quality=90)
    xml = _annotation_xml(image_id, width, height, 1 if gray else 3, objects, seed)
    (year / "Annotations" / f"{image_id}.xml").write_bytes(xml)


def _random_object(width: int, height: int, rng: np.random.Generator, force_truncated: bool):
    """One object with a 1-based VOC box inside ``width`` x ``height``."""
    box_w = int(rng.integers(max(12, width // 10), int(width * 0.7) + 1))
    box_h = int(rng.integers(max(12, height // 10), int(height * 0.7) + 1))
    xmin = int(rng.integers(1, width - box_w + 2))
    ymin = int(rng.integers(1, height - box_h + 2))
    truncated = force_truncated or rng.random() < 0.15
    if truncated:  # the object runs off one edge: its box stops at that edge
        side = int(rng.integers(4))
        if side == 0:
            xmin = 1
        elif side == 1:
            xmin = width - box_w + 1
        elif side == 2:
            ymin = 1
        else:
            ymin = height - box_h + 1
    return {
        "name": VOC_CLASSES[int(rng.integers(len(VOC_CLASSES)))],
        "pose": _POSES[int(rng.integers(len(_POSES)))],
        "truncated": int(truncated),
        "difficult": int(rng.random() < 0.1),
        "box": (xmin, ymin, xmin + box_w - 1, ymin + box_h - 1),
    }


def _overlapping(other: dict, width: int, height: int, rng: np.random.Generator) -> dict:
    """An object of ``other``'s class whose box is ``other``'s shifted by 15-40 % of its size."""
    xmin, ymin, xmax, ymax = other["box"]
    dx = int((xmax - xmin + 1) * rng.uniform(0.15, 0.4)) * int(rng.choice([-1, 1]))
    dy = int((ymax - ymin + 1) * rng.uniform(0.15, 0.4)) * int(rng.choice([-1, 1]))
    dx = min(max(dx, 1 - xmin), width - xmax)
    dy = min(max(dy, 1 - ymin), height - ymax)
    if dx == 0 and dy == 0:
        dx = 1 if xmax < width else -1 if xmin > 1 else 0
    return {
        "name": other["name"],
        "pose": _POSES[int(rng.integers(len(_POSES)))],
        "truncated": 0,
        "difficult": 0,
        "box": (xmin + dx, ymin + dy, xmax + dx, ymax + dy),
    }


def _draw(width: int, height: int, objects: list[dict], rng: np.random.Generator) -> np.ndarray:
    top, bottom = rng.integers(40, 216, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    background = (top + (bottom - top) * ramp).astype(np.uint8)
    image = Image.fromarray(np.broadcast_to(background, (height, width, 3)).copy(), "RGB")
    draw = ImageDraw.Draw(image)
    for obj in objects:
        xmin, ymin, xmax, ymax = (v - 1 for v in obj["box"])  # 0-based pixel corners
        colour = _PALETTE[VOC_CLASSES.index(obj["name"])]
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((xmin, ymin, xmax, ymax), fill=colour, outline=(0, 0, 0), width=2)
    return np.asarray(image)


def _annotation_xml(
    image_id: str, width: int, height: int, depth: int, objects: list[dict], seed: int
) -> bytes:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = YEAR_DIR
    ET.SubElement(ann, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(ann, "source")
    ET.SubElement(source, "database").text = "detbench synthetic VOC"
    ET.SubElement(source, "annotation").text = f"detbench.data.synthetic seed {seed}"
    ET.SubElement(source, "image").text = "generated"
    size = ET.SubElement(ann, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(ann, "segmented").text = "0"
    for obj in objects:
        node = ET.SubElement(ann, "object")
        for tag in ("name", "pose", "truncated", "difficult"):
            ET.SubElement(node, tag).text = str(obj[tag])
        bndbox = ET.SubElement(node, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj["box"], strict=True):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(ann, space="\t")
    return ET.tostring(ann, encoding="utf-8") + b"\n"
