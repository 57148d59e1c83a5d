"""Prove the onnxruntime engine's GPU path on a real NVIDIA GPU (issue 16, item 3).

Builds detbench's onnxruntime engine (``detbench.runner.engine_onnxruntime.build``) for an ONNX
export on ``cpu`` and on ``gpu0``, runs both on the same random input (batch 1 and 2), and prints
one JSON document: onnxruntime's available providers, the providers and graph-optimisation level
each engine recorded, the largest output differences, and median latencies. Needs only numpy and
onnxruntime (the engine imports no MXNet). From the repository root::

    PYTHONPATH=. python3 benchmarks/ort_gpu_probe.py \
        weights/onnx/darknet/mobilenetv2_yolov3_nano_voc

(the export's ``.onnx`` and ``.json`` record stem). Exits 1 when the gpu0 engine cannot be
built.
"""

import json
import statistics
import sys
import time

import numpy as np

from detbench.runner import engine_onnxruntime, hostinfo


def spec_for(stem, device):
    record = json.load(open(stem + ".json"))
    entry = {"format": "onnx", "path": stem + ".onnx", "sha256": record["sha256"],
             "outputs": record.get("outputs"), "opset": record.get("opset"),
             "nms": record.get("nms")}  # fmt: skip
    return {"model": record["model"], "device": device, "threads": None, "model_file": entry}


def median_ms(engine, x, rounds=30):
    engine(x)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        engine(x)
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 3)


def main(argv):
    import onnxruntime

    stem = argv[1]
    record = json.load(open(stem + ".json"))
    size = 320 if "nano" in record["model"] else 416
    x = np.random.default_rng(0).uniform(0, 1, size=(2, 3, size, size)).astype(np.float32)
    out = {"onnxruntime": onnxruntime.__version__,
           "available_providers": onnxruntime.get_available_providers(),
           "host": hostinfo.host_facts(0), "model": record["model"]}  # fmt: skip
    engines = {"cpu": engine_onnxruntime.build(spec_for(stem, "cpu"), None)}
    try:
        engines["gpu0"] = engine_onnxruntime.build(spec_for(stem, "gpu0"), None)
    except Exception as exc:  # the reason is the finding
        out["gpu0_error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out, indent=1, default=str))
        return 1
    results = {name: engine(x) for name, engine in engines.items()}
    out["engines"] = {name: engine.info for name, engine in engines.items()}
    out["max_abs_difference"] = {
        key: float(np.max(np.abs(a - b)))
        for key, a, b in zip(
            ("ids", "scores", "boxes"), results["cpu"], results["gpu0"], strict=True
        )
    }
    out["median_ms_batch1"] = {name: median_ms(e, x[:1]) for name, e in engines.items()}
    print(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
