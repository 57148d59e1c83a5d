"""Check a VOC-format dataset once, completely, and fingerprint it.

:func:`check_dataset` is run once per dataset (rule ``check_voc``; also on a user's ``voc.root``)
and writes the figures of ``data/<name>/dataset.json``. It reads every annotation strictly and
every JPEG completely, and reports every bad file in one error rather than stopping at the first.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from detbench.data import synthetic
from detbench.data._fs import read_bounded
from detbench.data.errors import DatasetError, VOCFormatError
from detbench.data.voc import (
    MAX_ANNOTATION_BYTES,
    YEAR_DIR,
    VOCImage,
    annotation_path,
    image_path,
    parse_annotation,
    read_split,
    split_path,
    year_dir,
)

_FINGERPRINT_TAG = b"detbench voc fingerprint v1\n"
MAX_JPEG_BYTES = 64 << 20


def fingerprint(devkit: Path | str, split: str = "test") -> str:
    """12 hex digits of a sha256 over the split's id list and each annotation file's bytes.

    Ids are taken in split order; for each, the id, the annotation's length and its bytes are
    hashed, so any change to the id list, the order or one byte of one annotation changes the
    fingerprint, while images and files outside the split do not count. A missing annotation
    raises :class:`VOCFormatError` naming it.
    """
    digest = hashlib.sha256(_FINGERPRINT_TAG)
    for image_id in read_split(devkit, split):
        path = annotation_path(devkit, image_id)
        try:
            data = read_bounded(path, MAX_ANNOTATION_BYTES)
        except OSError as exc:
            raise VOCFormatError(f"{path}: annotation file unreadable ({exc})") from None
        digest.update(f"{image_id}\n{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()[:12]


def check_jpeg(path: Path, size: tuple[int, int] | None = None) -> str | None:
    """What is wrong with the JPEG at ``path`` (``"<path>: <reason>"``), or ``None``.

    The file must exist, start with a JPEG SOI marker, end its last scan with an EOI marker (a
    cut-off file does not), decode without error and, if ``size`` (width, height) is given, have
    that pixel size.
    """
    try:
        data = read_bounded(path, MAX_JPEG_BYTES)
    except FileNotFoundError:
        return f"{path}: image file missing"
    except OSError as exc:
        return f"{path}: image file unreadable ({exc})"
    if not data.startswith(b"\xff\xd8"):
        return f"{path}: not a JPEG file (no start-of-image marker)"
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        return f"{path}: truncated JPEG (no end-of-image marker after the last scan)"
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return f"{path}: not a JPEG file (Pillow reads it as {image.format})"
            actual = image.size
            image.draft(image.mode, (max(1, actual[0] // 8), max(1, actual[1] // 8)))
            image.load()
    except Exception as exc:  # Pillow raises many types for corrupt data; all mean "bad file"
        return f"{path}: JPEG does not decode ({type(exc).__name__}: {exc})"
    if size is not None and actual != tuple(size):
        return (
            f"{path}: image is {actual[0]}x{actual[1]} pixels but its annotation says "
            f"{size[0]}x{size[1]}"
        )
    return None


def check_dataset(devkit: Path | str, split: str = "test", *, progress: bool = True) -> dict:
    """Check every image of a split and return the ``dataset.json`` record (docs/contracts.md).

    ``devkit`` is a ``VOCdevkit`` directory holding ``VOC2007/Annotations/``,
    ``VOC2007/JPEGImages/`` and ``VOC2007/ImageSets/Main/<split>.txt``. Every annotation is
    parsed strictly (:func:`~detbench.data.voc.parse_annotation`) and every JPEG is checked by
    :func:`check_jpeg` against its annotation's size. All problems are collected and raised
    together as one :class:`DatasetError` (``problems`` holds one line per problem).

    Returns ``{"devkit": str(devkit) as given, "split", "images", "objects" (all, difficult
    included), "difficult", "fingerprint", "synthetic"}``; ``synthetic`` is true for a set made
    by :func:`detbench.data.synthetic.make_synthetic_voc`.
    """
    year = year_dir(devkit)
    folders, split_file = [year / "Annotations", year / "JPEGImages"], split_path(devkit, split)
    missing = [f"{p}/" for p in folders if not p.is_dir()]
    missing += [] if split_file.is_file() else [str(split_file)]
    if missing:
        raise DatasetError(
            f"{devkit}: not a VOCdevkit directory; missing: {', '.join(missing)}. Expected "
            f"{YEAR_DIR}/Annotations/, {YEAR_DIR}/JPEGImages/ and "
            f"{YEAR_DIR}/ImageSets/Main/{split}.txt inside it (if you set `voc.root`, point it "
            f"at the folder that holds {YEAR_DIR}/).",
            missing,
        )
    try:
        ids = read_split(devkit, split)
    except VOCFormatError as exc:
        raise DatasetError(str(exc), [str(exc)]) from None
    problems: list[str] = []
    records: list[VOCImage] = []
    for image_id in tqdm(ids, unit="image", desc=f"check {split}", disable=not progress):
        record = None
        try:
            record = parse_annotation(annotation_path(devkit, image_id))
            records.append(record)
        except VOCFormatError as exc:
            problems.append(str(exc))
        size = (record.width, record.height) if record else None
        if problem := check_jpeg(image_path(devkit, image_id), size):
            problems.append(problem)
    if problems:
        listing = "\n".join(f"  {p}" for p in problems)
        raise DatasetError(
            f"{devkit}: {len(problems)} problem(s) in split {split!r} "
            f"({len(ids)} images):\n{listing}",
            problems,
        )
    objects = [obj for record in records for obj in record.objects]
    return {
        "devkit": str(devkit),
        "split": split,
        "images": len(ids),
        "objects": len(objects),
        "difficult": sum(obj.difficult for obj in objects),
        "fingerprint": fingerprint(devkit, split),
        "synthetic": (Path(devkit) / synthetic.MARKER).is_file(),
    }
