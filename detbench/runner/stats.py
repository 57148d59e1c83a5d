"""Summaries of measured times (pure Python, no mxnet)."""

import math


def percentile(values, q):
    """Linear-interpolated percentile (numpy's default method) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    pos = (len(ordered) - 1) * q / 100.0
    low, high = int(math.floor(pos)), int(math.ceil(pos))
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_summary_ms(batch_seconds):
    """mean, p50, p90, p99 and max of per-batch latencies, in milliseconds."""
    ms = [s * 1000.0 for s in batch_seconds]
    return {
        "mean": sum(ms) / len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


def repeat_summary(values):
    """median, min, max and coefficient of variation (population std / mean) of repeats."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {
        "median": percentile(values, 50),
        "min": min(values),
        "max": max(values),
        "cv": std / mean if mean else None,
    }
