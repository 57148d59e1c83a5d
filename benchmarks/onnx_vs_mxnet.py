"""Time the demo models in MXNet (hybridized) against their ONNX export in ONNX Runtime.

For each demo model (``ssd_512_mobilenet1.0_voc`` and ``yolo3_mobilenet1.0_voc`` on seeded untrained
weights (the runner's seeded weights, fresh BatchNorm statistics); the trained darknet
``mobilenetv2_yolov3_nano_voc`` from models/), here: the export
(:func:`detbench.runner.onnx_export.export`, timed), then the runner's two engines built from the
same weights, each in its own process (as runs are; measured side by side in one process, MXNet's
Nano took 68 ms, in a speed run's own process 26 ms), the processes alternating over ``--rounds``:
MXNet hybridized with ``static_alloc``/``static_shape`` and the eval NMS (the runner's hybrid mode)
and ONNX Runtime on the CPU execution provider (graph optimisation as the engine chooses it), both
with ``OMP_NUM_THREADS`` / ``intra_op_num_threads`` set to the same thread count. Both get the same
input, the portrait photograph through the model's own eval transform, at batch 1; a pass ends when
every output is on the host (MXNet ``wait_to_read``). Each process warms up ``--warmup`` passes,
then times ``--iters``; medians over all.

No speed target: the benchmark passes when every model exported and ran in both. Prints per
model the export time, both medians, the ratio (ONNX Runtime / MXNet) and the optimisation level
that loaded, and a last line of JSON for run_all.py.

    python benchmarks/onnx_vs_mxnet.py [--rounds 3] [--iters 10] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
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
        net = nets.build_net(model, mx.cpu(), params_path=None, seed=0)  # fresh BN statistics
        net.save_parameters(str(params))
        weights.write_sidecar(params, sidecar, model=model, source="untrained", untrained=True)
    return weights.runner_entry(str(params), str(sidecar))


def export_of(model: str, folder: Path) -> tuple[dict, str, str, dict, float]:
    """The MXNet weights entry, the ONNX export and its record, and the export's seconds."""
    from detbench.runner import onnx_export

    entry = weights_entry(model, folder)
    onnx_path, record_path = str(folder / f"{model}.onnx"), str(folder / f"{model}.record.json")
    start = time.perf_counter()
    record = onnx_export.export(model, entry, onnx_path, record_path)
    export_s = time.perf_counter() - start
    if record["status"] != "ok":
        raise SystemExit(f"{model}: export failed: {record['error']}")
    return entry, onnx_path, record_path, record, export_s


def child(args) -> int:
    """One engine alone in this process: warm up, then ``--iters`` timed passes on the
    portrait; prints its seconds and the engine's info."""
    import mxnet as mx

    from detbench import weights
    from detbench.runner import engines, nets

    entry = json.loads(Path(args.entry).read_text())
    spec = {"model": args.model, "kind": "voc", "mode": "hybrid", "device": "cpu",
            "threads": args.threads_value, "weights": entry, "backend": args.child}  # fmt: skip
    if args.child == "onnxruntime":
        spec["model_file"] = weights.onnx_entry(args.onnx, args.record)
    engine = engines.build(spec, mx.cpu())
    tensor = nets.eval_transform(args.model)(mx.image.imread(str(portrait())))[0].expand_dims(0)
    item = tensor if args.child == "mxnet" else tensor.asnumpy()
    for _ in range(args.warmup):
        timed(engine, item)
    seconds = [timed(engine, item) for _ in range(args.iters)]
    print(json.dumps({"seconds": seconds, "info": engine.info}, default=str))
    return 0


def child_run(backend: str, model: str, paths: dict, args) -> dict:
    """A fresh process per engine, as the runner runs each model: measured in one process
    beside an ONNX Runtime session, MXNet's Nano took about 68 ms, in a speed run 26 ms."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", backend, "--model", model,
               "--entry", paths["entry"], "--onnx", paths["onnx"], "--record", paths["record"],
               "--iters", str(args.iters), "--warmup", str(args.warmup)]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"{model} {backend}: child failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(engine, item) -> float:
    from detbench.runner import engines

    start = time.perf_counter()
    for out in engine(item):
        engines.wait(out)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10, help="timed passes per process")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="child processes per engine")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    for name in ("--model", "--entry", "--onnx", "--record"):
        parser.add_argument(name, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = environment.configure_threads(args.threads)
    args.threads_value = threads
    if args.child:
        return child(args)

    import mxnet as mx
    import onnxruntime

    rows = {}
    with tempfile.TemporaryDirectory(prefix="detbench-onnx-bench-") as tmp:
        for model in MODELS:
            entry, onnx_path, record_path, record, export_s = export_of(model, Path(tmp))
            entry_path = Path(tmp) / f"{model}.entry.json"
            entry_path.write_text(json.dumps(entry))
            paths = {"entry": str(entry_path), "onnx": onnx_path, "record": record_path}
            times, infos = {"mxnet": [], "onnxruntime": []}, {}
            for i in range(args.rounds):
                for backend in list(times) if i % 2 == 0 else list(reversed(times)):
                    done = child_run(backend, model, paths, args)
                    times[backend] += done["seconds"]
                    infos[backend] = done["info"]
            medians = {name: 1000 * statistics.median(t) for name, t in times.items()}
            ratio = medians["onnxruntime"] / medians["mxnet"]
            level = infos["onnxruntime"]["graph_optimization_level"]
            size_mb = record["size_bytes"] / 1e6
            rows[model] = {"export_s": round(export_s, 2), "onnx_mb": round(size_mb, 1),
                           "mxnet_ms": round(medians["mxnet"], 2),
                           "onnxruntime_ms": round(medians["onnxruntime"], 2),
                           "ratio_ort_over_mxnet": round(ratio, 3), "ort_level": level,
                           "nms": "{mxnet} -> {onnx}".format(**record["nms"])}  # fmt: skip
            print(f"{model}: export {export_s:.1f} s; MXNet hybrid {medians['mxnet']:.1f} ms, "
                  f"ONNX Runtime {medians['onnxruntime']:.1f} ms per image (batch 1, "
                  f"{args.rounds} processes x {args.iters} passes each): ORT / MXNet "
                  f"{ratio:.2f} ({level})", flush=True)  # fmt: skip
    measured = "; ".join(
        f"{m}: ORT {r['onnxruntime_ms']} ms vs MXNet {r['mxnet_ms']} ms "
        f"({r['ratio_ort_over_mxnet']}x)"
        for m, r in rows.items()
    )
    return emit({
        "measure": "demo models at batch 1 on the CPU, same input, each engine in its own "
        "process, processes alternating: ONNX Runtime (export at opset 13) vs MXNet "
        "hybridized, median latency (ORT / MXNet), and the export time",
        "target": "every model exports and runs in both (no speed target)",
        "measured": measured,
        "pass": True,
        "machine": f"{machine()}, OMP_NUM_THREADS={threads}, mxnet {mx.__version__}, "
        f"onnxruntime {onnxruntime.__version__}",
        "threads": threads, "iters": args.iters, "warmup": args.warmup,
        "rounds": args.rounds, "models": rows,
    })  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
