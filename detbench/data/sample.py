"""The seeded choice of images for the speed benchmark."""

from __future__ import annotations

import warnings

import numpy as np


def sample_speed_images(ids: list[str], n: int, seed: int) -> list[str]:
    """``n`` distinct ids drawn from ``ids`` with a seeded RNG, in the order they were drawn.

    The result depends only on the set of ``ids``, ``n`` and ``seed``, not on the machine, the
    order of ``ids`` or the numpy version: ids are sorted first, each gets one key from
    ``numpy.random.default_rng(seed).random()`` (PCG64 and its float conversion are fixed by
    numpy's stream-compatibility policy), and the ``n`` ids with the smallest keys are returned,
    smallest key first. So a sample is a prefix of any larger sample with the same seed: raising
    ``speed.images`` keeps the images already chosen.

    If ``n`` exceeds the number of ids, all ids are returned (in drawn order) with a
    ``UserWarning``: a small dataset still yields a speed run, and the run records its image
    count. ``n == 0`` gives ``[]``; negative ``n`` or duplicate ids raise ``ValueError``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pool = sorted(ids)
    if len(set(pool)) != len(pool):
        raise ValueError("ids contain duplicates")
    if n > len(pool):
        warnings.warn(
            f"asked for {n} speed images but the split has only {len(pool)}; using all of them",
            stacklevel=2,
        )
    keys = np.random.default_rng(seed).random(len(pool))
    order = np.argsort(keys, kind="stable")[:n]
    return [pool[i] for i in order]
