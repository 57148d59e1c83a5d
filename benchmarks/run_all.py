"""``make bench``: run every measured claim in benchmarks/ and write benchmarks/RESULTS.md.

Each ``benchmarks/*.py`` except this file and the GPU-only probes (``*_probe.py``) is run as a
subprocess from the repository root. Its last JSON line on stdout is its record: ``measure``,
``target``, ``measured``, ``pass`` and ``machine`` (older benchmarks are mapped in ``LEGACY``); a
benchmark that prints no JSON is judged by its exit code. A benchmark passes when its record
says so and it exits 0. RESULTS.md gets one table row per benchmark and each full record below
it; this script exits 1 when any benchmark failed.

    python benchmarks/run_all.py                  # all of them, writes benchmarks/RESULTS.md
    python benchmarks/run_all.py mlflow_logging   # just these; prints the table, writes nothing
    python benchmarks/run_all.py --update NAME..  # just these, replacing their rows in RESULTS.md

Also the helpers the workflow benchmarks share (a temporary copy of the workflow, timed
``snakemake`` runs, a one-line description of the machine); they import it as ``run_all``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from detbench import workspace

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
NOT_CLAIMS = {"run_all.py", "nvml_probe.py", "ort_gpu_probe.py"}  # probes need an NVIDIA GPU
TIMEOUT_S = 1800


# --- helpers for the benchmarks -----------------------------------------------------------------


def machine() -> str:
    """CPU model, CPU count, load average and Python: what a timing here depends on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = " ".join(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} cpus, load {load:.1f} at start, "
            f"Python {platform.python_version()}")  # fmt: skip


def snakemake(workdir: Path, *args: str, cores: int = 2):
    """``detbench.workspace.snakemake``, timed: the finished process and its wall seconds."""
    start = time.perf_counter()
    done = workspace.snakemake(workdir, *args, cores=cores)
    return done, time.perf_counter() - start


def must(done: subprocess.CompletedProcess, what: str) -> None:
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
        raise SystemExit(f"{what} failed (exit {done.returncode})")


def emit(record: dict) -> int:
    """Print ``record`` as the benchmark's last line; the exit code its ``pass`` implies."""
    print(json.dumps(record, sort_keys=False), flush=True)
    return 0 if record["pass"] else 1


# --- the harness --------------------------------------------------------------------------------


def _eval_speed(record: dict, where: str) -> dict:
    return {
        "measure": "VOC07 mAP at VOC2007-test scale (4952 images, 100 detections each): "
        "detbench vs GluonCV's VOC07MApMetric",
        "target": "speed-up >= 5x, max AP difference <= 1e-06",
        "measured": f"{record['ratio']}x ({record['gluoncv_s']} s vs {record['detbench_s']} s), "
        f"max AP difference {record['max_ap_diff']:.1e}",
        "pass": bool(record["ok"]),
        "machine": f"{where}, numpy {record.get('numpy')}",
    }


# Benchmarks whose JSON predates the measure/target/measured/pass record (pass: exit code 0).
LEGACY = {"eval_speed.py": _eval_speed}


def discover() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in NOT_CLAIMS and p.name[0] != "_")


def last_json(lines: list[str]) -> dict | None:
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            return record if isinstance(record, dict) else None
    return None


