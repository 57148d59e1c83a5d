"""The ``onnxruntime`` engine: a detector exported to ONNX (:mod:`detbench.runner.onnx_export`)
run by ONNX Runtime.

The spec's ``model_file`` entry (``detbench.weights.onnx_entry``) names the ``.onnx`` file and
its sha256, checked before loading; an entry with ``error`` (a failed export) is refused, so the
run is recorded failed with that error. Inputs are the same tensors the MXNet engine gets (the
model's own transform), as numpy arrays (``host_inputs``); outputs are ``(ids, scores, boxes)``
with the batch axis, fetched by name in MXNet's order, so ``run.DetectionCollector`` reads them
unchanged. A model exported with a fixed batch axis of 1 is run image by image on a batch.

Execution providers, from ``onnxruntime.get_available_providers()`` and the run's device
(``run.context_name``): ``cpu`` -> CPUExecutionProvider; ``gpuN`` -> TensorRT, then CUDA, on
device N, where available (CPU stays as ONNX Runtime's fallback for operators they lack); a GPU
run without either is refused (``nets.DeviceUnavailable``). The session's own
``get_providers()`` is what ``info`` records.

Graph optimisation: ORT_ENABLE_ALL, and where the session cannot be created at a level, the next
one down (EXTENDED, BASIC, DISABLE_ALL); ``info`` records the level that loaded and the error of
each level that failed (MXNet's exported graphs have failed to load with optimisations on in
some ONNX Runtime releases).
"""

import numpy as np

from detbench.runner import engines, nets

LEVELS = ("ORT_ENABLE_ALL", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_BASIC", "ORT_DISABLE_ALL")
CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
INSTALL_HINT = "install onnxruntime (requirements.txt pins 1.32.0) in the runner's Python"


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise engines.BackendUnavailable(
            "backend onnxruntime: {} ({}); or drop onnxruntime from the config's backends".format(
                INSTALL_HINT, exc
            )
        ) from exc
    return onnxruntime


def choose_providers(context, available):
    """The execution providers (``InferenceSession`` ``providers``) of ``context`` (``cpu`` |
    ``gpuN``) among ``available``."""
    if context == "cpu":
        return [CPU]
    if not context.startswith("gpu") or not context[3:].isdigit():
        raise ValueError("device {!r}: expected 'cpu' or 'gpu<N>'".format(context))
    options = {"device_id": int(context[3:])}
    chosen = [(name, dict(options)) for name in (TENSORRT, CUDA) if name in available]
    if not chosen:
        raise nets.DeviceUnavailable(
            "no GPU {}: this onnxruntime offers no GPU execution provider (available: {}); "
            "install onnxruntime-gpu on a machine with an NVIDIA GPU, or drop {!r} from the "
            "config's devices".format(context[3:], ", ".join(available), context)
        )
    return chosen + [CPU]


def check_model_file(entry, model):
    """Refuse a ``model_file`` entry of a failed export, or a file whose sha256 differs."""
    if entry is None:
        raise nets.WeightsRefused(
            "{}: backend onnxruntime needs the spec's model_file entry (the exported .onnx, "
            "detbench.weights.onnx_entry); none given".format(model)
        )
    if entry.get("error"):
        raise nets.WeightsRefused("no ONNX file for {}: {}".format(model, entry["error"]))
    actual = nets.file_digest(entry["path"])
    if actual != entry["sha256"]:
        raise nets.WeightsRefused(
            "{}: sha256 {} differs from {} recorded when it was exported; refusing to run an "
            "unverified model (export it again: rule export_onnx)".format(
                entry["path"], actual, entry["sha256"]
            )
        )


def open_session(ort, path, providers, threads=None):
    """An InferenceSession of ``path`` at the highest graph optimisation level that loads;
    returns (session, level name, [{"level", "error"} of the levels that failed])."""
    fallbacks = []
    for level in LEVELS:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.log_severity_level = 3  # errors only: the exporter's graphs warn per initializer
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            session = ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:  # the next level down may load; all failing fails the run
            fallbacks.append({"level": level, "error": "{}: {}".format(type(exc).__name__, exc)})
            continue
        return session, level, fallbacks
    raise RuntimeError(
        "{}: onnxruntime could not load it at any graph optimisation level; {}".format(
            path, "; ".join("{}: {}".format(f["level"], f["error"]) for f in fallbacks)
        )
    )


def build(spec, ctx):
    """The engine of the spec's ``model_file`` on the spec's device (``ctx`` is unused: inputs
    are host arrays)."""
    from detbench.runner.run import context_name

    entry = spec.get("model_file")
    check_model_file(entry, spec["model"])
    ort = _import_onnxruntime()
    providers = choose_providers(context_name(spec), ort.get_available_providers())
    session, level, fallbacks = open_session(ort, entry["path"], providers, spec.get("threads"))
    model_input = session.get_inputs()[0]
    input_name, one_at_a_time = model_input.name, model_input.shape[0] == 1
    names = entry.get("outputs") or [output.name for output in session.get_outputs()]
    if len(names) != 3:
        raise nets.WeightsRefused(
            "{}: {} outputs ({}), expected 3 (ids, scores, boxes)".format(
                entry["path"], len(names), ", ".join(names)
            )
        )

    def run(item):
        feed = {input_name: np.ascontiguousarray(item, dtype=np.float32)}
        return tuple(session.run(names, feed))

    call = engines.one_image_at_a_time(run) if one_at_a_time else run  # a fixed batch of 1

    info = {
        "name": engines.ONNXRUNTIME,
        "version": ort.__version__,
        "providers": session.get_providers(),
        "graph_optimization_level": level,
        "fallbacks": fallbacks,
        "opset": entry.get("opset"),
        "nms": entry.get("nms"),
    }
    engine = engines.Engine(call, info)
    engine.host_inputs = True
    return engine
