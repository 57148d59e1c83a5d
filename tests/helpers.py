"""Shared helpers of the tests: the workflow in a scratch directory, and detections."""

from __future__ import annotations

import numpy as np

from detbench.evaluate import Detections
from detbench.runs import REPO_ROOT as REPO
from detbench.workspace import copy_workflow, snakemake, summary_rows

__all__ = ["REPO", "copy_workflow", "detections", "snakemake", "summary_rows"]


def detections(ids: list[str], rows: list[tuple]) -> Detections:
    """Detections from (image_row, label, score, (x1, y1, x2, y2)) tuples, in file order."""
    return Detections(
        image_ids=np.array(ids, dtype=str),
        image_index=np.array([r[0] for r in rows], dtype=np.int64),
        labels=np.array([r[1] for r in rows], dtype=np.int64),
        scores=np.array([r[2] for r in rows], dtype=np.float32),
        boxes=np.array([r[3] for r in rows], dtype=np.float32).reshape(-1, 4),
    )


def match(reference: np.ndarray, candidates: np.ndarray) -> tuple[float, float, int]:
    """For each reference row the closest candidate of its class: (max box-edge difference in
    pixels, max score difference, number of reference rows without a candidate of the class)."""
    edge = score = 0.0
    missing = 0
    for row in reference:
        same = candidates[candidates[:, 0] == row[0]]
        if not len(same):
            missing += 1
            continue
        edges = np.abs(same[:, 2:] - row[2:]).max(axis=1)
        best = np.argmin(edges + np.abs(same[:, 1] - row[1]))
        edge, score = max(edge, edges[best]), max(score, abs(same[best, 1] - row[1]))
    return edge, score, missing
