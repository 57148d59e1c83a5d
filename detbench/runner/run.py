"""Execute one run spec: a speed run or a VOC test-set run, with telemetry, into its run dir.

Files written (DESIGN §4, docs/contracts.md): ``telemetry.csv`` while running, then
``detections.npz`` (voc runs), then ``result.json`` last and atomically, so a run directory with
a ``result.json`` is complete. A failure of the model on the device is a result
(``status: failed``), not a crash; an interrupt (Ctrl-C) leaves no ``result.json``.
"""

import datetime
import json
import os
import re
import sys
import time
import traceback

import numpy as np

from detbench import contract, zoo
from detbench.contract import DetbenchError
from detbench.runner import engines, environment, loop, nets, stats

IMAGE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # a file stem: never a path


class SpecError(DetbenchError, ValueError):
    """A spec.json the runner refuses to run; the message names the file and the entry."""


def check_image_ids(spec, spec_path):
    """Refuse a spec whose image ids are not plain VOC file stems (``../x`` would read outside
    ``JPEGImages/``)."""
    for number, image_id in enumerate(spec["image_ids"], 1):
        if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
            raise SpecError(
                "{}: image_ids entry {} is {!r}, expected a VOC image id like '000001' "
                "(letters, digits, '_', '-', '.'; no path)".format(spec_path, number, image_id)
            )


def _stamp(result, event):
    """``<event>_at`` (UTC, to the second) and ``<event>_unix_s`` (the same instant as Unix time
    to the millisecond, on this device's clock): when the run started or finished."""
    now = time.time()
    result[event + "_at"] = datetime.datetime.utcfromtimestamp(int(now)).isoformat() + "Z"
    result[event + "_unix_s"] = round(now, 3)


