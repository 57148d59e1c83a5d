"""Model weights: where they come from, their hashes, and the JSON sidecar beside each file.

Sources (config ``weights``; ``per_model`` gives single models another source):

- ``gluoncv``: GluonCV's model store, laid out as gluoncv's ``model_store.get_model_file``
  expects: ``{repo}gluon/models/{name}-{sha1[:8]}.zip`` holding ``{name}-{sha1[:8]}.params``,
  with ``repo`` from ``MXNET_GLUON_REPO`` (a mirror) or GluonCV's default. The ``.params`` must
  have the sha1 of GluonCV's own table (copied into :mod:`detbench.zoo`); a file with another
  sha1 is removed and refused. An ``_int8`` model gets the FP32 weights of its base model (the
  store has no INT8 weights: GluonCV's INT8 symbol ships inside the gluoncv package).
- ``file``: a ``path`` or ``url`` per model (``weights.files``) with its sha256, checked.
- ``untrained``: seeded initialisation by the device runner (offline demo; mAP meaningless).
- ``darknet``: a darknet model's ``.cfg`` and ``.weights`` (the one source of the darknet family,
  named for it in ``weights.per_model`` or ``weights.source``): the files its registry entry
  names (the project's own copy, else the upstream URL), or ``weights.files.<model>``
  (``path``/``url`` + ``sha256`` of the weights, and ``cfg``: ``path``/``url`` + ``sha256``),
  sha256-checked; written to
  ``weights/darknet/<model>.params`` (the darknet weights bytes) and ``<model>.cfg``.
- ``quantized``: an INT8 symbol model made by ``python -m detbench.runner.quantize`` from FP32
  weights, calibrated on a few dataset images. The FP32 weights are those of the model (the base
  of an ``_int8`` model) from the ``weights.quantize.from`` source, except for a darknet base:
  darknet models, and only they, take source ``darknet``, so a darknet ``_int8`` model
  (``mobilenetv2_yolov3_nano_voc_int8``, whose one source is ``quantized``) quantizes its
  base's ``darknet`` ``.cfg`` + ``.weights`` whatever ``weights.quantize.from`` says.

Sidecar (``<model>.json`` next to ``<model>.params``): ``model``, ``source``, ``untrained``,
``sha256``, ``size_bytes``, ``format`` (``params`` | ``symbol``) and source details: ``sha1``,
``url`` and ``store_file`` (gluoncv); ``origin`` (file/url); ``seed`` (untrained); ``symbol``,
``symbol_sha256``, ``fp32`` (``source``, ``sha256``, ``path`` of the FP32 weights; a darknet
base adds its ``cfg`` and ``cfg_sha256``) and ``calibration`` (``mode``, ``image_ids``, ``size``,
``input_shape``) (quantized); ``cfg``, ``cfg_sha256`` and ``cfg_origin`` (darknet,
``format: darknet``), or ``error`` when quantizing failed
(the runs then record that error as their failure). Only the runner imports mxnet (DESIGN §3):
this module hashes, downloads and unzips.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

from detbench import zoo
from detbench.contract import DetbenchError
from detbench.files import write_json_atomic
from detbench.runner.nets import file_digest
from detbench.runs import REPO_ROOT, launch

GLUONCV_REPO = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"
_STORE_URL = "{repo}gluon/models/{file_name}.zip"  # gluoncv model_store._url_format
_RUNNER_KEYS = ("format", "symbol", "symbol_sha256", "cfg", "cfg_sha256", "error")
_MIRROR_HINT = (
    "set MXNET_GLUON_REPO to a mirror laid out like GluonCV's store "
    "(<repo>/gluon/models/<name>-<sha1[:8]>.zip), or use weights source `file` or `untrained`"
)


class WeightsError(DetbenchError, RuntimeError):
    """Weights could not be obtained or failed their hash check; the message says which file."""


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


def write_sidecar(params_path: str | Path, sidecar_path: str | Path, **facts) -> dict:
    """Hash ``params_path`` and write its sidecar atomically; returns the sidecar."""
    sidecar = {
        "format": "params",
        **facts,
        "sha256": sha256_file(params_path),
        "size_bytes": os.path.getsize(params_path),
    }
    write_json_atomic(sidecar_path, sidecar)
    return sidecar


def runner_entry(params_path: str, sidecar_path: str) -> dict:
    """The run spec's ``weights`` entry (what ``nets.build_from_weights`` reads): ``path``,
    ``source``, ``untrained``, ``sha256``, and where the sidecar has them ``format``, ``symbol``,
    ``symbol_sha256`` (symbol models) and ``error`` (weights that could not be made)."""
    sidecar = json.loads(Path(sidecar_path).read_text())
    entry = {
        "path": params_path,
        "source": sidecar["source"],
        "untrained": bool(sidecar["untrained"]),
        "sha256": sidecar["sha256"],
    }
    entry.update((key, sidecar[key]) for key in _RUNNER_KEYS if key in sidecar)
    return entry


_ONNX_KEYS = ("opset", "nms", "input", "outputs", "size_bytes", "error")


def onnx_entry(onnx_path: str, record_path: str) -> dict:
    """The run spec's ``model_file`` entry (what the ``onnxruntime`` engine reads), from an
    export record (:mod:`detbench.runner.onnx_export`): ``format: onnx``, ``path``, ``sha256``
    (checked again at load), ``source`` and ``untrained`` of the MXNet weights it came from, and
    ``opset``, ``nms``, ``input``, ``outputs``, ``size_bytes`` and ``error`` (a failed export:
    the run is then recorded failed with it) where the record has them."""
    record = json.loads(Path(record_path).read_text())
    if record.get("status") != "ok" and not record.get("error"):
        raise WeightsError(
            f"{record_path}: status {record.get('status')!r} without an error; not an export "
            "record of detbench.runner.onnx_export (run the export_onnx rule again)"
        )
    entry = {
        "format": "onnx",
        "path": onnx_path,
        "sha256": record["sha256"],
        "source": record["weights"]["source"],
        "untrained": bool(record["weights"]["untrained"]),
    }
    entry.update((key, record[key]) for key in _ONNX_KEYS if record.get(key) is not None)
    return entry


def export_onnx(
    model: str,
    params_path: str,
    sidecar_path: str,
    onnx_path: str | Path,
    record_path: str | Path,
    python: str | None = None,
    log_path: str | Path | None = None,
) -> dict:
    """Export ``model``'s weights (``params_path`` + sidecar, as a run reads them) to ONNX with
    the device runner (``export-onnx``); returns the record. A failed export is a record with
    ``status: failed`` beside an empty ``.onnx`` (DESIGN §5); a runner that dies without
    writing the record raises."""
    record_path = Path(record_path)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.unlink(missing_ok=True)
    entry_path = record_path.with_name(f"{record_path.name}.weights.tmp")
    write_json_atomic(entry_path, runner_entry(params_path, sidecar_path))
    try:
        args = ["detbench.runner", "export-onnx", "--model", model, "--weights", str(entry_path),
                "--out", str(onnx_path), "--record", str(record_path)]  # fmt: skip
        code = launch(args, python, log_path)
    finally:
        entry_path.unlink(missing_ok=True)
    if code != 0 or not record_path.exists():
        raise WeightsError(f"exporting {model} to ONNX failed (exit {code}); see {log_path}")
    return json.loads(record_path.read_text())


def source_for(weights: dict, model: str) -> str:
    """The weights source of ``model``: ``weights.per_model`` if it names the model, else
    ``weights.source``."""
    return weights.get("per_model", {}).get(model, weights["source"])


def quantize_input(weights: dict, model: str) -> tuple[str, str]:
    """(source, model) of the FP32 weights that the ``quantized`` source quantizes for ``model``:
    the FP32 model (the base of an ``_int8`` model) and its source, ``darknet`` for a darknet
    model (its one source), else ``weights.quantize.from``."""
    fp32 = zoo.fp32_name(model)
    if zoo.runs_darknet_files(fp32):
        return "darknet", fp32
    return weights.get("quantize", {}).get("from", "gluoncv"), fp32


def darknet_source(model: str) -> str | None:
    """The one source a darknet model takes: ``darknet``, or ``quantized`` for its ``_int8``;
    ``None`` for the other models, which take any source but ``darknet``."""
    if not zoo.is_darknet(model):
        return None
    return "darknet" if zoo.runs_darknet_files(model) else "quantized"


def config_errors(weights: dict, models: list[str]) -> list[str]:
    """What in ``weights`` cannot work for ``models`` (the schema checks the shapes)."""
    errors = [
        f"weights.per_model: {name} is not listed under models"
        for name in sorted(set(weights.get("per_model", {})) - set(models))
    ]
    for model in models:
        source, required = source_for(weights, model), darknet_source(model)
        if source != required and (required or source == "darknet"):
            fix = f"set weights.per_model.{model}: {required}" if required else "another source"
            errors.append(
                f"{model}: weights source {source!r}; darknet models, and only they, take "
                f"source darknet, and their _int8 models source quantized ({fix})"
            )
            continue
        if source == "quantized":
            source, model = quantize_input(weights, model)
        entry = weights.get("files", {}).get(model)
        if source == "darknet" and entry is not None and "cfg" not in entry:
            errors.append(
                f"weights.files.{model}: a darknet model needs `cfg` (path or url, and "
                "sha256) beside its weights"
            )
        if source == "gluoncv" and not zoo.model_info(model)["sha1"]:
            errors.append(f"{model}: GluonCV's model store has no weights for it; {_MIRROR_HINT}")
        if source == "file" and model not in weights.get("files", {}):
            errors.append(f"weights.files: no path or url (with sha256) for {model}")
    return errors


def fetch_pretrained(
    model: str,
    weights: dict,
    params_path: str | Path,
    sidecar_path: str | Path,
    *,
    source: str | None = None,
    sha1: str | None = None,
    progress: bool = True,
) -> dict:
    """Weights of ``model`` from ``source`` (``gluoncv`` or ``file``; default: the model's
    source in ``weights``), verified, written to ``params_path`` with their sidecar; returns the
    sidecar. ``source`` is given where a model's FP32 weights feed the ``quantized`` source;
    ``sha1`` replaces the registry's (tests serve files of their own)."""
    source = source or source_for(weights, model)
    if source == "gluoncv":
        return fetch_gluoncv(model, params_path, sidecar_path, sha1=sha1, progress=progress)
    if source == "file":
        entry = weights.get("files", {}).get(model)
        if entry is None:
            raise WeightsError(f"weights.files: no path or url (with sha256) for {model}")
        return fetch_file(model, entry, params_path, sidecar_path, progress=progress)
    raise WeightsError(f"{model}: weights source {source!r} is not fetched (gluoncv | file)")


