"""The detection head of :class:`detbench.runner.darknet` in numpy, for backends that run a
darknet net's layers but not detbench's decoding (OpenCV's ``readNetFromDarknet``).

Input: the ``[yolo]`` layers' rows as OpenCV's darknet importer gives them, ``[cx, cy, w, h,
objectness, objectness * class probability ...]`` relative to the input, one row per
(row, col, anchor) of each layer's grid. Output: what ``DarknetNet`` returns, ``(ids, scores,
boxes)`` of shapes (B, K, 1), (B, K, 1), (B, K, 4), boxes as xmin, ymin, xmax, ymax in input
pixels, rows past the last detection -1, by the same steps: every (box, class) pair scoring
above ``thresh`` is a candidate (multi-label), candidates in ``DarknetNet``'s order (layer,
anchor, row, col; class-major) are sorted by score (stable), the best ``nms_topk`` go through
greedy per-class NMS (IoU > ``nms_thresh`` suppresses; IoU without darknet's +1, as MXNet's
``box_nms``), and the first ``post_nms`` survivors are returned.

numpy only: imports on the seed stack (Python 3.6).
"""

import numpy as np

from detbench.runner import darknet


class YoloDecoder(object):
    """Decode + NMS of one planned darknet cfg (:func:`darknet.plan_network`'s specs)."""

    def __init__(self, specs, thresh=darknet.THRESH):
        self.yolos = [s for s in specs if s["type"] == "yolo"]
        if not self.yolos:
            raise darknet.DarknetError("the cfg has no [yolo] layer: nothing to detect with")
        self.num_class = self.yolos[0]["classes"]
        self.net_h, self.net_w = self.yolos[0]["net_size"]
        self.thresh = float(thresh)
        boxes = sum(len(s["anchors"]) * s["grid"][0] * s["grid"][1] for s in self.yolos)
        self.candidates = self.num_class * boxes
        self.set_nms(darknet.NMS_THRESH, darknet.NMS_TOPK, darknet.POST_NMS)

    def set_nms(self, nms_thresh=0.45, nms_topk=400, post_nms=100):
        """As ``DarknetNet.set_nms`` (and GluonCV's): ``nms_thresh`` outside (0, 1) keeps every
        candidate, sorted by score."""
        self.nms_thresh, self.nms_topk, self.post_nms = nms_thresh, nms_topk, post_nms

    def rows(self, outputs, batch):
        """The yolo layers' outputs (in cfg order, each (B, rows * cols * anchors, 5 + C), or
        without the batch axis when B is 1) as (B, N, 5 + C) in ``DarknetNet``'s candidate
        order (anchor, row, col), boxes still relative [cx, cy, w, h]."""
        parts = []
        for spec, out in zip(self.yolos, outputs):
            rows, cols = spec["grid"]
            anchors, width = len(spec["anchors"]), 5 + self.num_class
            out = np.asarray(out, dtype=np.float32).reshape(batch, rows, cols, anchors, width)
            parts.append(out.transpose(0, 3, 1, 2, 4).reshape(batch, -1, width))
        return np.concatenate(parts, axis=1)

    def __call__(self, outputs, batch):
        rows = self.rows(outputs, batch)
        scale = np.array([self.net_w, self.net_h], dtype=np.float32)
        centre, size = rows[..., 0:2] * scale, rows[..., 2:4] * scale
        corners = np.concatenate([centre - size / 2, centre + size / 2], axis=-1)
        keep = min(self.post_nms, self.candidates) if self.post_nms > 0 else self.candidates
        result = np.full((batch, keep, 6), -1.0, dtype=np.float32)
        for index in range(batch):
            found = self.detect(corners[index], rows[index, :, 5:], keep)
            result[index, : len(found)] = found
        return result[..., 0:1], result[..., 1:2], result[..., 2:6]

    def detect(self, boxes, scores, keep):
        """One image: rows [id, score, xmin, ymin, xmax, ymax] of the NMS survivors, best
        first, at most ``keep``."""
        classes, anchors = np.nonzero(scores.T > self.thresh)  # class-major, as DarknetNet
        values = scores[anchors, classes]
        order = np.argsort(-values, kind="stable")
        if self.nms_topk > 0:
            order = order[: self.nms_topk]
        classes, anchors, values = classes[order], anchors[order], values[order]
        chosen = boxes[anchors]
        overlap = self.nms_thresh if 0 < self.nms_thresh < 1 else 1.0
        survivors = greedy_nms(chosen, classes, overlap, keep)
        found = np.empty((len(survivors), 6), dtype=np.float32)
        found[:, 0], found[:, 1] = classes[survivors], values[survivors]
        found[:, 2:] = chosen[survivors]
        return found


def iou_matrix(boxes):
    """Pairwise IoU of corner boxes (N, 4), areas and intersections without a +1."""
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    width = np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :])
    height = np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :])
    inter = np.maximum(width, 0) * np.maximum(height, 0)
    union = areas[:, None] + areas[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def greedy_nms(boxes, classes, overlap, keep):
    """Indices of the survivors of greedy NMS over ``boxes`` sorted best first: a box is
    suppressed by an earlier survivor of its class overlapping it by IoU > ``overlap``.
    Stops after ``keep`` survivors (later boxes cannot change earlier survivors)."""
    count = len(boxes)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    suppresses = (iou_matrix(boxes) > overlap) & (classes[:, None] == classes[None, :])
    suppressed = np.zeros(count, dtype=bool)
    survivors = []
    for index in range(count):
        if suppressed[index]:
            continue
        survivors.append(index)
        if len(survivors) == keep:
            break
        suppressed |= suppresses[index]
    return np.array(survivors, dtype=np.int64)
