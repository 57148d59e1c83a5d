"""Detection pictures (the seed study's Figs 34-36): a model's detections drawn on fixed photos.

One PNG per model: the chosen photos side by side, each detection at or above ``min_score`` as a
box labelled with its class name and score, the ground truth as thin dashed white boxes. The
title names the model, the device of the run and its weights; untrained weights are flagged
(their boxes mean nothing), and a failed run is drawn as failed with its error.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from detbench.data.voc import VOC_CLASSES, image_path, load_split
from detbench.evaluate import load_detections
from detbench.report.aggregate import ReportError
from detbench.report.figures import save_png

PICTURES = 3
_PALETTE = [
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
    "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
    "#808000", "#ffd8b1", "#000075", "#808080",
]  # fmt: skip


def picture_ids(split_ids: list[str], chosen: list[str]) -> list[str]:
    """The photos to draw on: ``chosen`` (each must be in the split), else the first three ids of
    the split."""
    missing = [image_id for image_id in chosen if image_id not in split_ids]
    if missing:
        raise ReportError(
            f"detection_pictures.images: {', '.join(missing)} not in the split; "
            f"pick ids from it (first ones: {', '.join(split_ids[:5])})"
        )
    return list(chosen) or split_ids[:PICTURES]


def _weights_note(weights: dict) -> str:
    if weights.get("untrained"):
        return "UNTRAINED WEIGHTS: boxes meaningless"
    return f"trained weights ({weights.get('source')})"


def build_pictures(
    devkit: str | Path,
    split: str,
    result: dict,
    detections_npz: str | Path,
    ids: list[str],
    min_score: float,
) -> Figure:
    """The picture of run ``result`` (its ``result.json``) on the photos ``ids``."""
    images = {image.image_id: image for image in load_split(devkit, split)}
    ok = result["status"] == "ok"
    detections = load_detections(detections_npz, known_ids=images) if ok else None
    figure = Figure(figsize=(5.0 * len(ids), 4.8), dpi=110)
    title = f"{result['model']} on {result['device']}: detections with score >= {min_score:g}"
    figure.suptitle(f"{title}\n{_weights_note(result['weights'])}", fontsize=11)
    for column, image_id in enumerate(ids):
        ax = figure.add_subplot(1, len(ids), column + 1)
        ax.imshow(np.asarray(Image.open(image_path(devkit, image_id)).convert("RGB")))
        ax.set_axis_off()
        ax.set_title(image_id, fontsize=9)
        for obj in images[image_id].objects:
            _box(ax, obj.box, "white", linestyle="--", linewidth=0.8)
        if detections is None:
            error = textwrap.shorten(str(result.get("error")), 90)
            ax.text(0.5, 0.5, f"run failed:\n{error}", transform=ax.transAxes, ha="center",
                    va="center", fontsize=8, wrap=True, bbox={"facecolor": "white"})  # fmt: skip
        else:
            _draw_detections(ax, detections, image_id, min_score)
    figure.tight_layout()
    return figure


def draw_pictures(
    devkit: str | Path,
    split: str,
    result_json: str | Path,
    detections_npz: str | Path,
    chosen: list[str],
    min_score: float,
    out: str | Path,
) -> list[str]:
    """Draw the run's detections on the chosen photos (default: the split's first three) into
    ``out``, completely or not at all; returns the ids drawn."""
    from detbench.data.voc import read_split

    ids = picture_ids(read_split(devkit, split), chosen)
    result = json.loads(Path(result_json).read_text())
    save_png(build_pictures(devkit, split, result, detections_npz, ids, min_score), out, dpi=110)
    return ids


def _draw_detections(ax, detections, image_id: str, min_score: float) -> None:
    row = int(np.flatnonzero(detections.image_ids == image_id)[0])
    keep = (detections.image_index == row) & (detections.scores >= min_score)
    order = np.argsort(-detections.scores[keep])
    for label, score, box in zip(
        detections.labels[keep][order], detections.scores[keep][order],
        detections.boxes[keep][order], strict=True,
    ):  # fmt: skip
        colour = _PALETTE[int(label)]
        _box(ax, box, colour, linewidth=1.6)
        label_box = {"facecolor": colour, "pad": 1, "linewidth": 0}
        text = f"{VOC_CLASSES[int(label)]} {score:.2f}"
        ink = "black" if _luminance(colour) > 0.5 else "white"
        ax.text(box[0], box[1], text, fontsize=7, va="bottom", color=ink, bbox=label_box)


def _luminance(colour: str) -> float:
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.299 * red + 0.587 * green + 0.114 * blue


def _box(ax, box, colour: str, **style) -> None:
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    ax.plot([xmin, xmax, xmax, xmin, xmin], [ymin, ymin, ymax, ymax, ymin], color=colour, **style)