def store_url(name: str, sha1: str, repo: str | None = None) -> str:
    """URL of ``name``'s zip in GluonCV's store (or the ``MXNET_GLUON_REPO`` mirror)."""
    repo = repo or os.environ.get("MXNET_GLUON_REPO") or GLUONCV_REPO
    repo = repo if repo.endswith("/") else repo + "/"
    return _STORE_URL.format(repo=repo, file_name=f"{name}-{sha1[:8]}")


def fetch_gluoncv(
    model: str,
    params_path: str | Path,
    sidecar_path: str | Path,
    *,
    sha1: str | None = None,
    repo: str | None = None,
    progress: bool = True,
) -> dict:
    """GluonCV's store weights of ``model``, sha1-checked (see the module docstring)."""
    info = zoo.model_info(model)
    store_name = zoo.fp32_name(model)
    expected = (sha1 or info["sha1"] or "").lower()
    if not expected:
        raise WeightsError(f"{model}: GluonCV's model store has no weights for it; {_MIRROR_HINT}")
    params_path = Path(params_path)
    file_name = f"{store_name}-{expected[:8]}"
    url = store_url(store_name, expected, repo)
    facts = {
        "model": model,
        "source": "gluoncv",
        "untrained": False,
        "sha1": expected,
        "store_file": f"{file_name}.params",
        "url": url,
    }
    if info["int8"]:
        facts.update(base_model=info["base"], int8_symbol=f"gluoncv: {model}-symbol.json")
    # Already here and verified: this file, or (an _int8 model) its base model's.
    for cached in dict.fromkeys([params_path, params_path.with_name(f"{store_name}.params")]):
        if cached.exists() and file_digest(cached, "sha1") == expected:
            if cached != params_path:
                _copy_atomic(cached, params_path)
            return write_sidecar(params_path, sidecar_path, **facts)
    params_path.unlink(missing_ok=True)
    params_path.parent.mkdir(parents=True, exist_ok=True)
    zip_path = params_path.with_name(f"{file_name}.zip")
    _download(url, zip_path, progress)
    tmp = Path(f"{params_path}.tmp")
    try:
        actual = _unzip_member(zip_path, f"{file_name}.params", tmp, url)
    finally:
        zip_path.unlink(missing_ok=True)
    if actual != expected:
        tmp.unlink(missing_ok=True)
        raise WeightsError(
            f"{url}: {file_name}.params has sha1 {actual}, expected {expected} (GluonCV's "
            f"model store table); the file was removed and not used"
        )
    os.replace(tmp, params_path)
    return write_sidecar(params_path, sidecar_path, **facts)


