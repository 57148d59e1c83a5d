"""A batch-1 speed run as the runner makes it, for the benchmarks that time the harness itself.

:class:`SpeedRun` builds the model through the runner's own path (``engines.build`` on a spec whose
weights entry is sha256-checked by ``nets.build_from_weights``, hybridized with static shapes in
``hybrid`` mode), loads images with the runner's reader and the model's speed-run transform
(``loop.load_batch``), once, before the passes (``run.preloaded``), and times a pass with
``loop.timed_pass``, exactly as ``run.execute`` does for each repeat of a speed run. The images are
the demo's real photos (``detbench.data.photos``, built once under ``data/bench/``), drawn with the
workflow's seeded ``sample_speed_images``; a pass longer than the 24 photos cycles through them
again.

Models: a darknet model runs on its shipped ``.cfg``/``.weights`` (real weights); a GluonCV model
on seeded untrained weights saved to a temporary ``.params`` (as the demo's ``untrained`` source).
``OMP_NUM_THREADS`` must be set before this module is imported (``environment.configure_threads``).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mxnet as mx

from detbench import zoo
from detbench.data.photos import make_photo_voc
from detbench.data.sample import sample_speed_images
from detbench.data.voc import read_split
from detbench.runner import engines, loop, nets
from detbench.runner.run import chunks, image_reader, init_weights, preloaded

REPO = Path(__file__).resolve().parent.parent
DEVKIT = REPO / "data" / "bench" / "VOCdevkit"
DARKNET = REPO / "models" / "mobilenetv2-yolov3-nano-voc"
DEFAULT_MODEL = "mobilenetv2_yolov3_nano_voc"


def sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def photo_devkit() -> str:
    """The demo's 24 real photos as a VOCdevkit (made once; the photo packages must be there)."""
    make_photo_voc(DEVKIT)
    return str(DEVKIT)


def weights_entry(model: str, workdir: str, seed: int = 0) -> dict:
    """The spec's ``weights`` entry of ``model``: darknet files, or seeded untrained weights."""
    if zoo.is_darknet(model):
        cfg = DARKNET / "MobileNetV2-YOLOv3-Nano-voc.cfg"
        weights = DARKNET / "MobileNetV2-YOLOv3-Nano-voc.weights"
        return {"source": "darknet", "format": "darknet", "untrained": False,
                "path": str(weights), "sha256": sha256(weights),
                "cfg": str(cfg), "cfg_sha256": sha256(cfg)}  # fmt: skip
    params = str(Path(workdir) / f"{model}.params")
    init_weights(model, seed, params)
    return {"source": "untrained", "untrained": True, "path": params, "sha256": sha256(params)}


