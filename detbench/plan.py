"""Turn a validated config into paths, target lists and per-job settings.

Used by ``rules/common.smk``; every value here is deterministic (sorted, no timestamps or
absolute paths) so Snakemake's params trigger reruns only what a config change touched.
"""

from __future__ import annotations

import copy

from detbench import weights as weight_sources
from detbench import zoo
from detbench.contract import BACKENDS, MXNET, NATIVE_MODE, OPENCV, DetbenchError

BACKEND_PATTERN = "|".join(BACKENDS)  # the {backend} wildcard


class ConfigError(DetbenchError, ValueError):
    """A config value the schema cannot express is wrong; the message names the key."""


def check_config(config: dict) -> None:
    """Checks beyond config/schema.yaml: known model names and overrides of listed models."""
    unknown = [m for m in config["models"] if m not in zoo.MODELS]
    if unknown:
        raise ConfigError(
            f"models: unknown model(s) {', '.join(unknown)}; known VOC detectors (detbench.zoo): "
            f"{', '.join(sorted(zoo.MODELS))}"
        )
    names = device_names(config)
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise ConfigError(f"devices: {', '.join(doubled)} listed more than once")
    device = config["detection_pictures"]["device"]
    if device is not None and device not in names:
        raise ConfigError(f"detection_pictures.device: {device} is not listed under devices")
    stray = sorted(set(config.get("overrides", {})) - set(config["models"]))
    if stray:
        raise ConfigError(f"overrides: {', '.join(stray)} not listed under models")
    unused = sorted(set(config["weights"].get("files", {})) - _file_weights(config))
    if unused:
        raise ConfigError(
            f"weights.files: {', '.join(unused)}: no listed model takes these weights (its "
            "source is neither `file` nor `darknet`); remove the entry, or set weights.source "
            "or weights.per_model"
        )
    problems = weight_sources.config_errors(config["weights"], config["models"])
    if problems:
        raise ConfigError("weights: " + "; ".join(problems))


def _file_weights(config: dict) -> set[str]:
    """Models whose weights ``weights.files`` may provide: source ``file`` (which needs the
    entry) or ``darknet`` (which it overrides), FP32 bases of quantized models too."""
    used = set()
    for model in config["models"]:
        source, name = weights_source(config, model), model
        if source == "quantized":
            source, name = weight_sources.quantize_input(config["weights"], model)
        if source in ("file", "darknet"):
            used.add(name)
    return used


def results_dir(config: dict) -> str:
    return f"results/{config['name']}"


def devkit(config: dict) -> str:
    """The VOCdevkit the runs read: ``voc.root`` as given, else ``data/<name>/VOCdevkit``."""
    return config["voc"]["root"] or f"data/{config['name']}/VOCdevkit"


def data_source(config: dict) -> str:
    """Which of synthetic | photos | root | archive | download provides the data (first set
    wins)."""
    voc = config["voc"]
    if voc.get("synthetic"):
        return "synthetic"
    if voc.get("photos"):
        return "photos"
    if voc.get("root"):
        return "root"
    if voc.get("archive"):
        return "archive"
    return "download"


def root_state(config: dict) -> str | None:
    """For ``voc.root``: the fingerprint of the split's ids and annotations as they are now
    (or why they cannot be read), a ``check_voc`` param, so that editing the dataset in place
    reruns the check and everything measured on it. ``None`` for the other sources, whose
    devkit is a rule's output."""
    if data_source(config) != "root":
        return None
    from detbench.data.check import fingerprint
    from detbench.data.errors import DataError

    try:
        return fingerprint(config["voc"]["root"], config["voc"]["split"])
    except (DataError, OSError) as exc:
        return f"unreadable: {exc}"


def settings(config: dict, model: str, section: str) -> dict:
    """``config[section]`` with the model's overrides applied (section: speed | voc_run)."""
    merged = copy.deepcopy(config[section])
    merged.update(config.get("overrides", {}).get(model, {}).get(section, {}))
    return dict(sorted(merged.items()))


# The keys of speed / voc_run that a run's spec carries; the others (speed.images, speed.seed,
# speed.modes: the sample and the target list; voc_run.metric: evaluate) rerun no benchmark.
RUN_KEYS = {"speed": ("batch", "size", "warmup", "repeats"), "voc_run": ("batch", "warmup", "mode")}


