"""Typed, strict reading of a VOC-format dataset (``VOCdevkit/VOC2007``).

Boxes are kept in GluonCV's frame: VOC XML pixel coordinates minus 1, exactly as
``gluoncv.data.VOCDetection`` reads them, so detections from GluonCV models and ground truth agree.
Where GluonCV logs and skips an invalid box or an unknown class, this reader raises
:class:`VOCFormatError` naming the file: a benchmark must not silently score a different set.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from detbench.data._fs import read_bounded
from detbench.data.errors import VOCFormatError

__all__ = [
    "VOC_CLASSES", "YEAR_DIR", "VOCFormatError", "VOCImage", "VOCObject", "annotation_path",
    "image_path", "load_split", "parse_annotation", "read_split", "split_path", "year_dir",
]  # fmt: skip

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
YEAR_DIR = "VOC2007"
_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_SPLIT = re.compile(r"[A-Za-z0-9_-]+")
MAX_SPLIT_BYTES = 16 << 20
MAX_ANNOTATION_BYTES = 4 << 20


@dataclass(frozen=True)
class VOCObject:
    label: int
    box: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in GluonCV's frame
    difficult: bool = False
    truncated: bool = False

    @property
    def name(self) -> str:
        return VOC_CLASSES[self.label]


@dataclass(frozen=True)
class VOCImage:
    image_id: str
    width: int
    height: int
    objects: tuple[VOCObject, ...] = field(default_factory=tuple)


def year_dir(devkit: Path | str) -> Path:
    return Path(devkit) / YEAR_DIR


def split_path(devkit: Path | str, split: str = "test") -> Path:
    if not _SPLIT.fullmatch(split):
        raise VOCFormatError(
            f"split {split!r}: expected a split name like 'test' (letters, digits, '_', '-'), "
            f"naming ImageSets/Main/<split>.txt"
        )
    return year_dir(devkit) / "ImageSets" / "Main" / f"{split}.txt"


def annotation_path(devkit: Path | str, image_id: str) -> Path:
    return year_dir(devkit) / "Annotations" / f"{image_id}.xml"


def image_path(devkit: Path | str, image_id: str) -> Path:
    return year_dir(devkit) / "JPEGImages" / f"{image_id}.jpg"


def read_split(devkit: Path | str, split: str = "test") -> list[str]:
    """The image ids of ``ImageSets/Main/<split>.txt``, in file order.

    Blank lines are skipped. An id must be a plain file stem (letters, digits, ``_``, ``-``,
    ``.``), so it can never name a path outside ``Annotations/`` or ``JPEGImages/``.
    """
    path = split_path(devkit, split)
    try:
        text = read_bounded(path, MAX_SPLIT_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise VOCFormatError(
            f"{path}: split file missing; is {devkit} a VOCdevkit directory "
            f"(one holding {YEAR_DIR}/)?"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VOCFormatError(f"{path}: split file unreadable ({exc})") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise VOCFormatError(f"{path}: split file lists no image ids")
    for number, image_id in enumerate(ids, 1):
        if not _ID.fullmatch(image_id):
            raise VOCFormatError(
                f"{path}: entry {number} is {image_id!r}, expected an image id like '000001'"
            )
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise VOCFormatError(f"{path}: split file lists image ids twice: {', '.join(twice)}")
    return ids


def _text(node: ET.Element, tag: str, path: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise VOCFormatError(f"{path}: <{tag}> missing or empty")
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    text = _text(node, tag, path)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise VOCFormatError(f"{path}: <{tag}> is {text!r}, expected a number")
    return value


def _integer(node: ET.Element, tag: str, path: Path) -> int:
    value = _number(node, tag, path)
    if not value.is_integer():
        raise VOCFormatError(f"{path}: <{tag}> is {value}, expected a whole number of pixels")
    return int(value)


def _flag(node: ET.Element, tag: str, path: Path) -> bool:
    child = node.find(tag)
    if child is None or child.text is None:
        return False
    if child.text.strip() not in ("0", "1"):
        raise VOCFormatError(f"{path}: <{tag}> is {child.text!r}, expected 0 or 1")
    return child.text.strip() == "1"


def parse_annotation(path: Path | str) -> VOCImage:
    """Parse one ``Annotations/<id>.xml`` strictly; raise :class:`VOCFormatError` naming it.

    The image id is the file's stem. Boxes are XML coordinates minus 1 and must satisfy GluonCV's
    ``VOCDetection._validate_label``: ``0 <= xmin < xmax <= width`` and likewise for y. A missing
    ``<difficult>`` or ``<truncated>`` reads as 0; any value other than 0 or 1 is an error.
    """
    path = Path(path)
    try:
        root = ET.fromstring(read_bounded(path, MAX_ANNOTATION_BYTES))
    except FileNotFoundError:
        raise VOCFormatError(f"{path}: annotation file missing") from None
    except ET.ParseError as exc:
        raise VOCFormatError(f"{path}: malformed XML ({exc})") from None
    except OSError as exc:
        raise VOCFormatError(f"{path}: annotation file unreadable ({exc})") from None
    if root.tag != "annotation":
        raise VOCFormatError(f"{path}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is None:
        raise VOCFormatError(f"{path}: <size> missing")
    width, height = _integer(size, "width", path), _integer(size, "height", path)
    if width <= 0 or height <= 0:
        raise VOCFormatError(f"{path}: image size {width}x{height} is not positive")
    objects = []
    for obj in root.iter("object"):
        name = _text(obj, "name", path).lower()
        if name not in VOC_CLASSES:
            raise VOCFormatError(
                f"{path}: unknown class {name!r}; expected one of the 20 VOC classes"
            )
        bnd = obj.find("bndbox")
        if bnd is None:
            raise VOCFormatError(f"{path}: object {name!r} has no <bndbox>")
        box = tuple(_number(bnd, tag, path) - 1 for tag in ("xmin", "ymin", "xmax", "ymax"))
        xmin, ymin, xmax, ymax = box
        if not (0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height):  # GluonCV's check
            raise VOCFormatError(
                f"{path}: box {[v + 1 for v in box]} of {name!r} is empty or outside "
                f"the {width}x{height} image"
            )
        objects.append(
            VOCObject(
                label=VOC_CLASSES.index(name),
                box=box,
                difficult=_flag(obj, "difficult", path),
                truncated=_flag(obj, "truncated", path),
            )
        )
    return VOCImage(image_id=path.stem, width=width, height=height, objects=tuple(objects))


def load_split(devkit: Path | str, split: str = "test") -> list[VOCImage]:
    """Parse every annotation of a split, in split order; the first bad file raises."""
    return [parse_annotation(annotation_path(devkit, i)) for i in read_split(devkit, split)]