class SpeedRun:
    """One model's batch-1 speed run on the CPU: ``timed_pass()`` is one measured repeat.

    ``weights``: the spec's weights entry (default: :func:`weights_entry`)."""

    def __init__(self, model=DEFAULT_MODEL, images=24, size=512, mode="hybrid", seed=0,
                 weights=None):  # fmt: skip
        self._tmp = tempfile.TemporaryDirectory(prefix="detbench-bench-")
        devkit = photo_devkit()
        shape = nets.speed_shape(model, size)
        self.model, self.mode = model, mode
        weights = weights or weights_entry(model, self._tmp.name, seed)
        self.spec = {
            "kind": "speed", "model": model, "device": "cpu", "mode": mode, "batch_size": 1,
            "input_shape": [3, *shape], "weights": weights,
        }  # fmt: skip
        self.ctx = mx.cpu()
        self.net = engines.build(self.spec, self.ctx)
        transform = nets.speed_transform(model, *shape)
        read = image_reader(devkit)
        host_inputs = self.net.host_inputs

        def load(image_ids):
            return loop.load_batch(image_ids, read, transform, self.ctx, True, host_inputs)

        pool = sample_speed_images(read_split(devkit), 24, seed)
        self.image_ids = [pool[i % len(pool)] for i in range(images)]
        self.batches = chunks(self.image_ids, 1)
        self.load = preloaded(self.batches, load)  # as run.execute does for a speed run

    def warm_up(self, passes=1):
        """The runner's warm-up (first batch: graph building), then ``passes`` untimed passes."""
        loop.timed_pass(self.net, self.batches[:1], self.load, prefetch=False)
        for _ in range(passes):
            loop.timed_pass(self.net, self.batches, self.load)

    def timed_pass(self) -> float:
        """Images per second of one pass as the runner times it."""
        wall, _, _, count = loop.timed_pass(self.net, self.batches, self.load)
        return count / wall

    def pass_figures(self) -> dict:
        """One pass as the runner times it: images/s over its wall time and over model time."""
        wall, model_s, _, count = loop.timed_pass(self.net, self.batches, self.load)
        return {"images_per_s": count / wall, "model_images_per_s": count / sum(model_s)}

    def batch_seconds(self) -> list[float]:
        """One pass as the runner times it: the model seconds of each batch (its latencies)."""
        return loop.timed_pass(self.net, self.batches, self.load)[1]

    def preloaded_inputs(self) -> list:
        """The same pass's model inputs, decoded and transformed beforehand."""
        return [self.load(ids).inputs for ids in self.batches]

    def bare_net(self):
        """A second copy of the model, built from the same weights entry and hybridized as the
        runner's hybrid mode does, without the engine wrapper: for a bare ``net(x)`` loop."""
        net = nets.build_from_weights(self.model, self.ctx, self.spec["weights"])
        net.hybridize(static_alloc=True, static_shape=True)
        return net

    def close(self):
        self._tmp.cleanup()


def bare_pass(net, inputs) -> float:
    """Images per second of a bare loop: ``net(x)``, then ``wait_to_read()`` on each output."""
    start = time.perf_counter()
    for x in inputs:
        for out in net(x):
            out.wait_to_read()
    return len(inputs) / (time.perf_counter() - start)


def alternate(rounds: int, measures: dict) -> dict:
    """Run each callable of ``measures`` once per round, the order reversed every other round;
    the values of each, in round order."""
    values = {name: [] for name in measures}
    names = list(measures)
    for i in range(rounds):
        for name in names if i % 2 == 0 else reversed(names):
            values[name].append(measures[name]())
    return values


def paired_ratio(numerator: list[float], denominator: list[float]) -> dict:
    """The median of per-round ratios (drift cancels within a round), their range, and the
    ratio of the medians."""
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return {
        "median_ratio": round(statistics.median(ratios), 4),
        "min_ratio": round(min(ratios), 4),
        "max_ratio": round(max(ratios), 4),
        "ratio_of_medians": round(statistics.median(numerator) / statistics.median(denominator), 4),
    }


def fresh_process(script: str, args: list[str], what: str) -> object:
    """Run ``script`` with ``args`` in a fresh Python process; the JSON on its last line of
    output. A failure shows the child's output and stops the benchmark, naming ``what``."""
    command = [sys.executable, os.path.abspath(script), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"{what}: child failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_process_seconds(script: str, name: str, entry: dict, images: int, tmp: str) -> list:
    """Per-image model seconds of the net ``name`` (weights ``entry``), measured by ``script
    --child name --entry FILE --images N`` in a fresh process (:func:`child_batch_seconds`).
    Nets are never timed side by side in one process: beside a built FP32 net, MXNet ran an
    INT8 graph about 2.7x slower (80 vs 30 ms, same weights and loop)."""
    path = os.path.join(tmp, f"{name}.json")
    with open(path, "w") as handle:
        json.dump(entry, handle)
    return fresh_process(script, ["--child", name, "--entry", path, "--images", str(images)], name)


def child_batch_seconds(model: str, images: int, entry_path: str) -> int:
    """A child of :func:`fresh_process_seconds`: ``model`` with the weights entry at
    ``entry_path``, alone in this process, warmed up, one timed pass; prints its batch seconds."""
    run = SpeedRun(model, images, weights=json.loads(Path(entry_path).read_text()))
    run.warm_up()
    print(json.dumps(run.batch_seconds()))
    run.close()
    return 0
