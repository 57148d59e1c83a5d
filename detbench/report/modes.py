"""Imperative vs hybrid, read against the noise (``reports/<name>/modes.csv``).

One row per MXNet model, device and host whose speed runs cover both Gluon modes: each mode's
median, fastest and slowest pass (``total_wall_s``: one pass over the speed sample), the speed-up
of hybridizing (imperative median / hybrid median), its range over the passes (imperative fastest
/ hybrid slowest to imperative slowest / hybrid fastest) and a verdict:

- ``hybrid_faster`` or ``imperative_faster``: every pass of one mode beat every pass of the other
  (the min-max ranges do not overlap), so the difference is outside the pass-to-pass noise;
- ``within_noise``: the ranges overlap, so the run cannot tell the modes apart;
- ``one_pass``: a mode ran one pass (``speed.repeats: 1``), so there is no spread to read;
- ``failed``: a mode's run failed (``error`` says which and why).

The speed figures print the same verdict under each model (:func:`verdict_note`).
"""

from __future__ import annotations

import pandas as pd

from detbench.contract import MXNET
from detbench.files import write_text_atomic
from detbench.report.aggregate import number as _number
from detbench.report.aggregate import read_summary

MODES = ("imperative", "hybrid")
COLUMNS = [
    "model", "device", "host", "repeats",
    "imperative_s", "imperative_min_s", "imperative_max_s",
    "hybrid_s", "hybrid_min_s", "hybrid_max_s",
    "speedup", "speedup_low", "speedup_high", "verdict", "error",
]  # fmt: skip


def _spread(run: dict) -> tuple[float, float, float, int]:
    """(median, min, max, repeats) of a speed run's pass wall times; one pass: all equal."""
    median = _number(run.get("total_wall_s_median")) or _number(run["total_wall_s"])
    repeats = int(_number(run.get("repeats")) or 1)
    if repeats < 2:
        return median, median, median, 1
    return median, _number(run["total_wall_s_min"]), _number(run["total_wall_s_max"]), repeats


def compare(imperative: dict, hybrid: dict) -> dict:
    """The row's figures and verdict from the imperative and hybrid speed runs (summary rows)."""
    row = dict.fromkeys(COLUMNS[3:])
    failed = [r for r in (imperative, hybrid) if r["status"] != "ok"]
    if failed:
        row.update(verdict="failed", error="; ".join(f"{r['mode']}: {r['error']}" for r in failed))
        return row
    (imp, imp_lo, imp_hi, imp_n), (hyb, hyb_lo, hyb_hi, hyb_n) = map(_spread, (imperative, hybrid))
    row.update(
        repeats=min(imp_n, hyb_n),
        imperative_s=imp, imperative_min_s=imp_lo, imperative_max_s=imp_hi,
        hybrid_s=hyb, hybrid_min_s=hyb_lo, hybrid_max_s=hyb_hi,
        speedup=imp / hyb, speedup_low=imp_lo / hyb_hi, speedup_high=imp_hi / hyb_lo,
    )  # fmt: skip
    if min(imp_n, hyb_n) < 2:
        row["verdict"] = "one_pass"
    elif hyb_hi < imp_lo:
        row["verdict"] = "hybrid_faster"
    elif imp_hi < hyb_lo:
        row["verdict"] = "imperative_faster"
    else:
        row["verdict"] = "within_noise"
    return row


def mode_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The modes table from the run summary (rows of ``kind`` speed, MXNet backend)."""
    speed = summary[summary["kind"] == "speed"].copy()
    if "backend" in speed.columns:
        speed = speed[speed["backend"].fillna(MXNET) == MXNET]
    if "host" not in speed.columns:
        speed["host"] = None
    rows = []
    for (model, device, host), runs in speed.groupby(
        ["model", "device", "host"], sort=True, dropna=False
    ):
        by_mode = {rec["mode"]: rec for rec in runs.to_dict("records")}
        if not set(MODES) <= set(by_mode):
            continue
        row = compare(by_mode["imperative"], by_mode["hybrid"])
        row.update(model=model, device=device, host=None if pd.isna(host) else host)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def verdict_note(row: dict) -> str:
    """One line for a figure: the speed-up of hybridizing and whether it is outside the noise."""
    verdict, speedup = row["verdict"], _number(row["speedup"])
    if verdict == "failed" or speedup is None:
        return "modes: a run failed"
    if verdict == "hybrid_faster":
        return f"hybrid {speedup:.2f}x faster, every pass"
    if verdict == "imperative_faster":
        return f"imperative {1 / speedup:.2f}x faster, every pass"
    if verdict == "one_pass":
        return f"hybrid {speedup:.2f}x (one pass: no spread)"
    return f"hybrid {speedup:.2f}x: within noise"


def write_modes(summary_csv, out_csv) -> pd.DataFrame:
    """Write ``modes.csv`` (see :func:`mode_rows`) atomically; returns the table."""
    table = mode_rows(read_summary(summary_csv))
    write_text_atomic(out_csv, table.to_csv(index=False))
    return table
