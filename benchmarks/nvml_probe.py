"""Prove the NVML telemetry path on a real NVIDIA GPU (issue 6, item 2).

Runs ``TelemetrySampler(backend="nvml")`` for 3 s at 0.5 s into ``$OUT/telemetry.csv`` (or
``argv[1]``), then prints one JSON document: host facts, the cost of one NVML sample, the CSV and
the summary. Needs only the standard library, pynvml (nvidia-ml-py) and, for the host columns,
psutil. From the repository root::

    PYTHONPATH=.:DIR_WITH_PYNVML python3 benchmarks/nvml_probe.py

Exits 1 when NVML cannot be opened (the reason is printed).
"""

import json
import os
import sys
import time

from detbench.runner import hostinfo, telemetry


def main(argv):
    path = argv[1] if len(argv) > 1 else os.path.join(os.environ.get("OUT", "."), "telemetry.csv")
    try:
        backend = telemetry.NvmlBackend(gpu_index=0)
    except telemetry.BackendUnavailable as exc:
        print(json.dumps({"error": str(exc), "host": hostinfo.host_facts()}, indent=2))
        return 1
    costs = []
    for _ in range(50):
        start = time.perf_counter()
        backend.sample()
        costs.append(time.perf_counter() - start)
    backend.close()
    costs.sort()
    sampler = telemetry.TelemetrySampler(path, interval_s=0.5, backend="nvml", gpu_index=0)
    with sampler:
        time.sleep(3.0)
    with open(path) as handle:
        csv_text = handle.read()
    report = {
        "host": hostinfo.host_facts(0),
        "nvml_sample_ms": {
            "median": round(costs[len(costs) // 2] * 1e3, 3),
            "max": round(costs[-1] * 1e3, 3),
            "n": len(costs),
        },
        "backend": sampler.backend_name,
        "throttle_reasons_seen": sampler.throttle_reasons,
        "errors": sampler.errors,
        "csv_path": path,
        "csv": csv_text.splitlines(),
        "summary": sampler.summary(image_count=None),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