def run_settings(config: dict, model: str, section: str, backend: str = MXNET) -> dict:
    """The slice of :func:`settings` that one speed or voc run of ``model`` on ``backend``
    uses. ``voc_run.mode`` is a Gluon mode: other backends run their own graph (``native``),
    so changing it reruns the MXNet voc runs only."""
    merged = settings(config, model, section)
    picked = {key: merged[key] for key in RUN_KEYS[section]}
    if "mode" in picked and backend != MXNET:
        picked["mode"] = NATIVE_MODE
    return picked


def backends(config: dict, model: str | None = None) -> list[str]:
    """The backends of ``model`` (``overrides.<model>.backends``), else ``backends`` (the
    schema's default: MXNet only)."""
    override = config.get("overrides", {}).get(model, {}).get("backends") if model else None
    return list(override or config.get("backends", [MXNET]))


def modes(config: dict, backend: str) -> list[str]:
    """The speed-run modes of ``backend``: ``speed.modes`` for MXNet, ``native`` otherwise."""
    return list(config["speed"]["modes"]) if backend == MXNET else [NATIVE_MODE]


def progress_settings(config: dict) -> dict:
    """What a spec carries of ``runner``: the progress interval and the cooldown."""
    runner = config["runner"]
    return {"progress_s": runner["progress_s"], "cooldown": runner["cooldown"]}


def weights_source(config: dict, model: str) -> str:
    return weight_sources.source_for(config["weights"], model)


def weights_path(config: dict, model: str) -> str:
    return f"weights/{weights_source(config, model)}/{model}.params"


def weights_files(config: dict, model: str) -> dict:
    """The weights files a run of ``model`` reads: ``params`` and its ``sidecar``, ``cfg`` for
    a darknet model, and ``symbol`` (``-symbol.json``) for the ``quantized`` source's INT8 net
    (a darknet ``_int8`` model too: it runs as an MXNet symbol, not from darknet files)."""
    params = weights_path(config, model)
    files = {"params": params, "sidecar": params.replace(".params", ".json")}
    if zoo.runs_darknet_files(model):
        files["cfg"] = params.replace(".params", ".cfg")
    if weights_source(config, model) == "quantized":
        files["symbol"] = params.replace(".params", "-symbol.json")
    return files


def onnx_files(config: dict, model: str) -> dict:
    """The ONNX export of ``model``'s weights (rule export_onnx): ``onnx`` (the
    ``.onnx`` file, empty when the export failed) and ``record`` (its export record)."""
    stem = f"weights/onnx/{weights_source(config, model)}/{model}"
    return {"onnx": f"{stem}.onnx", "record": f"{stem}.json"}


def runs_onnx(model: str, backend: str) -> bool:
    """Whether ``backend`` runs ``model`` from its ONNX export: ONNX Runtime always; OpenCV
    for all but darknet models, which it reads from their .cfg/.weights. A darknet ``_int8``
    model has no such files (it is an MXNet INT8 symbol), so OpenCV, like ONNX Runtime, gets
    its ONNX export, whose failure (no ONNX translation of MXNet's INT8 operators) its runs
    record."""
    return backend != MXNET and not (backend == OPENCV and zoo.runs_darknet_files(model))


def run_inputs(config: dict, model: str, backend: str) -> dict:
    """The model files a run of ``model`` on ``backend`` reads: the weights files (their
    sidecar says source and labels), and the ONNX export where the backend runs it."""
    files = weights_files(config, model)
    if runs_onnx(model, backend):
        files.update(onnx_files(config, model))
    return files


def weights_settings(config: dict, model: str) -> dict:
    """The slice of ``weights`` that fetching one model's weights reads (so that changing
    another model's entry does not rerun this one)."""
    weights = config["weights"]
    entry = {"seed": weights["seed"]}
    if model in weights.get("files", {}):
        entry["files"] = {model: weights["files"][model]}
    return entry


def quantize_inputs(config: dict, model: str) -> dict:
    """The FP32 weights files that the ``quantized`` source quantizes for ``model``
    (:func:`detbench.weights.quantize_input`): ``fp32_params``, ``fp32_sidecar``, and
    ``fp32_cfg`` for a darknet base (its weights and cfg under ``weights/darknet/``)."""
    source, fp32_model = weight_sources.quantize_input(config["weights"], model)
    stem = f"weights/{source}/{fp32_model}"
    files = {"fp32_params": f"{stem}.params", "fp32_sidecar": f"{stem}.json"}
    if source == "darknet":
        files["fp32_cfg"] = f"{stem}.cfg"
    return files


def quantize_settings(config: dict) -> dict:
    """What quantizing reads of ``weights.quantize``: ``images`` and ``calib_mode``. Its
    ``from`` picks the input files (:func:`quantize_inputs`), so changing it reruns only the
    models whose FP32 files it changes, never a darknet base's."""
    quantize = config["weights"]["quantize"]
    return {key: quantize[key] for key in ("calib_mode", "images")}