def fetch_file(
    model: str,
    entry: dict,
    params_path: str | Path,
    sidecar_path: str | Path,
    *,
    progress: bool = True,
) -> dict:
    """User weights from ``entry`` (``path`` or ``url``, and ``sha256``), copied or downloaded
    to ``params_path`` only if their sha256 matches."""
    origin = _obtain(entry, params_path, f"weights.files.{model}", progress)
    source = "url" if "url" in entry else "file"
    facts = {"model": model, "source": source, "untrained": False, "origin": origin}
    return write_sidecar(params_path, sidecar_path, **facts)


def fetch_darknet(
    model: str,
    weights: dict,
    params_path: str | Path,
    cfg_path: str | Path,
    sidecar_path: str | Path,
    *,
    progress: bool = True,
) -> dict:
    """A darknet model's ``.weights`` (to ``params_path``) and ``.cfg`` (to ``cfg_path``), each
    sha256-checked, from ``weights.files.<model>`` or else its registry entry."""
    override = weights.get("files", {}).get(model)
    if override is not None:
        weights_entry, cfg_entry = override, override["cfg"]
        key = f"weights.files.{model}"
    else:
        files = zoo.model_info(model)["darknet"]
        weights_entry, cfg_entry = _local_or_url(files["weights"]), _local_or_url(files["cfg"])
        key = f"detbench.zoo {model}"
    cfg_origin = _obtain(cfg_entry, cfg_path, f"{key} cfg", progress)
    origin = _obtain(weights_entry, params_path, key, progress)
    facts = {
        "model": model,
        "source": "darknet",
        "untrained": False,
        "format": "darknet",
        "origin": origin,
        "cfg": str(cfg_path),
        "cfg_sha256": sha256_file(cfg_path),
        "cfg_origin": cfg_origin,
    }
    return write_sidecar(params_path, sidecar_path, **facts)


