"""Change one model's setting: exactly that model's jobs and the report rerun (issue 9).

A two-model workflow (cpu + gpu0, imperative + hybrid, synthetic data, untrained weights) runs to
completion in a temporary copy. Then one model gets ``overrides: {model: {voc_run: {batch: N}}}``
in a new config file, and two lists are compared with the expected ones, exactly:

- the outputs ``snakemake --summary`` marks "update pending": that model's voc run files,
  ``map.json`` and ``mlflow.json`` on every device, plus every output under ``reports/<name>/``
  (the summary and its figures);
- the jobs the rerun then executes, by rule and count (its "Finished jobid ... (Rule: X)" lines).

Side by side: the time of the full run and of the scoped rerun. The JSON last line is for
``run_all.py``; exits 1 when either list differs.

    python benchmarks/rerun_scope.py
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
from pathlib import Path

import yaml
from run_all import emit, machine, must, snakemake

from detbench.workspace import copy_workflow, summary_rows

MODELS = ["ssd_512_mobilenet1.0_voc", "yolo3_mobilenet1.0_voc"]
DEVICES = ["cpu", "gpu0"]
CONFIG = {
    "name": "scope",
    "voc": {"synthetic": {"images": 6, "seed": 3}},
    "models": MODELS,
    "weights": {"source": "untrained", "seed": 0},
    "devices": DEVICES,
    "speed": {"images": 2, "size": 320, "modes": ["imperative", "hybrid"], "warmup": 1},
    "voc_run": {"batch": 4, "warmup": 1},
    "telemetry": {"interval_s": 0.1},
}


def expected_outputs(rows: list[tuple[str, str, str]], model: str) -> set[tuple[str, str]]:
    reports = {
        (rule, path) for rule, path, _ in rows
        if path.startswith("reports/scope/")
        and (not path.startswith("reports/scope/detections/") or path.endswith(f"/{model}.png"))
    }  # fmt: skip
    runs = set()
    for device in DEVICES:
        run = f"results/scope/voc/{model}/mxnet/{device}"
        runs.add(("voc_spec", f"{run}/spec.json"))
        runs |= {("voc", f"{run}/{name}")
                 for name in ("result.json", "telemetry.csv", "detections.npz")}  # fmt: skip
        runs |= {("evaluate", f"{run}/map.json"), ("track_voc", f"{run}/mlflow.json")}
    return runs | reports


def executed_rules(output: str) -> collections.Counter:
    return collections.Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", output))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=MODELS[1], choices=MODELS)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args(argv)
    where = machine()
    with tempfile.TemporaryDirectory(prefix="detbench-scope-") as tmp:
        workdir = copy_workflow(Path(tmp) / "wf")
        (workdir / "base.yaml").write_text(yaml.safe_dump(CONFIG))
        changed = {**CONFIG, "overrides": {args.model: {"voc_run": {"batch": args.batch}}}}
        (workdir / "changed.yaml").write_text(yaml.safe_dump(changed))
        full, full_s = snakemake(workdir, "all", "--configfile", "base.yaml")
        must(full, "the full run")
        print(f"full run: {full_s:.0f} s, {sum(executed_rules(full.stderr).values())} jobs")

        rows = summary_rows(workdir, "changed.yaml")
        pending = {(rule, path) for rule, path, status in rows if status == "update pending"}
        expected = expected_outputs(rows, args.model)
        rerun, rerun_s = snakemake(workdir, "all", "--configfile", "changed.yaml")
        must(rerun, "the rerun")
        ran = executed_rules(rerun.stderr)
        del ran["all"]  # the target rule, not a job that computes anything
        want = collections.Counter(rule for rule, _ in expected)  # one output per job,
        want["voc"] = len(DEVICES)  # but a voc job writes three
        after = [r for r in summary_rows(workdir, "changed.yaml") if r[2] != "no update"]
    print(f"pending outputs: {len(pending)} (expected {len(expected)}), of {len(rows)}")
    for rule, path in sorted(pending ^ expected):
        print(f"  {'unexpected' if (rule, path) in pending else 'missing'}: {rule} {path}")
    print(f"rerun: {rerun_s:.0f} s, jobs {dict(sorted(ran.items()))} (expected {dict(want)})")
    ok = pending == expected and ran == want and not after
    return emit({
        "measure": f"outputs and jobs rerun after one model's voc_run.batch changes "
        f"(2 models x {'/'.join(DEVICES)}), compared as lists",
        "target": "exactly that model's voc_spec/voc/evaluate/track_voc/detection_pictures + "
        "aggregate + plots",
        "measured": f"{len(pending)} pending outputs of {len(rows)}, "
        f"{'identical to' if pending == expected else 'DIFFERENT from'} the expected list; "
        f"{sum(ran.values())} jobs ran ({'as expected' if ran == want else 'NOT as expected'}); "
        f"rerun {rerun_s:.0f} s vs full run {full_s:.0f} s",
        "pass": ok,
        "machine": where,
        "pending": sorted(f"{rule}: {path}" for rule, path in pending),
        "unexpected": sorted(f"{r}: {p}" for r, p in pending - expected),
        "missing": sorted(f"{r}: {p}" for r, p in expected - pending),
        "jobs_ran": dict(sorted(ran.items())), "jobs_expected": dict(sorted(want.items())),
        "pending_after_rerun": [f"{r}: {p} ({s})" for r, p, s in after],
        "full_run_s": round(full_s, 1), "rerun_s": round(rerun_s, 1),
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