def device_names(config: dict) -> list[str]:
    """The names of ``devices`` in config order: ``cpu``, ``gpuN``, or an SSH device's ``name``."""
    return [d if isinstance(d, str) else d["name"] for d in config["devices"]]


def remote_devices(config: dict) -> dict[str, dict]:
    """The devices over SSH, by name."""
    return {d["name"]: d for d in config["devices"] if not isinstance(d, str)}


def device_entry(config: dict, name: str) -> dict:
    """What a run job needs of its device: ``{"name": "cpu"}`` for a local one; for a device
    over SSH its mapping plus ``context`` (``cpu`` | ``gpuN``, the MXNet device) and the
    ``ssh`` settings."""
    remote = remote_devices(config).get(name)
    if remote is None:
        return {"name": name}
    context = "cpu" if remote.get("gpu") is None else f"gpu{remote['gpu']}"
    return dict(sorted({**remote, "context": context, "ssh": config["ssh"]}.items()))


def device_pattern(config: dict) -> str:
    """The ``{device}`` wildcard's regular expression: local devices and the SSH names."""
    return "|".join([r"cpu|gpu\d+", *sorted(remote_devices(config))])


def device_resource(name: str) -> str:
    """The Snakemake resource a device over SSH holds while a job runs on it (limit 1)."""
    return f"ssh_device_{name}"


# Held by every run job while devices over SSH are configured: a local run takes all of it, so it
# never runs beside another benchmark (its SSH jobs stream, hash and copy on this host); a run
# over SSH takes one unit, so all the SSH devices can run at once.
HOST_RESOURCE = "benchmark_slots"


def global_resources(config: dict) -> dict[str, int]:
    """The workflow's resources for run jobs: one unit per SSH device, and ``benchmark_slots``,
    one per SSH device; none without devices over SSH."""
    remote = sorted(remote_devices(config))
    if not remote:
        return {}
    return {**{device_resource(name): 1 for name in remote}, HOST_RESOURCE: len(remote)}


def device_resources(config: dict) -> dict:
    """``resources:`` of a run rule: one unit of its SSH device's resource (0 of the others),
    and of ``benchmark_slots`` one unit for an SSH device, all of them for a local one."""
    remote = sorted(remote_devices(config))
    if not remote:
        return {}
    return {
        **{
            device_resource(name): (lambda wildcards, name=name: int(wildcards.device == name))
            for name in remote
        },
        HOST_RESOURCE: lambda wildcards: 1 if wildcards.device in remote else len(remote),
    }


def run_threads(config: dict, device: str, cores: int) -> int:
    """Threads of a run job: all cores for a local device (a timed run is alone on this
    machine); none for a device over SSH, whose work happens there."""
    return 0 if device in remote_devices(config) else cores


def picture_device(config: dict) -> str:
    """The device whose voc runs the detection pictures draw: ``detection_pictures.device``,
    else the first of ``devices``."""
    return config["detection_pictures"]["device"] or device_names(config)[0]


def picture_backend(config: dict, model: str) -> str:
    """The backend whose voc run a model's detection picture draws: the first of its backends."""
    return backends(config, model)[0]


def picture_run(config: dict, model: str) -> str:
    """The voc run directory a model's detection picture draws."""
    device, backend = picture_device(config), picture_backend(config, model)
    return f"{results_dir(config)}/voc/{model}/{backend}/{device}"


def picture_files(config: dict) -> list[str]:
    return sorted(f"reports/{config['name']}/detections/{model}.png" for model in config["models"])


def speed_dirs(config: dict) -> list[str]:
    return sorted(
        f"{results_dir(config)}/speed/{model}/{backend}/{device}-{mode}"
        for model in config["models"]
        for backend in backends(config, model)
        for device in device_names(config)
        for mode in modes(config, backend)
    )


def voc_dirs(config: dict) -> list[str]:
    return sorted(
        f"{results_dir(config)}/voc/{model}/{backend}/{device}"
        for model in config["models"]
        for backend in backends(config, model)
        for device in device_names(config)
    )


def run_dirs(config: dict) -> list[str]:
    return speed_dirs(config) + voc_dirs(config)


def backend_model_files(config: dict) -> dict[str, dict[str, str]]:
    """``"<model>|<backend>"`` -> the files that backend loads for the model (the backends
    table's sizes and export records)."""
    return {
        f"{model}|{backend}": run_inputs(config, model, backend)
        for model in config["models"]
        for backend in backends(config, model)
    }
