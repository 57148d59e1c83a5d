"""Inference engines (backends) behind one interface, so one timing loop serves them all.

An engine is built from a run spec and called on one model input; it returns the detector's
outputs ``(ids, scores, boxes)``, each with a leading batch axis, as MXNet NDArrays (``mxnet``)
or numpy arrays (the others). Inputs come from the same MXNet image decode and the model's own
transform for every backend, so that backends see identical tensors; an engine with
``host_inputs`` gets them as numpy arrays, converted while loading (data time, not model time).

``spec["backend"]`` names the engine (default ``mxnet``). An engine's ``info`` dict goes into
``result.json`` ``backend`` (the backend, its version and what it chose: execution provider,
optimisation level, OpenCV target, ...).

Backends other than MXNet register a builder in ``BUILDERS`` from their own module, imported
lazily so that a device without onnxruntime or OpenCV can still run MXNet.
"""

import importlib

from detbench.contract import BACKENDS, MXNET, ONNXRUNTIME, OPENCV, DetbenchError

# backend -> "module:function" building its engine from (spec, ctx)
BUILDERS = {
    MXNET: "detbench.runner.engines:build_mxnet",
    ONNXRUNTIME: "detbench.runner.engine_onnxruntime:build",
    OPENCV: "detbench.runner.engine_opencv:build",
}


class BackendUnavailable(DetbenchError, RuntimeError):
    """The spec's backend is unknown, or not installed in the runner's Python."""


class Engine(object):
    """A callable model: ``engine(input) -> (ids, scores, boxes)``.

    ``host_inputs``: inputs arrive as numpy arrays instead of NDArrays on ``ctx``.
    ``info``: what result.json records of the backend."""

    host_inputs = False

    def __init__(self, call, info):
        self._call = call
        self.info = info

    def __call__(self, item):
        return self._call(item)


def backend_of(spec):
    return spec.get("backend") or MXNET


def build(spec, ctx):
    """The engine of ``spec``'s backend, its model loaded (files sha256-checked first).

    ``ctx``: the MXNet device for ``mxnet``; ``mx.cpu()`` for the others, which choose their
    device (execution provider, OpenCV target) from ``run.context_name(spec)``."""
    backend = backend_of(spec)
    if backend not in BUILDERS:
        raise BackendUnavailable("backend {!r}: not one of {}".format(backend, ", ".join(BACKENDS)))
    module_name, function = BUILDERS[backend].split(":")
    return getattr(importlib.import_module(module_name), function)(spec, ctx)


def build_mxnet(spec, ctx):
    """The Gluon net of the spec's weights, with the eval NMS for voc runs, hybridized in
    ``hybrid`` mode (static shapes where a batch is one tensor)."""
    from detbench.runner import environment, nets

    net = nets.build_from_weights(spec["model"], ctx, spec["weights"])  # sha256 checked first
    if spec["kind"] == "voc":
        nets.use_eval_nms(net)
    if spec["mode"] == "hybrid":
        stack = spec["kind"] != "voc" or nets.stacks_batches(spec["model"])
        net.hybridize(static_alloc=True, static_shape=stack)
    info = {"name": MXNET, "version": environment.package_versions().get("mxnet")}
    return Engine(net, info)


def to_numpy(array):
    """An engine output as a numpy array (NDArrays are copied to the host, which syncs)."""
    asnumpy = getattr(array, "asnumpy", None)
    return asnumpy() if asnumpy is not None else array


def wait(array):
    """Block until an engine output is computed: MXNet queues work asynchronously, numpy
    outputs are ready when returned."""
    wait_to_read = getattr(array, "wait_to_read", None)
    if wait_to_read is not None:
        wait_to_read()


def one_image_at_a_time(call):
    """``call`` for a graph with a fixed batch of one (an ONNX export, a darknet net in
    OpenCV): a batch of N images runs as N calls, outputs joined on the batch axis, all inside
    the batch's timed interval."""
    import numpy as np

    def join(arrays):
        # detections per image may differ in number: pad with -1, which the collector drops
        longest = max(a.shape[1] for a in arrays) if arrays[0].ndim > 1 else None
        if longest is not None:
            arrays = [
                np.pad(a, [(0, 0), (0, longest - a.shape[1])] + [(0, 0)] * (a.ndim - 2),
                       constant_values=-1)
                for a in arrays
            ]  # fmt: skip
        return np.concatenate(arrays, axis=0)

    def run(batch):
        if batch.shape[0] == 1:
            return call(batch)
        parts = [call(batch[i : i + 1]) for i in range(batch.shape[0])]
        return tuple(join(list(arrays)) for arrays in zip(*parts))

    return run
