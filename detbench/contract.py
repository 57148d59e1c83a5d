"""What the device runner and the orchestrator share: file names, columns, keys, exit codes, and
the base class of every error detbench reports by its message.

One definition of each fact (docs/contracts.md describes the files). Importable on the seed
stack (Python 3.6, standard library only), like the rest of what the runner imports.
"""

# The files of a run directory: results/<name>/speed/<model>/<backend>/<device>-<mode>/ or
# results/<name>/voc/<model>/<backend>/<device>/.
SPEC = "spec.json"  # written by the spec rule, read by the runner
RESULT = "result.json"  # written by the runner, last and atomically
TELEMETRY = "telemetry.csv"  # written by the runner while it runs
DETECTIONS = "detections.npz"  # voc runs
MAP = "map.json"  # written by evaluate (voc runs)
MLFLOW = "mlflow.json"  # written by track
RUN_OUTPUTS = (RESULT, TELEMETRY, DETECTIONS)  # what the runner writes

# Inference backends (spec "backend"), the first the default. MXNet runs in the Gluon modes
# imperative | hybrid; the others run their own graph, mode "native".
MXNET, ONNXRUNTIME, OPENCV = "mxnet", "onnxruntime", "opencv"
BACKENDS = (MXNET, ONNXRUNTIME, OPENCV)
MXNET_MODES = ("imperative", "hybrid")
NATIVE_MODE = "native"

STATUS_OK, STATUS_FAILED = "ok", "failed"
STATUSES = (STATUS_OK, STATUS_FAILED)
KINDS = ("speed", "voc")

# telemetry.csv: one row per sample; a sensor the host lacks is an empty cell, never a guess.
TELEMETRY_FIELDS = (
    "cpu_percent",
    "ram_used_mb",
    "swap_used_mb",
    "gpu_util_percent",
    "gpu_temp_c",
    "cpu_temp_c",
    "gpu_mem_used_mb",
    "power_w",
)
TELEMETRY_COLUMNS = ("t_s",) + TELEMETRY_FIELDS

# result.json "timings": the scalar figures (plus latency_ms, batch_ms and repeat figures).
TIMING_KEYS = (
    "total_wall_s",
    "model_s",
    "data_s",
    "first_batch_s",
    "images_per_s",
    "model_images_per_s",
    "measured_images",
    "measured_batches",
)
LATENCY_KEYS = ("p50", "p90", "p99", "mean", "max")
REPEAT_KEYS = ("median", "min", "max", "cv")  # when repeats > 1

# detections.npz (DESIGN §4): exactly these arrays, no pickled objects.
DETECTION_KEYS = ("image_ids", "image_index", "labels", "scores", "boxes")

# Exit codes of `python -m detbench.runner ...` and of the `detbench` CLI.
EXIT_OK = 0
EXIT_ERROR = 1  # a DetbenchError: its message was printed, no traceback
EXIT_USAGE = 2  # argparse's
EXIT_QUANTIZE_FAILED = 3  # quantize: this MXNet cannot quantize; the reason is in --error-out


class DetbenchError(Exception):
    """Base of every error detbench reports by its message alone: a bad config, file or input,
    a failed download or hash check, an unreachable tracking server. The message names the file
    or key and the fix; the CLI prints it without a traceback and exits with EXIT_ERROR."""
