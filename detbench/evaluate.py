"""PASCAL VOC detection metrics: VOC07 11-point AP and area-under-curve AP, vectorised with numpy.

The numbers equal GluonCV's ``VOC07MApMetric`` (``metric="voc07"``) and ``VOCMApMetric``
(``metric="area"``, the devkit's ``VOCap`` used from VOC2010 on) from
``gluoncv.utils.metrics.voc_detection``, fed one image at a time in the order of ``images`` with
each image's detections in file order, as GluonCV's eval scripts do:

- IoU uses the +1 pixel convention (a box ``[0, 0, 9, 9]`` is 10x10 pixels) and is computed in
  float32, as GluonCV's data pipeline hands float32 boxes to the metric;
- a detection is matched to the ground truth (GT) box of its class and image with the largest IoU,
  the first one on ties, difficult GT included. With IoU >= ``iou_threshold`` it is ignored
  (neither TP nor FP) if that GT is difficult, a true positive if it is the first detection to
  claim it, else a false positive, even when another GT would have matched;
- detections are ranked by score as GluonCV ranks them, ties included: within an image with
  ``np.argsort(scores)[::-1]``, then per class over the concatenation of all images with the same
  expression, so a tie resolves exactly as in GluonCV with the installed numpy;
- a class without non-difficult GT has no AP (``None`` in ``ap_per_class``) and ``mAP`` is the
  mean over the other classes, like GluonCV's ``np.nanmean``.

Where GluonCV differs from the PASCAL VOC devkit (``VOCevaldet.m``), GluonCV is followed, because
the GluonCV model zoo and the seed study report GluonCV's number:

- the devkit needs IoU strictly above 0.5 (``ovmax > minoverlap``), GluonCV accepts IoU == 0.5;
- the devkit ranks all detections of a class with MATLAB's stable ``sort(-confidence)`` (ties in
  file order); GluonCV's reversed, non-stable ``argsort`` can order tied detections differently;
- the devkit computes in double precision from the XML's integer coordinates, GluonCV in float32;
- the devkit scores a class without non-difficult GT as AP 0 (its 11-point loop takes ``p=0``
  when no recall reaches ``t``) and the challenge averages all 20 classes. ``mAP_all_classes``
  gives that mean; it differs from ``mAP`` only when a class has no non-difficult GT.
"""

from __future__ import annotations

import math
import stat
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detbench.contract import DETECTION_KEYS, DetbenchError
from detbench.data.voc import VOC_CLASSES, VOCImage, load_split
from detbench.files import write_json_atomic

__all__ = [
    "ACCURACY_TOLERANCE", "DETECTION_KEYS", "METRICS", "Detections", "DetectionsError",
    "accuracy_flag", "average_precisions", "check_detections", "evaluate", "evaluate_files",
    "load_detections", "write_map_json",
]  # fmt: skip

METRICS = ("voc07", "area")
ACCURACY_TOLERANCE = 0.01
MAX_DETECTIONS_BYTES = 1 << 30  # ~30 million detections: far beyond any VOC run
MAP_AVERAGES = "classes with non-difficult ground truth (GluonCV)"
_NUM_CLASSES = len(VOC_CLASSES)
_VOC07_RECALLS = np.arange(0.0, 1.1, 0.1)  # GluonCV's thresholds, bit for bit


class DetectionsError(DetbenchError, ValueError):
    """A detections file (or in-memory :class:`Detections`) breaks the DESIGN §4 contract.

    The message names the source, the key and, where it applies, the first offending row.
    """


@dataclass(frozen=True)
class Detections:
    """All detections of one run, as stored in ``detections.npz`` (DESIGN §4).

    ``image_ids`` (N,) str: VOC ids in run order; ``image_index`` (M,) int: the row of
    ``image_ids`` each detection belongs to; ``labels`` (M,) int: class index 0..19 in
    ``VOC_CLASSES`` order; ``scores`` (M,) float; ``boxes`` (M, 4) float: ``xmin, ymin, xmax,
    ymax`` in original-image pixels in GluonCV's frame (VOC XML coordinates minus 1).
    """

    image_ids: np.ndarray
    image_index: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def arrays(self) -> dict[str, np.ndarray]:
        """The five arrays by their npz key, ready for ``np.savez``."""
        return {key: getattr(self, key) for key in DETECTION_KEYS}