def run_one(path: Path) -> dict:
    """Run one benchmark, echoing its output; its normalised row."""
    print(f"=== {path.name}", flush=True)
    started = datetime.datetime.now(datetime.UTC)
    where = machine()
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(path)], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1,
    )  # fmt: skip
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            sys.stdout.write(f"  {line}")
        code = process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    seconds = time.perf_counter() - start
    record = last_json(lines)
    row = {"benchmark": path.name, "exit_code": code, "seconds": round(seconds, 1),
           "date": started.strftime("%Y-%m-%d %H:%M UTC"), "record": record}  # fmt: skip
    if record is None:
        row.update(measure=f"{path.name} (printed no JSON record)", target="exit code 0",
                   measured=f"exit code {code}", passed=code == 0, machine=where)  # fmt: skip
        return row
    if path.name in LEGACY and "measure" not in record:
        try:
            record = {**record, **LEGACY[path.name](record, where)}
        except (KeyError, TypeError, IndexError) as exc:
            print(f"  (cannot read its record: {exc!r})")
    claimed = record.get("pass", record.get("ok", code == 0))
    row.update(
        measure=str(record.get("measure") or record.get("benchmark") or path.name),
        target=str(record.get("target", "(none stated)")),
        measured=str(record.get("measured", record.get("ratio", "(not reported)"))),
        passed=bool(claimed) and code == 0,
        machine=str(record.get("machine") or where),
    )
    if claimed and code != 0:
        row["measured"] += f" (but exit code {code})"
    return row


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_results(rows: list[dict], path: Path) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`benchmarks/run_all.py`); each benchmark measures side by side "
        "in one run and exits non-zero when it misses its target. Timings on a shared 2-core "
        "machine are noisy: the machine column gives the load average when each started.",
        "",
        "| measure | target | measured | pass/fail | date | machine |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        verdict = "pass" if row["passed"] else "**FAIL**"
        cells = [f"`{row['benchmark']}`: {row['measure']}", row["target"], row["measured"],
                 verdict, row["date"], row["machine"]]  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Records", ""]
    for row in rows:
        lines += [f"### {row['benchmark']} (exit code {row['exit_code']}, {row['seconds']} s)",
                  "", "```json", json.dumps(row["record"], indent=1), "```", ""]  # fmt: skip
    path.write_text("\n".join(lines))


def read_results(path: Path) -> list[dict]:
    """The rows of an existing RESULTS.md (its table and its records), for ``--update``."""
    text = path.read_text() if path.exists() else ""
    records = {}
    for block in text.split("\n### ")[1:]:
        name, code, seconds = re.match(r"(\S+) \(exit code (-?\d+), ([\d.]+) s\)", block).groups()
        body = block.split("```json\n", 1)[1].split("\n```", 1)[0]
        records[name] = {"exit_code": int(code), "seconds": float(seconds),
                         "record": json.loads(body)}  # fmt: skip
    rows = []
    for line in text.splitlines():
        found = re.match(r"\| `([^`]+)`: (.*) \|$", line)
        if not found:
            continue
        name, rest = found.groups()
        measure, target, measured, verdict, date, where = re.split(r"(?<!\\)\| ", rest + " ")[:6]
        rows.append({
            "benchmark": name, "measure": measure.strip(), "target": target.strip(),
            "measured": measured.strip(), "passed": verdict.strip() == "pass",
            "date": date.strip(), "machine": where.strip(), **records.get(name, {}),
        })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="benchmark names (default: all; then RESULTS.md)")
    parser.add_argument(
        "--update", action="store_true",
        help="write the named benchmarks' rows into RESULTS.md, keeping the others",
    )  # fmt: skip
    args = parser.parse_args(argv)
    paths = discover()
    if args.only:
        wanted = {name.removesuffix(".py") for name in args.only}
        paths = [p for p in paths if p.stem in wanted]
        if len(paths) != len(wanted):
            parser.error(f"unknown benchmark(s); have {', '.join(p.stem for p in discover())}")
    rows = [run_one(path) for path in paths]
    print("\n=== summary")
    for row in rows:
        verdict = "pass" if row["passed"] else "FAIL"
        print(f"{verdict:4}  {row['benchmark']:22} {row['measured']}  (target {row['target']})")
    if args.update:
        fresh = {row["benchmark"]: row for row in rows}
        kept = [row for row in read_results(RESULTS) if row["benchmark"] not in fresh]
        rows = sorted(kept + rows, key=lambda row: row["benchmark"])
    if not args.only or args.update:
        write_results(rows, RESULTS)
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
