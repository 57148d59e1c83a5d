"""The device runner's timing loop, statistics, detections and environment handling."""

from __future__ import annotations

import threading

import mxnet as mx
import numpy as np
import pytest

from detbench.runner import environment, loop, nets, stats
from detbench.runner.run import DetectionCollector, summarise_timings


class _Gate(mx.operator.CustomOp):
    """Identity op that finishes only once the test opens ``GATE``: MXNet runs it in its engine,
    so a caller sees it finished only if it synchronised on the output."""

    def forward(self, is_train, req, in_data, out_data, aux):
        GATE["open"].wait(timeout=10)
        GATE["finished"] = True
        self.assign(out_data[0], req[0], in_data[0])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):  # pragma: no cover
        raise NotImplementedError


@mx.operator.register("detbench_gate")
class _GateProp(mx.operator.CustomOpProp):
    def create_operator(self, ctx, shapes, dtypes):
        return _Gate()


GATE: dict = {}


def test_forward_returns_only_after_outputs_are_computed():
    GATE.update(open=threading.Event(), finished=False)
    threading.Timer(0.3, GATE["open"].set).start()

    def net(x):
        return (mx.nd.Custom(x * 2, op_type="detbench_gate"),)

    batch = loop.Batch(["a"], mx.nd.ones((2, 2)), [None], 0.0)
    outputs, seconds = loop.forward(net, batch)
    # Without wait_to_read() in forward, dispatch returns at once and the gate is still shut.
    assert GATE["finished"] is True
    assert seconds >= 0.25
    assert outputs[0][0].asnumpy().tolist() == [[2, 2], [2, 2]]


def test_prefetcher_yields_batches_in_order_and_reraises_errors():
    def load(ids):
        if ids == ["boom"]:
            raise OSError("cannot decode boom.jpg")
        return loop.Batch(ids, None, [], 0.0)

    seen = [b.image_ids for b in loop.Prefetcher([["1"], ["2"], ["3"]], load)]
    assert seen == [["1"], ["2"], ["3"]]
    with pytest.raises(OSError, match="boom.jpg"):
        list(loop.Prefetcher([["1"], ["boom"], ["3"]], load))


def test_percentiles_match_numpy():
    values = np.random.default_rng(0).random(101).tolist()
    for q in (0, 50, 90, 99, 100):
        assert stats.percentile(values, q) == pytest.approx(np.percentile(values, q))
    summary = stats.latency_summary_ms([0.010, 0.020, 0.030])
    assert summary["p50"] == pytest.approx(20.0) and summary["max"] == pytest.approx(30.0)


def test_repeat_summary_gives_median_spread_and_cv():
    summary = stats.repeat_summary([1.0, 2.0, 3.0])
    assert summary["median"] == 2.0 and summary["min"] == 1.0 and summary["max"] == 3.0
    assert summary["cv"] == pytest.approx(np.std([1, 2, 3]) / 2.0)


def test_timings_come_from_the_median_pass():
    passes = [(3.0, [1.0, 1.0], [0.1, 0.1], 2), (1.0, [0.4, 0.4], [0.1, 0.1], 2),
              (2.0, [0.8, 0.8], [0.1, 0.1], 2)]  # fmt: skip
    timings = summarise_timings(0.5, 2, passes, batch_size=1)
    assert timings["total_wall_s"] == 2.0 and timings["model_s"] == pytest.approx(1.6)
    assert timings["images_per_s"] == 1.0 and timings["measured_batches"] == 2
    assert timings["repeats"] == 3 and timings["median"] == 2.0
    assert len(timings["batch_ms"]) == 6


class _Array:
    def __init__(self, value):
        self.value = np.asarray(value)

    def asnumpy(self):
        return self.value


def test_collector_drops_padding_and_nonfinite_boxes(tmp_path):
    ids = [[[3], [-1], [5]], [[1], [2], [-1]]]
    scores = [[[0.9], [0.0], [0.8]], [[0.7], [np.nan], [0.1]]]
    boxes = [[[1, 2, 3, 4], [0, 0, 0, 0], [5, 6, 7, 8]], [[1, 1, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1]]]
    batch = loop.Batch(["000001", "000002"], None, [lambda b: b * 2, lambda b: b], 0.0)
    collector = DetectionCollector()
    collector(batch, [(_Array(ids), _Array(scores), _Array(boxes))])
    collector.save(str(tmp_path / "detections.npz"))
    with np.load(tmp_path / "detections.npz", allow_pickle=False) as npz:
        assert npz["image_ids"].tolist() == ["000001", "000002"]
        assert npz["image_index"].tolist() == [0, 0, 1]
        assert npz["labels"].tolist() == [3, 5, 1]
        assert npz["boxes"][0].tolist() == [2, 4, 6, 8]
        assert npz["scores"].dtype == np.float32 and npz["labels"].dtype == np.int64
    assert collector.dropped_nonfinite == 1


def test_resize_transform_maps_boxes_back_and_clips():
    image = mx.nd.zeros((200, 400, 3), dtype="uint8")
    tensor, to_original = nets.ResizeTransform(100, 100)(image)
    assert tensor.shape == (3, 100, 100)
    boxes = np.array([[10, 10, 50, 50], [-np.inf, 0, np.inf, 200]], dtype="float32")
    assert to_original(boxes).tolist() == [[40, 20, 200, 100], [0, 0, 400, 200]]


def test_gpu_on_a_host_without_one_is_device_unavailable():
    with pytest.raises(nets.DeviceUnavailable, match="no GPU 7"):
        nets.context_for("gpu7")
    assert nets.context_for("cpu") == mx.cpu()


def test_threads_default_to_physical_cores_unless_configured(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert environment.configure_threads(None) == str(environment.physical_cores())
    assert environment.configure_threads(3) == "3"
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert environment.configure_threads(None) == "5"
    assert environment.speed_knobs()["OMP_NUM_THREADS"] == "5"


def test_versions_come_from_package_metadata():
    versions = environment.package_versions()
    assert versions["gluoncv"] == "0.10.5.post0"  # gluoncv.__version__ would say 0.11.0
    assert versions["mxnet"] == mx.__version__