def _rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
    return f"row {rows[0]}{more}"


def check_detections(
    arrays: Mapping[str, np.ndarray],
    source: str,
    known_ids: Iterable[str] | None = None,
    *,
    known_as: str = "known image ids",
) -> Detections:
    """Validate the five arrays against DESIGN §4 and return them as :class:`Detections`.

    Integer arrays become int64; float arrays keep their precision. ``known_ids``, when given,
    must contain every image id; ``known_as`` names them in the error.
    Raises :class:`DetectionsError` naming ``source``, the key and the first offending row.
    """

    def fail(key: str, message: str) -> DetectionsError:
        return DetectionsError(f"{source}: key {key!r}: {message}")

    missing = [key for key in DETECTION_KEYS if key not in arrays]
    if missing:
        raise DetectionsError(
            f"{source}: expected keys {', '.join(DETECTION_KEYS)}, "
            f"missing {', '.join(repr(k) for k in missing)}"
        )
    arr = {key: np.asarray(arrays[key]) for key in DETECTION_KEYS}
    ids = arr["image_ids"]
    if ids.dtype.kind != "U" or ids.ndim != 1:
        raise fail("image_ids", f"expected a 1-d str array (dtype <U), got {ids.dtype} {ids.shape}")
    if arr["image_index"].ndim != 1:
        raise fail("image_index", f"expected shape (M,), got {arr['image_index'].shape}")
    m = len(arr["image_index"])
    kinds = {"image_index": "iu", "labels": "iu", "scores": "f", "boxes": "f"}
    shapes = {"image_index": (m,), "labels": (m,), "scores": (m,), "boxes": (m, 4)}
    names = {"iu": "an int", "f": "a float"}
    for key, kind in kinds.items():
        a = arr[key]
        if a.dtype.kind not in kind:
            raise fail(key, f"expected {names[kind]} array, got dtype {a.dtype}")
        if a.shape != shapes[key]:
            want = "(M,)" if key != "boxes" else "(M, 4)"
            raise fail(key, f"expected shape {want} with M = len(image_index) = {m}, got {a.shape}")
    index = arr["image_index"].astype(np.int64)
    labels = arr["labels"].astype(np.int64)
    scores, boxes = arr["scores"], arr["boxes"]
    bad = (index < 0) | (index >= len(ids))
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise fail(
            "image_index",
            f"{_rows(bad)}: expected a row of image_ids in 0..{len(ids) - 1}, got {index[i]}",
        )
    bad = (labels < 0) | (labels >= _NUM_CLASSES)
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise fail(
            "labels",
            f"{_rows(bad)}: expected a class index in 0..{_NUM_CLASSES - 1}, got {labels[i]}",
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise fail("scores", f"{_rows(bad)}: expected a finite score, got {scores[i]}")
    bad = ~np.isfinite(boxes).all(axis=1) if not np.isfinite(boxes).all() else None
    if bad is not None:
        i = np.flatnonzero(bad)[0]
        raise fail("boxes", f"{_rows(bad)}: expected finite coordinates, got {boxes[i].tolist()}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise fail(
            "boxes",
            f"{_rows(bad)}: expected xmin <= xmax and ymin <= ymax, got {boxes[i].tolist()} "
            "(xmin, ymin, xmax, ymax)",
        )
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        twice = unique[counts > 1]
        raise fail("image_ids", f"expected each id once, got {len(twice)} repeated: {_few(twice)}")
    if known_ids is not None:
        known = set(known_ids)
        unknown = [i for i in ids.tolist() if i not in known]
        if unknown:
            raise fail(
                "image_ids",
                f"expected ids among the {len(known)} {known_as}, got {len(unknown)} "
                f"unknown: {_few(unknown)}",
            )
    return Detections(ids, index, labels, scores, boxes)


def _few(values: Sequence[str] | np.ndarray, limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


def load_detections(
    path: Path | str, known_ids: Iterable[str] | None = None, *, known_as: str = "known image ids"
) -> Detections:
    """Read and validate a ``detections.npz`` (DESIGN §4) with ``allow_pickle=False``.

    A pickled object array is refused, never unpickled. Every contract breach raises
    :class:`DetectionsError` naming the file, the key and the first offending row, as
    "expected X, got Y". ``known_ids`` (e.g. the split's ids) must contain every image id;
    ``known_as`` names them in the error. Keys beyond the five of the contract are ignored.
    """
    path = Path(path)
    arrays = _read_npz(path)
    return check_detections(arrays, str(path), known_ids, known_as=known_as)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The contract's arrays of the ``.npz`` at ``path``, each inflated only after its ``.npy``
    header has been read and its size checked (:data:`MAX_DETECTIONS_BYTES` in all), so a small
    compressed file cannot claim gigabytes; a FIFO or device is refused unread."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DetectionsError(f"{path}: detections file not found") from None
    except OSError as exc:
        raise DetectionsError(f"{path}: unreadable ({exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DetectionsError(f"{path}: expected a regular .npz file, got a special file")
    with open(path, "rb") as handle:
        head = handle.read(6)
    if head == b"\x93NUMPY":
        raise DetectionsError(
            f"{path}: expected an .npz archive with keys {', '.join(DETECTION_KEYS)}, "
            "got a single array (.npy)"
        )
    if not head.startswith(b"PK"):
        got = "an empty file" if not head else f"a file starting with {head!r}"
        raise DetectionsError(f"{path}: expected an .npz archive (a zip file), got {got}")
    try:
        with zipfile.ZipFile(path) as archive:
            headers = {k: _npy_header(archive, f"{k}.npy", path) for k in DETECTION_KEYS
                       if f"{k}.npy" in archive.namelist()}  # fmt: skip
            total = sum(nbytes for _, _, nbytes in headers.values())
            if total > MAX_DETECTIONS_BYTES:
                shapes = ", ".join(f"{k} {shape}" for k, (shape, _, _) in headers.items())
                raise DetectionsError(
                    f"{path}: expected at most {MAX_DETECTIONS_BYTES >> 20} MiB of arrays, its "
                    f"headers claim {total >> 20} MiB ({shapes}); refused before reading"
                )
            arrays = {}
            for key in headers:
                with archive.open(f"{key}.npy") as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DetectionsError):
            raise
        raise DetectionsError(
            f"{path}: expected an .npz archive, got an unreadable file ({exc})"
        ) from None
    return arrays


def _npy_header(archive: zipfile.ZipFile, name: str, path: Path) -> tuple:
    """(shape, dtype, nbytes) from the ``.npy`` header of member ``name``; object arrays
    (pickles) are refused here."""
    key = name[: -len(".npy")]
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise DetectionsError(f"{path}: key {key!r}: unsupported .npy version {version}")
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)  # fmt: skip
        shape, _, dtype = read(member)
    if dtype.hasobject:
        raise DetectionsError(
            f"{path}: key {key!r}: expected a plain numpy array, got a pickled object "
            "array (dtype object), which is refused; save str ids with dtype str and "
            "numbers with numeric dtypes"
        )
    return shape, dtype, math.prod(shape) * dtype.itemsize


def _ground_truth(images: Sequence[VOCImage]):
    counts = [len(image.objects) for image in images]
    objects = [obj for image in images for obj in image.objects]
    n = len(objects)
    image = np.repeat(np.arange(len(images), dtype=np.int64), counts)
    labels = np.fromiter((o.label for o in objects), np.int64, n)
    boxes = np.array([o.box for o in objects], dtype=np.float32).reshape(n, 4)
    difficult = np.fromiter((o.difficult for o in objects), bool, n)
    return image, labels, boxes, difficult


def _iou_plus_one(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box pairs given as rows ``xmin, ymin, xmax, ymax`` of (4, P) arrays.

    The same float operations, in the same order and dtype, as GluonCV's metric: ``xmax`` and
    ``ymax`` get +1, then ``bbox_iou`` with ``offset=0``.
    """
    ax2, ay2, bx2, by2 = a[2] + 1, a[3] + 1, b[2] + 1, b[3] + 1
    left, top = np.maximum(a[0], b[0]), np.maximum(a[1], b[1])
    right, bottom = np.minimum(ax2, bx2), np.minimum(ay2, by2)
    area_i = (right - left) * (bottom - top) * ((left < right) & (top < bottom))
    area_a = (ax2 - a[0]) * (ay2 - a[1])
    area_b = (bx2 - b[0]) * (by2 - b[1])
    return area_i / (area_a + area_b - area_i)


def _stable_order(values: np.ndarray, bound: int) -> np.ndarray:
    """Stable argsort of non-negative ints below ``bound``; radix sort where they fit 16 bits."""
    if bound <= 1 << 16:
        values = values.astype(np.uint16)
    return np.argsort(values, kind="stable")


def _rank_within_groups(image: np.ndarray, labels: np.ndarray, scores: np.ndarray, n_images: int):
    """Detections ordered by class, then image, then as GluonCV's ``argsort()[::-1]`` ranks them.

    A group (one class in one image) keeps file order before its rank is taken, and groups are
    stacked by length, so each ``argsort`` row sees exactly the array GluonCV sorts: ties resolve
    as in GluonCV. The loop runs over distinct group lengths, not over images.
    """
    by_key = np.arange(len(image))
    if np.any(image[1:] < image[:-1]):
        by_key = _stable_order(image, n_images)
    by_key = by_key[_stable_order(labels[by_key], _NUM_CLASSES)]
    key = labels[by_key] * n_images + image[by_key]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lengths = np.diff(np.r_[starts, len(key)])
    order = by_key.copy()
    sorted_scores = scores[by_key]
    multi = np.flatnonzero(lengths > 1)
    multi = multi[np.argsort(lengths[multi], kind="stable")]
    edges = np.flatnonzero(np.diff(lengths[multi], prepend=-1, append=-1))
    for first, end in zip(edges[:-1], edges[1:], strict=True):
        length = lengths[multi[first]]
        pos = starts[multi[first:end]][:, None] + np.arange(length)
        perm = np.argsort(sorted_scores[pos], axis=1)[:, ::-1]
        order[pos] = by_key[np.take_along_axis(pos, perm, axis=1)]
    return order, key


def _match(order, d_key, d_boxes, g_key, g_boxes, g_difficult, n_keys, iou_threshold):
    """Per detection of ``order``: 1 true positive, 0 false positive, -1 ignored (difficult).

    ``d_key`` (aligned with ``order``) and ``g_key`` are ``label * n_images + image``.
    """
    n = len(order)
    match = np.zeros(n, np.int8)
    g_order = np.argsort(g_key, kind="stable")
    g_count = np.bincount(g_key, minlength=n_keys)
    count = g_count[d_key]
    lo = (np.cumsum(g_count) - g_count)[d_key]
    has_gt = count > 0
    if not has_gt.any():
        return match
    total = int(count.sum())
    first_pair = np.cumsum(count) - count
    pair_det = np.repeat(np.arange(n), count)
    pair_gt = g_order[np.repeat(lo - first_pair, count) + np.arange(total)]
    d_cols, g_cols = np.ascontiguousarray(d_boxes.T), np.ascontiguousarray(g_boxes.T)
    iou = _iou_plus_one(d_cols[:, order[pair_det]], g_cols[:, pair_gt])
    # max IoU per detection and its first argmax, NaN winning as in numpy's max/argmax
    best = np.maximum.reduceat(iou, first_pair[has_gt])
    best_each = np.repeat(best, count[has_gt])
    is_best = iou == best_each
    nan_best = np.isnan(best_each)
    if nan_best.any():
        is_best = np.where(nan_best, np.isnan(iou), is_best)
    hits = np.flatnonzero(is_best)
    hits = hits[np.r_[True, pair_det[hits[1:]] != pair_det[hits[:-1]]]]
    matched = ~(best < iou_threshold)
    det = np.flatnonzero(has_gt)[matched]
    gt = pair_gt[hits][matched]
    difficult = g_difficult[gt]
    match[det[difficult]] = -1
    det, gt = det[~difficult], gt[~difficult]
    _, first_claim = np.unique(gt, return_index=True)
    match[det[first_claim]] = 1
    return match


def _average_precision(match: np.ndarray, n_pos: int, metric: str) -> float:
    tp = np.cumsum(match == 1)
    fp = np.cumsum(match == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / (fp + tp))
    recall = tp / n_pos
    if metric == "area":
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.concatenate(([0.0], precision, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        return min(float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])), 1.0)
    if len(recall) == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    first = np.searchsorted(recall, _VOC07_RECALLS, "left")
    ap = 0.0
    for i in first.tolist():
        ap += (float(envelope[i]) if i < len(recall) else 0.0) / 11.0
    return min(ap, 1.0)  # eleven sums of 1/11 overshoot 1 by an ulp, as in GluonCV


def average_precisions(
    images: Sequence[VOCImage],
    detections: Detections,
    metric: str = "voc07",
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """AP of each of the 20 classes (NaN where a class has no non-difficult GT), as float64.

    ``detections`` must only name images of ``images``; an image without detections counts its
    GT as misses. See the module docstring for the exact semantics.
    """
    return _average_precisions(images, detections, metric, iou_threshold)[0]


def _average_precisions(images, detections, metric, iou_threshold):
    """AP per class and the largest class index seen (GluonCV averages classes 0..that)."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold: expected a value in (0, 1], got {iou_threshold}")
    ids = [image.image_id for image in images]
    position = {image_id: i for i, image_id in enumerate(ids)}
    if len(position) != len(ids):
        raise ValueError("images: expected each image id once, got repeated ids")
    dets = check_detections(
        detections.arrays(), "detections", known_ids=position, known_as="evaluated images"
    )
    row_position = np.array([position[i] for i in dets.image_ids.tolist()], dtype=np.int64)
    n_images = max(len(images), 1)
    g_image, g_labels, g_boxes, g_difficult = _ground_truth(images)
    n_pos = np.bincount(g_labels[~g_difficult], minlength=_NUM_CLASSES)
    d_image = row_position[dets.image_index]
    order, d_key = _rank_within_groups(d_image, dets.labels, dets.scores, n_images)
    g_key = g_labels * n_images + g_image
    match = _match(
        order, d_key, dets.boxes, g_key, g_boxes, g_difficult, _NUM_CLASSES * n_images,
        iou_threshold,
    )  # fmt: skip
    scores = dets.scores[order]
    bounds = np.searchsorted(d_key, np.arange(_NUM_CLASSES + 1) * n_images)
    aps = np.full(_NUM_CLASSES, np.nan)
    for c in np.flatnonzero(n_pos):
        block = slice(bounds[c], bounds[c + 1])
        ranked = match[block][np.argsort(scores[block])[::-1]]
        aps[c] = _average_precision(ranked, int(n_pos[c]), metric)
    seen = max(int(g_labels.max(initial=-1)), int(dets.labels.max(initial=-1)))
    return aps, seen


def published_reference(
    model_info: dict, metric: str, images: int, untrained: bool = False
) -> tuple[float | None, str]:
    """(published mAP to check against, or ``None``; why) for a run of ``images`` images scored
    with ``metric``. A published figure is compared only with a measurement made the same way:
    the same AP definition, on as many images as it was published for (the whole VOC2007 test
    set); a 20-photo demo set differs from it by chance, not by a bug."""
    published = model_info["published_map"]
    if untrained:
        return None, "not compared: untrained weights (their mAP means nothing)"
    if published is None:
        return None, "not compared: no published mAP for this model"
    if metric != model_info["published_metric"]:
        return None, (
            f"not compared: the published {published:.4f} is {model_info['published_metric']} "
            f"mAP, this run is scored with {metric}"
        )
    if images != model_info["published_images"]:
        return None, (
            f"not compared: the published {published:.4f} is on "
            f"{model_info['published_images']} VOC2007 test images, this run on {images}"
        )
    return published, f"compared with the published {published:.4f} (tolerance 1 point)"


def accuracy_flag(
    measured: float | None, published: float | None, untrained: bool = False,
    tolerance: float = ACCURACY_TOLERANCE,
) -> str | None:  # fmt: skip
    """A warning when ``measured`` mAP is more than ``tolerance`` (one point) off ``published``.

    ``None`` when there is nothing to compare: untrained weights (their mAP means nothing) or no
    published figure. A gap points at a wrong transform, wrong weights or a broken dataset.
    """
    if untrained or published is None:
        return None
    if measured is None or not math.isfinite(measured):
        return (
            f"measured mAP is undefined (no class has non-difficult ground truth); "
            f"published mAP is {published:.4f}"
        )
    gap = measured - published
    if abs(gap) <= tolerance:
        return None
    return (
        f"measured mAP {measured:.4f} differs from published {published:.4f} by "
        f"{gap * 100:+.2f} points (more than {tolerance * 100:g}): suspect a wrong transform, "
        "wrong weights or a broken dataset"
    )


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def evaluate(
    images: Sequence[VOCImage],
    detections: Detections,
    metric: str = "voc07",
    iou_threshold: float = 0.5,
    *,
    published_map: float | None = None,
    untrained: bool = False,
) -> dict:
    """Score ``detections`` against the GT of ``images``; return the ``map.json`` body.

    Keys (docs/contracts.md): ``metric``, ``iou_threshold``, ``mAP`` (mean over classes with
    non-difficult GT, GluonCV's figure; ``None`` if there are none), ``mAP_all_classes`` (mean over
    all 20 with such classes as 0, the devkit's convention), ``map_averages``, ``ap_per_class``
    (``None`` for a class without non-difficult GT), ``images``, ``objects`` (all GT objects,
    difficult included), ``difficult``, ``detections``, ``weights_untrained``, ``published_mAP`` and
    ``accuracy_flag`` (see :func:`accuracy_flag`).
    """
    if published_map is not None and not 0.0 <= published_map <= 1.0:
        raise ValueError(f"published_map: expected a fraction in [0, 1], got {published_map}")
    aps, seen = _average_precisions(images, detections, metric, iou_threshold)
    # GluonCV's nanmean runs over classes 0..(largest label seen): same sum, to the bit
    mean = float(np.nanmean(aps[: seen + 1])) if not np.isnan(aps).all() else math.nan
    difficult = sum(obj.difficult for image in images for obj in image.objects)
    return {
        "metric": metric,
        "iou_threshold": float(iou_threshold),
        "mAP": _finite_or_none(mean),
        "mAP_all_classes": float(np.mean(np.nan_to_num(aps))),
        "map_averages": MAP_AVERAGES,
        "ap_per_class": dict(zip(VOC_CLASSES, map(_finite_or_none, aps), strict=True)),
        "images": len(images),
        "objects": sum(len(image.objects) for image in images),
        "difficult": difficult,
        "detections": len(np.asarray(detections.scores)),
        "weights_untrained": bool(untrained),
        "published_mAP": published_map,
        "accuracy_flag": accuracy_flag(_finite_or_none(mean), published_map, untrained),
    }


def evaluate_files(
    devkit: Path | str,
    detections_path: Path | str,
    split: str = "test",
    metric: str = "voc07",
    iou_threshold: float = 0.5,
    published_map: float | None = None,
    untrained: bool = False,
) -> dict:
    """Evaluate a ``detections.npz`` against ``<devkit>/VOC2007`` and return the map.json body.

    The images scored are those listed in the file's ``image_ids``, in that order (the order they
    were run); each must belong to ``split``, so a run over part of the split scores that part and
    ``images`` in the result says how many. Images listed without detections count as misses.
    """
    split_images = load_split(devkit, split)
    by_id = {image.image_id: image for image in split_images}
    detections = load_detections(
        detections_path, known_ids=by_id, known_as=f"image ids of split {split!r} in {devkit}"
    )
    images = [by_id[image_id] for image_id in detections.image_ids.tolist()]
    return evaluate(
        images, detections, metric, iou_threshold, published_map=published_map,
        untrained=untrained,
    )  # fmt: skip


def write_map_json(result: dict, out: Path | str) -> Path:
    """Write ``result`` as JSON to ``out`` atomically (temporary file, then ``os.replace``)."""
    return write_json_atomic(out, result, sort_keys=False)  # keys in the map.json order
