"""Time detbench's VOC evaluation against GluonCV's metric at VOC2007-test scale.

Builds a seeded synthetic set shaped like VOC2007 test (4952 images, about 12 000 objects, some
difficult, 100 detections per image), scores it with GluonCV's ``VOC07MApMetric`` (or
``VOCMApMetric`` for ``--metric area``), fed one image per ``update`` as its eval scripts feed
each image of a batch, then with :func:`detbench.evaluate.evaluate`. Each side is timed as the
best of ``--repeats`` runs; detbench's time includes turning the ``VOCImage`` objects into arrays.

Prints both times, the speed-up, the largest AP difference over the 20 classes and mAP, and a
last line of JSON for machines. Exits 1 when the speed-up is below ``--min-ratio`` (5) or the
difference above ``--max-diff`` (1e-6).

    python benchmarks/eval_speed.py [--metric voc07|area] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time

import numpy as np

from detbench.data.voc import VOC_CLASSES, VOCImage, VOCObject
from detbench.evaluate import Detections, evaluate

# rough VOC2007 test class frequencies (person dominates)
CLASS_WEIGHTS = np.array(
    [285, 337, 459, 263, 505, 213, 1201, 358, 756, 244,
     206, 489, 348, 325, 4528, 480, 242, 239, 282, 308], dtype=float,
)  # fmt: skip


def synthetic_set(rng, n_images=4952, objects_per_image=2.42, dets_per_image=100,
                  p_difficult=0.15):  # fmt: skip
    """Ground truth as ``VOCImage`` objects and detections as :class:`Detections`.

    About 30 % of the detections are jittered copies of an object of their image (mostly the
    right class), the rest random boxes; scores are float32, higher near objects.
    """
    widths = rng.integers(300, 501, n_images)
    heights = rng.integers(300, 501, n_images)
    n_obj = rng.poisson(objects_per_image, n_images)
    g_img = np.repeat(np.arange(n_images), n_obj)
    n = len(g_img)
    g_lab = rng.choice(20, n, p=CLASS_WEIGHTS / CLASS_WEIGHTS.sum())
    w, h = widths[g_img], heights[g_img]
    bw = np.maximum(rng.random(n) * 0.6 * w, 8).astype(int)
    bh = np.maximum(rng.random(n) * 0.6 * h, 8).astype(int)
    x1 = (rng.random(n) * (w - bw - 1)).astype(int)
    y1 = (rng.random(n) * (h - bh - 1)).astype(int)
    g_box = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1).astype(float)
    g_diff = rng.random(n) < p_difficult
    starts = np.r_[0, np.cumsum(n_obj)]
    images = [
        VOCImage(
            f"{i:06d}", int(widths[i]), int(heights[i]),
            tuple(VOCObject(int(g_lab[j]), tuple(g_box[j].tolist()), bool(g_diff[j]))
                  for j in range(starts[i], starts[i + 1])),
        )
        for i in range(n_images)
    ]  # fmt: skip

    m = n_images * dets_per_image
    d_img = np.repeat(np.arange(n_images), dets_per_image)
    near = (rng.random(m) < 0.3) & (n_obj[d_img] > 0)
    obj = starts[d_img] + (rng.random(m) * np.maximum(n_obj[d_img], 1)).astype(int)
    obj = np.minimum(obj, n - 1)
    w, h = widths[d_img], heights[d_img]
    rw, rh = rng.random(m) * 0.5 * w + 4, rng.random(m) * 0.5 * h + 4
    rx, ry = rng.random(m) * (w - rw), rng.random(m) * (h - rh)
    boxes = np.stack([rx, ry, rx + rw, ry + rh], axis=1)
    jitter = g_box[obj] + rng.normal(0, 0.08, (m, 4)) * np.repeat(
        (g_box[obj, 2:] - g_box[obj, :2]), 2, axis=1
    )
    boxes[near] = jitter[near]
    boxes = np.clip(boxes, 0, np.stack([w - 1, h - 1, w - 1, h - 1], axis=1))
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    labels = rng.choice(20, m, p=CLASS_WEIGHTS / CLASS_WEIGHTS.sum())
    keep_label = near & (rng.random(m) < 0.9)
    labels[keep_label] = g_lab[obj[keep_label]]
    scores = np.where(near, 0.4 + 0.6 * rng.random(m), 0.7 * rng.random(m))
    dets = Detections(
        image_ids=np.array([im.image_id for im in images]),
        image_index=d_img.astype(np.int64),
        labels=labels.astype(np.int64),
        scores=scores.astype(np.float32),
        boxes=boxes.astype(np.float32),
    )
    return images, dets


def gluoncv_inputs(images, dets):
    """Per-image (1, n, ...) arrays in update() order, as GluonCV's eval scripts pass them."""
    bounds = np.searchsorted(dets.image_index, np.arange(len(images) + 1))
    batches = []
    for i, im in enumerate(images):
        sel = slice(bounds[i], bounds[i + 1])
        objs = im.objects
        batches.append((
            dets.boxes[sel][None], dets.labels[sel][None], dets.scores[sel][None],
            np.array([o.box for o in objs], np.float32).reshape(1, -1, 4),
            np.array([[o.label for o in objs]], np.float32).reshape(1, -1),
            np.array([[o.difficult for o in objs]], np.float32).reshape(1, -1),
        ))  # fmt: skip
    return batches


