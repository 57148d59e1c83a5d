"""Timed inference loops with a prefetch thread for decoding and transforms.

Every clock read that closes a model interval follows ``wait_to_read()`` on every MXNet output
(:func:`detbench.runner.engines.wait`): MXNet dispatches asynchronously, so a timer read after
``net(x)`` alone measures only the dispatch.
``mx.nd.waitall()`` is not used: it would also wait for the prefetch thread's queued work.
"""

import threading
import time

from detbench.runner import engines

try:
    import queue
except ImportError:  # pragma: no cover
    import Queue as queue  # noqa: N813


class Batch(object):
    """One input batch: ``inputs`` is one NDArray (stacked) or a list of per-image NDArrays."""

    def __init__(self, image_ids, inputs, unwarps, data_s):
        self.image_ids = image_ids
        self.inputs = inputs
        self.unwarps = unwarps
        self.data_s = data_s


def load_batch(image_ids, read_image, transform, ctx, stack, host_inputs=False):
    """Decode + transform ``image_ids``; the data time ends after the inputs are materialised
    (as numpy arrays with ``host_inputs``, for engines other than MXNet)."""
    import mxnet as mx

    start = time.perf_counter()
    tensors, unwarps = [], []
    for image_id in image_ids:
        tensor, unwarp = transform(read_image(image_id))
        tensors.append(tensor)
        unwarps.append(unwarp)
    if stack:
        inputs = mx.nd.stack(*tensors)
        inputs = inputs.asnumpy() if host_inputs else inputs.as_in_context(ctx)
        engines.wait(inputs)
    else:
        inputs = [t.expand_dims(0) for t in tensors]
        inputs = [t.asnumpy() if host_inputs else t.as_in_context(ctx) for t in inputs]
        for item in inputs:
            engines.wait(item)
    return Batch(list(image_ids), inputs, unwarps, time.perf_counter() - start)


def forward(net, batch):
    """Run the engine on one batch; returns (list of output tuples, seconds after sync)."""
    start = time.perf_counter()
    items = [batch.inputs] if not isinstance(batch.inputs, list) else batch.inputs
    outputs = [net(item) for item in items]
    for output in outputs:
        for array in output:
            engines.wait(array)
    return outputs, time.perf_counter() - start


class Prefetcher(object):
    """Loads batches in a background thread, at most ``depth`` ahead of the consumer."""

    _DONE = object()

    def __init__(self, batches, load, depth=2):
        self._batches = batches
        self._load = load
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="detbench-prefetch")
        self._thread.daemon = True

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self):
        try:
            for image_ids in self._batches:
                if not self._put(self._load(image_ids)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
            return
        self._put(self._DONE)

    def __iter__(self):
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            self._thread.join()


def timed_pass(net, batches, load, on_output=None, prefetch=True, progress=None):
    """Run every batch; returns (wall seconds, [model seconds], [data seconds], images).

    ``progress``: a :class:`detbench.runner.progress.Progress`, told the images of each batch."""
    source = Prefetcher(batches, load) if prefetch else (load(ids) for ids in batches)
    model_s, data_s, images = [], [], 0
    start = time.perf_counter()
    for batch in source:
        outputs, seconds = forward(net, batch)
        model_s.append(seconds)
        data_s.append(batch.data_s)
        images += len(batch.image_ids)
        if on_output is not None:
            on_output(batch, outputs)
        if progress is not None:
            progress.update(len(batch.image_ids))
    return time.perf_counter() - start, model_s, data_s, images