def _local_or_url(entry: dict) -> dict:
    """A registry file entry as ``weights.files`` holds one: the project's own copy (a path
    relative to the repository) when present, else its URL."""
    local = REPO_ROOT / entry["path"]
    where = {"path": str(local)} if local.is_file() else {"url": entry["url"]}
    return {**where, "sha256": entry["sha256"]}


def _obtain(entry: dict, dest: str | Path, key: str, progress: bool) -> str:
    """Copy ``entry['path']`` or download ``entry['url']`` to ``dest`` if its sha256 is
    ``entry['sha256']``; ``key`` names the config entry in errors. Returns the origin."""
    expected = entry["sha256"].lower()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{dest}.tmp")
    if "url" in entry:
        origin = entry["url"]
        _download(origin, tmp, progress)
    else:
        origin = entry["path"]
        if not Path(origin).is_file():
            raise WeightsError(f"{key}.path: {origin} is not a file")
        shutil.copyfile(origin, tmp)
    actual = sha256_file(tmp)
    if actual != expected:
        tmp.unlink()
        raise WeightsError(
            f"{origin}: sha256 {actual}, expected {expected} ({key}.sha256); "
            "the file was refused and the copy removed"
        )
    os.replace(tmp, dest)
    return origin


def _download(url: str, dest: Path, progress: bool) -> None:
    """``url`` to ``dest`` with detbench.data.download's resumable, retrying streamer."""
    from detbench.data import download

    part = dest.with_name(dest.name + ".part")
    try:
        download._fetch(url, part, 3, 60.0, 2.0, progress)
    except download._Unreachable as exc:
        raise WeightsError(f"{url}: unreachable ({exc}); {_MIRROR_HINT}") from None
    except download._Failed as exc:
        raise WeightsError(f"{url}: {exc}") from None
    os.replace(part, dest)


def _unzip_member(zip_path: Path, member: str, dest: Path, url: str) -> str:
    """Extract ``member`` of ``zip_path`` to ``dest``; returns its sha1."""
    digest = hashlib.sha1()
    try:
        with zipfile.ZipFile(zip_path) as archive, open(dest, "wb") as out:
            if member not in archive.namelist():
                raise WeightsError(
                    f"{url}: no {member} in the zip (it holds {', '.join(archive.namelist())})"
                )
            with archive.open(member) as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    except zipfile.BadZipFile as exc:
        dest.unlink(missing_ok=True)
        raise WeightsError(f"{url}: not a zip file ({exc})") from None
    except WeightsError:
        dest.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _copy_atomic(source: Path, dest: Path) -> None:
    tmp = Path(f"{dest}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def make_untrained(
    model: str,
    seed: int,
    params_path: str | Path,
    sidecar_path: str | Path,
    python: str | None = None,
    log_path: str | Path | None = None,
) -> dict:
    """Seeded, untrained weights made by the device runner (the only code importing mxnet).

    Untrained weights are for the offline demo: their detections and mAP mean nothing, and the
    sidecar's ``untrained: true`` carries that fact into every result, metric and figure."""
    args = ["detbench.runner", "init-weights", "--model", model, "--seed", str(seed),
            "--out", str(params_path)]  # fmt: skip
    code = launch(args, python, log_path)
    if code != 0:
        raise WeightsError(
            f"making untrained weights for {model} failed (exit {code}); see {log_path}"
        )
    return write_sidecar(
        params_path, sidecar_path, model=model, source="untrained", untrained=True, seed=seed
    )


