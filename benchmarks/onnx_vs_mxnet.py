"""Time the demo models in MXNet (hybridized) against their ONNX export in ONNX Runtime.

For each demo model (``ssd_512_mobilenet1.0_voc`` and ``yolo3_mobilenet1.0_voc`` on seeded
untrained weights, their BatchNorm variances set to 1 as tests/test_onnx.py does; the trained
darknet ``mobilenetv2_yolov3_nano_voc`` from models/), in one process: the export
(:func:`detbench.runner.onnx_export.export`, timed), then the runner's two engines built from the
same weights: MXNet hybridized with ``static_alloc``/``static_shape`` and the eval NMS (the
runner's hybrid mode) and ONNX Runtime on the CPU execution provider (graph optimisation as the
engine chooses it), both with ``OMP_NUM_THREADS`` / ``intra_op_num_threads`` set to the same
thread count. Both get the same input, the portrait photograph through the model's own eval
transform, at batch 1; a pass ends when every output is on the host (MXNet ``wait_to_read``).
After ``--warmup`` passes each, ``--iters`` rounds alternate the order of the two engines; medians.

No speed target: the benchmark passes when every model exported and ran in both. Prints per
model the export time, both medians, the ratio (ONNX Runtime / MXNet) and the optimisation level
that loaded, and a last line of JSON for run_all.py.

    python benchmarks/onnx_vs_mxnet.py [--iters 30] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from run_all import emit, machine

from detbench.runner import environment

MODELS = ("ssd_512_mobilenet1.0_voc", "yolo3_mobilenet1.0_voc", "mobilenetv2_yolov3_nano_voc")


def portrait() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def weights_entry(model: str, folder: Path) -> dict:
    import mxnet as mx

    from detbench import weights, zoo
    from detbench.runner import nets

    params, sidecar = folder / f"{model}.params", folder / f"{model}.json"
    if zoo.is_darknet(model):
        weights.fetch_darknet(model, {}, params, folder / f"{model}.cfg", sidecar, progress=False)
    else:
        net = nets.build_net(model, mx.cpu(), params_path=None, seed=0)
        for variance in net.collect_params(".*(running|moving)_var").values():
            variance.set_data(mx.nd.ones_like(variance.data()))
        net.save_parameters(str(params))
        weights.write_sidecar(params, sidecar, model=model, source="untrained", untrained=True)
    return weights.runner_entry(str(params), str(sidecar))


def engines_of(model: str, folder: Path, threads: str) -> tuple[dict, dict, float]:
    """{"mxnet": engine, "onnxruntime": engine}, the export record and its wall seconds."""
    import mxnet as mx

    from detbench import weights
    from detbench.runner import engines, onnx_export

    entry = weights_entry(model, folder)
    onnx_path, record_path = str(folder / f"{model}.onnx"), str(folder / f"{model}.record.json")
    start = time.perf_counter()
    record = onnx_export.export(model, entry, onnx_path, record_path)
    export_s = time.perf_counter() - start
    if record["status"] != "ok":
        raise SystemExit(f"{model}: export failed: {record['error']}")
    spec = {"model": model, "kind": "voc", "mode": "hybrid", "device": "cpu", "threads": threads,
            "weights": entry}  # fmt: skip
    built = {
        "mxnet": engines.build({**spec, "backend": "mxnet"}, mx.cpu()),
        "onnxruntime": engines.build(
            {**spec, "backend": "onnxruntime",
             "model_file": weights.onnx_entry(onnx_path, record_path)}, mx.cpu()),
    }  # fmt: skip
    return built, record, export_s


def timed(engine, item) -> float:
    from detbench.runner import engines

    start = time.perf_counter()
    for out in engine(item):
        engines.wait(out)
    return time.perf_counter() - start


def alternate(built: dict, inputs: dict, warmup: int, iters: int) -> dict:
    for _ in range(warmup):
        for name, engine in built.items():
            timed(engine, inputs[name])
    times = {name: [] for name in built}
    for i in range(iters):
        order = list(built) if i % 2 == 0 else list(reversed(built))
        for name in order:
            times[name].append(timed(built[name], inputs[name]))
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    threads = environment.configure_threads(args.threads)

    import mxnet as mx
    import onnxruntime

    from detbench.runner import nets

    image = mx.image.imread(str(portrait()))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="detbench-onnx-bench-") as tmp:
        for model in MODELS:
            built, record, export_s = engines_of(model, Path(tmp), threads)
            tensor = nets.eval_transform(model)(image)[0].expand_dims(0)
            inputs = {"mxnet": tensor, "onnxruntime": tensor.asnumpy()}
            times = alternate(built, inputs, args.warmup, args.iters)
            medians = {name: 1000 * statistics.median(t) for name, t in times.items()}
            ratio = medians["onnxruntime"] / medians["mxnet"]
            level = built["onnxruntime"].info["graph_optimization_level"]
            size_mb = record["size_bytes"] / 1e6
            rows[model] = {"export_s": round(export_s, 2), "onnx_mb": round(size_mb, 1),
                           "mxnet_ms": round(medians["mxnet"], 2),
                           "onnxruntime_ms": round(medians["onnxruntime"], 2),
                           "ratio_ort_over_mxnet": round(ratio, 3), "ort_level": level,
                           "nms": "{mxnet} -> {onnx}".format(**record["nms"])}  # fmt: skip
            print(f"{model}: export {export_s:.1f} s; MXNet hybrid {medians['mxnet']:.1f} ms, "
                  f"ONNX Runtime {medians['onnxruntime']:.1f} ms per image (batch 1, "
                  f"{args.iters} passes each): ORT / MXNet {ratio:.2f} ({level})",
                  flush=True)  # fmt: skip
    measured = "; ".join(
        f"{m}: ORT {r['onnxruntime_ms']} ms vs MXNet {r['mxnet_ms']} ms "
        f"({r['ratio_ort_over_mxnet']}x)"
        for m, r in rows.items()
    )
    return emit({
        "measure": "demo models at batch 1 on the CPU, same input, same process, order "
        "alternating: ONNX Runtime (export at opset 13) vs MXNet hybridized, median latency "
        "(ORT / MXNet), and the export time",
        "target": "every model exports and runs in both (no speed target)",
        "measured": measured,
        "pass": True,
        "machine": f"{machine()}, OMP_NUM_THREADS={threads}, mxnet {mx.__version__}, "
        f"onnxruntime {onnxruntime.__version__}",
        "threads": threads, "iters": args.iters, "warmup": args.warmup, "models": rows,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