def write_json_atomic(obj, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def image_reader(devkit):
    import mxnet as mx

    folder = os.path.join(devkit, "VOC2007", "JPEGImages")

    def read(image_id):
        return mx.image.imread(os.path.join(folder, image_id + ".jpg"))

    return read


def chunks(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def summarise_timings(first_batch_s, warmup_batches, passes, batch_size):
    """Timings block of result.json from the measured passes (one per repeat).

    ``passes`` holds (wall, model seconds per batch, data seconds per batch, images) tuples.
    Figures are the median pass's; latency percentiles pool every measured batch; the
    ``repeat_*`` lists hold each pass's wall, model and data seconds, in pass order."""
    walls = [p[0] for p in passes]
    median_index = sorted(range(len(walls)), key=lambda i: walls[i])[(len(walls) - 1) // 2]
    wall, model_s, data_s, images = passes[median_index]
    all_batches = [s for p in passes for s in p[1]]
    timings = {
        "total_wall_s": wall,
        "model_s": sum(model_s),
        "data_s": sum(data_s),
        "first_batch_s": first_batch_s,
        "warmup_batches": warmup_batches,
        "measured_batches": len(model_s),
        "measured_images": images,
        "batch_size": batch_size,
        "images_per_s": images / wall if wall > 0 else None,
        "model_images_per_s": images / sum(model_s) if sum(model_s) > 0 else None,
        "latency_ms": stats.latency_summary_ms(all_batches),
        "batch_ms": [round(s * 1000.0, 4) for s in all_batches],
        "repeats": len(passes),
        "repeat_total_wall_s": walls,
        "repeat_model_s": [sum(p[1]) for p in passes],
        "repeat_data_s": [sum(p[2]) for p in passes],
    }
    if len(passes) > 1:
        timings.update(stats.repeat_summary(walls))
    return timings


class DetectionCollector(object):
    """Accumulates detections in the detections.npz contract (original-image pixels)."""

    def __init__(self):
        self.image_ids, self.index, self.labels, self.scores, self.boxes = [], [], [], [], []
        self.dropped_nonfinite = 0

    def __call__(self, batch, outputs):
        if len(outputs) == 1 and len(batch.image_ids) > 1:
            ids, scores, boxes = [engines.to_numpy(o) for o in outputs[0]]
            per_image = [(ids[i], scores[i], boxes[i]) for i in range(len(batch.image_ids))]
        else:
            per_image = [tuple(engines.to_numpy(o)[0] for o in output) for output in outputs]
        for image_id, unwarp, (ids, scores, boxes) in zip(
            batch.image_ids, batch.unwarps, per_image
        ):
            ids, scores = ids.reshape(-1), scores.reshape(-1)
            boxes = unwarp(boxes.reshape(-1, 4))
            keep = ids >= 0  # GluonCV pads its fixed-size output with id -1
            finite = np.isfinite(scores) & np.isfinite(boxes).all(axis=1)
            self.dropped_nonfinite += int((keep & ~finite).sum())
            keep &= finite
            row = len(self.image_ids)
            self.image_ids.append(image_id)
            self.index.append(np.full(int(keep.sum()), row, dtype=np.int64))
            self.labels.append(ids[keep].astype(np.int64))
            self.scores.append(scores[keep].astype(np.float32))
            self.boxes.append(boxes[keep].astype(np.float32))

    def save(self, path):
        def cat(parts, dtype, shape):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)

        tmp = path + ".tmp.npz"
        np.savez(
            tmp,
            image_ids=np.array(self.image_ids, dtype=str),
            image_index=cat(self.index, np.int64, (0,)),
            labels=cat(self.labels, np.int64, (0,)),
            scores=cat(self.scores, np.float32, (0,)),
            boxes=cat(self.boxes, np.float32, (0, 4)).reshape(-1, 4),
        )
        os.replace(tmp, path)


def preloaded(batches, load):
    """``load`` for a speed run: its (small) sample decoded and transformed once, before the
    timed passes, each batch keeping the data time it took. Decoding in the prefetch thread
    beside the model slowed the model itself by about a fifth on 2 cores
    (benchmarks/harness_overhead.py), so speed runs time the model alone; voc runs, over the
    whole test set, still decode in the prefetch thread."""
    ready = {}
    for image_ids in batches:
        if tuple(image_ids) not in ready:
            ready[tuple(image_ids)] = load(image_ids)

    def take(image_ids):
        return ready[tuple(image_ids)]

    return take


def context_name(spec):
    """The MXNet device of a run: ``cpu`` or ``gpuN``. A device over SSH has its own name in
    ``device``; the orchestrator then says which MXNet device it means in ``context``."""
    return spec.get("context") or spec["device"]


def execute(spec, collector, backend_info):
    """Build the model's engine on its device, warm up, run the measured passes; returns
    timings. ``backend_info`` (a dict) receives the engine's ``info``."""
    from detbench.runner.progress import Progress

    if engines.backend_of(spec) == engines.MXNET:
        ctx = nets.context_for(context_name(spec))
    else:  # inputs are prepared on the host; the engine picks its device from the spec
        import mxnet as mx

        ctx = mx.cpu()
    net = engines.build(spec, ctx)
    backend_info.update(net.info)
    if spec["kind"] == "voc":
        transform = nets.eval_transform(spec["model"])
        stack = nets.stacks_batches(spec["model"])
    else:
        transform = nets.speed_transform(spec["model"], *spec["input_shape"][1:])
        stack = True
    read = image_reader(spec["devkit"])

    def load(image_ids):
        return loop.load_batch(image_ids, read, transform, ctx, stack, net.host_inputs)

    batches = chunks(list(spec["image_ids"]), int(spec["batch_size"]))
    if spec["kind"] == "speed":
        load = preloaded(batches, load)
    warmup = max(1, int(spec.get("warmup", 1)))
    warmup_batches = [batches[i % len(batches)] for i in range(warmup)]
    _, first, _, _ = loop.timed_pass(net, warmup_batches[:1], load, prefetch=False)
    loop.timed_pass(net, warmup_batches[1:], load, prefetch=False)
    passes = []
    repeats = int(spec.get("repeats", 1))
    for repeat in range(repeats):
        on_output = collector if repeat == 0 else None
        label = "{} {} {} {}".format(spec["kind"], spec["model"], spec["device"], spec["mode"])
        if repeats > 1:
            label += " pass {}/{}".format(repeat + 1, repeats)
        progress = Progress(label, len(spec["image_ids"]), spec.get("progress_interval_s", 10))
        progress.start()
        try:
            passes.append(
                loop.timed_pass(net, batches, load, on_output, spec.get("prefetch", True), progress)
            )
        finally:
            progress.close()
    return summarise_timings(first[0], warmup, passes, int(spec["batch_size"]))


def run_spec(spec_path):
    """Run the spec at ``spec_path``; its directory is the run directory. Returns the result."""
    from detbench.runner import hostinfo, telemetry
    from detbench.runner.cooldown import cool_down

    with open(spec_path) as handle:
        spec = json.load(handle)
    check_image_ids(spec, spec_path)
    run_dir = os.path.dirname(os.path.abspath(spec_path))
    threads = environment.configure_threads(spec.get("threads"))
    context = context_name(spec)
    gpu_index = int(context[3:]) if context.startswith("gpu") else 0
    result = {
        "status": "failed",
        "error": None,
        "kind": spec["kind"],
        "config_name": spec["config_name"],
        "model": spec["model"],
        "device": spec["device"],
        "mode": spec["mode"],
        "backend": {"name": engines.backend_of(spec)},
        "batch_size": int(spec["batch_size"]),
        "input_shape": spec.get("input_shape"),
        "image_count": len(spec["image_ids"]),
        "weights": spec["weights"],
        "dataset": spec["dataset"],
        "threads": threads,
        "timings": None,
    }
    _stamp(result, "started")
    if spec.get("context"):
        result["context"] = spec["context"]
    if spec.get("link"):
        result["link"] = spec["link"]  # measured by the orchestrator before the run (SSH)
    cooldown_entry = cool_down(spec.get("cooldown"), gpu_index)
    if cooldown_entry is not None:
        result["cooldown"] = cooldown_entry
        _stamp(result, "started")
    collector = DetectionCollector()
    sampler = telemetry.TelemetrySampler(
        os.path.join(run_dir, contract.TELEMETRY),
        interval_s=float(spec.get("telemetry_interval_s", 0.5)),
        gpu_index=gpu_index,
    )
    sampler.start()
    try:
        result["timings"] = execute(spec, collector, result["backend"])
        result["status"] = "ok"
    except KeyboardInterrupt:
        sampler.stop()
        raise
    except Exception as exc:  # a model failing on a device is a result, recorded as failed
        traceback.print_exc()
        result["error"] = "{}: {}".format(type(exc).__name__, exc)
    finally:
        sampler.stop()
    _stamp(result, "finished")
    result["telemetry"] = sampler.summary(image_count=len(spec["image_ids"]))
    result["versions"] = environment.package_versions()
    result["env"] = environment.speed_knobs()
    result["host"] = hostinfo.host_facts(gpu_index)
    if spec["kind"] == "voc":
        result["detections_dropped_nonfinite"] = collector.dropped_nonfinite
        if result["status"] != "ok":
            collector = DetectionCollector()
        collector.save(os.path.join(run_dir, contract.DETECTIONS))
    write_json_atomic(result, os.path.join(run_dir, contract.RESULT))
    sys.stderr.write(
        "detbench runner: {} {} {} {} -> {}{}\n".format(
            spec["kind"],
            spec["model"],
            spec["device"],
            spec["mode"],
            result["status"],
            ": " + result["error"] if result["error"] else "",
        )
    )
    return result


def init_weights(model, seed, out_path):
    """Save seeded, untrained weights of ``model`` (for the offline demo) to ``out_path``."""
    import mxnet as mx

    net = nets.build_net(zoo.fp32_name(model), mx.cpu(), params_path=None, seed=seed)
    tmp = out_path + ".tmp"
    net.save_parameters(tmp)
    os.replace(tmp, out_path)