def _check_recorded(path: str | Path, expected: str | None, sidecar: str | Path) -> None:
    """Refuse ``path`` unless its sha256 is the one ``sidecar`` recorded when it was fetched."""
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(
            f"{path}: sha256 {actual}, expected {expected} (recorded in {sidecar}); refusing "
            "to quantize weights that changed after they were verified"
        )


def make_quantized(
    model: str,
    quantize: dict,
    fp32_params: str | Path,
    fp32_sidecar: str | Path,
    devkit: str | Path,
    images_txt: str | Path,
    size: int,
    params_path: str | Path,
    sidecar_path: str | Path,
    python: str | None = None,
    log_path: str | Path | None = None,
    fp32_cfg: str | Path | None = None,
) -> dict:
    """INT8 weights of ``model`` made by the device runner's interpreter from ``fp32_params``
    (a darknet base: its ``.weights``, with ``fp32_cfg``), calibrated on the first
    ``quantize['images']`` ids of ``images_txt`` at the model's speed-run input for ``size``
    (``nets.speed_shape``: ``size`` squared, or the shape the registry fixes, 320 x 320 for the
    darknet Nano).

    Writes ``params_path``, its ``-symbol.json`` and the sidecar (``format: symbol``). Where this
    MXNet cannot quantize (no MKL-DNN), the sidecar records the runner's exact ``error`` beside
    empty ``.params`` and ``-symbol.json`` files, and every run of the model is recorded failed
    with it (DESIGN §5)."""
    from detbench.contract import EXIT_QUANTIZE_FAILED
    from detbench.runner.nets import speed_shape
    from detbench.runner.quantize import symbol_path_for

    fp32 = json.loads(Path(fp32_sidecar).read_text())
    ids = Path(images_txt).read_text().split()[: quantize["images"]]
    error_path = Path(f"{params_path}.error")
    error_path.unlink(missing_ok=True)
    args = ["detbench.runner.quantize", "--model", model, "--params", str(fp32_params),
            "--devkit", str(devkit), "--images", str(images_txt),
            "--count", str(quantize["images"]), "--size", str(size),
            "--calib-mode", quantize["calib_mode"], "--out", str(params_path),
            "--error-out", str(error_path)]  # fmt: skip
    fp32_facts = {"source": fp32["source"], "sha256": fp32["sha256"], "path": str(fp32_params)}
    _check_recorded(fp32_params, fp32["sha256"], fp32_sidecar)
    if fp32_cfg is not None:
        _check_recorded(fp32_cfg, fp32.get("cfg_sha256"), fp32_sidecar)
        args += ["--cfg", str(fp32_cfg)]
        fp32_facts.update(cfg=str(fp32_cfg), cfg_sha256=fp32["cfg_sha256"])
    code = launch(args, python, log_path)
    facts = {
        "model": model,
        "source": "quantized",
        "untrained": bool(fp32["untrained"]),
        "format": "symbol",
        "fp32": fp32_facts,
        "calibration": {
            "mode": quantize["calib_mode"],
            "image_ids": ids,
            "size": size,
            "input_shape": list(speed_shape(zoo.fp32_name(model), size)),
        },
    }
    facts["symbol"] = symbol = symbol_path_for(str(params_path))
    if code == 0:
        facts["symbol_sha256"] = sha256_file(symbol)
        return write_sidecar(params_path, sidecar_path, **facts)
    if code == EXIT_QUANTIZE_FAILED and error_path.exists():
        facts["error"] = "quantizing failed: " + error_path.read_text().strip()
        error_path.unlink()
        for placeholder in (params_path, symbol):
            Path(placeholder).write_bytes(b"")
        return write_sidecar(params_path, sidecar_path, **facts)
    raise WeightsError(f"quantizing {model} failed (exit {code}); see {log_path}")