def time_gluoncv(batches, metric):
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric, VOCMApMetric

    cls = VOC07MApMetric if metric == "voc07" else VOCMApMetric
    start = time.perf_counter()
    ref = cls(iou_thresh=0.5, class_names=list(VOC_CLASSES))
    for batch in batches:
        ref.update(*batch)
    _, values = ref.get()
    return time.perf_counter() - start, np.array(values, dtype=float)


def time_detbench(images, dets, metric):
    start = time.perf_counter()
    result = evaluate(images, dets, metric)
    elapsed = time.perf_counter() - start
    aps = [math.nan if v is None else v for v in result["ap_per_class"].values()]
    return elapsed, np.array([*aps, math.nan if result["mAP"] is None else result["mAP"]])


def max_difference(a, b):
    """Largest |a - b|; infinite when one side has an AP the other lacks (NaN)."""
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return math.inf
    both = ~np.isnan(a)
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metric", choices=["voc07", "area"], default="voc07")
    parser.add_argument("--images", type=int, default=4952)
    parser.add_argument("--dets-per-image", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-ratio", type=float, default=5.0)
    parser.add_argument("--max-diff", type=float, default=1e-6)
    args = parser.parse_args(argv)

    images, dets = synthetic_set(
        np.random.default_rng(args.seed), args.images, dets_per_image=args.dets_per_image
    )
    objects = sum(len(im.objects) for im in images)
    difficult = sum(o.difficult for im in images for o in im.objects)
    print(f"synthetic set: {len(images)} images, {objects} objects ({difficult} difficult), "
          f"{len(dets)} detections, metric {args.metric}")  # fmt: skip
    batches = gluoncv_inputs(images, dets)
    ours = [time_detbench(images, dets, args.metric) for _ in range(args.repeats)]
    theirs = [time_gluoncv(batches, args.metric) for _ in range(args.repeats)]
    t_ours, t_theirs = min(t for t, _ in ours), min(t for t, _ in theirs)
    diff = max_difference(ours[0][1], theirs[0][1])
    ratio = t_theirs / t_ours
    ok = ratio >= args.min_ratio and diff <= args.max_diff
    print(f"gluoncv  {t_theirs:8.3f} s   (best of {args.repeats})")
    print(f"detbench {t_ours:8.3f} s   (best of {args.repeats})")
    print(f"speed-up {ratio:8.1f} x   (target >= {args.min_ratio:g})")
    print(f"max AP difference {diff:.3g}   (target <= {args.max_diff:g}); mAP {ours[0][1][-1]:.6f}")
    print(json.dumps({
        "benchmark": "eval_speed", "metric": args.metric, "images": len(images),
        "objects": objects, "difficult": difficult, "detections": len(dets),
        "gluoncv_s": round(t_theirs, 4), "detbench_s": round(t_ours, 4), "ratio": round(ratio, 2),
        "max_ap_diff": diff, "mAP": ours[0][1][-1], "ok": ok, "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
    }))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
