"""sample_speed_images: seeded, machine-independent choice of speed-test images."""

from __future__ import annotations

import pytest

from detbench.data.sample import sample_speed_images

IDS = [f"{i:06d}" for i in range(1, 4953)]


def test_same_seed_gives_same_sample():
    assert sample_speed_images(IDS, 100, seed=0) == sample_speed_images(IDS, 100, seed=0)


def test_other_seed_gives_other_sample():
    assert sample_speed_images(IDS, 100, seed=0) != sample_speed_images(IDS, 100, seed=1)


def test_sample_is_pinned_across_machines_and_numpy_versions():
    assert sample_speed_images(IDS, 5, seed=0) == PINNED


def test_sample_has_n_distinct_ids_from_the_input():
    sample = sample_speed_images(IDS, 100, seed=3)
    assert len(sample) == len(set(sample)) == 100 and set(sample) <= set(IDS)


def test_input_order_does_not_change_the_sample():
    assert sample_speed_images(IDS[::-1], 50, seed=2) == sample_speed_images(IDS, 50, seed=2)


def test_smaller_sample_is_a_prefix_of_a_larger_one():
    assert sample_speed_images(IDS, 100, seed=5)[:30] == sample_speed_images(IDS, 30, seed=5)


def test_more_than_available_gives_all_ids_with_a_warning():
    with pytest.warns(UserWarning, match="only 3"):
        sample = sample_speed_images(["b", "c", "a"], 10, seed=0)
    assert sorted(sample) == ["a", "b", "c"]


def test_zero_gives_empty_and_negative_or_duplicates_raise():
    assert sample_speed_images(IDS, 0, seed=0) == []
    with pytest.raises(ValueError, match=">= 0"):
        sample_speed_images(IDS, -1, seed=0)
    with pytest.raises(ValueError, match="duplicates"):
        sample_speed_images(["a", "a"], 1, seed=0)


PINNED = ["000856", "000922", "003698", "000270", "002694"]  # numpy default_rng(0), PCG64
