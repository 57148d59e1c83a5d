"""One function per workflow rule; ``scripts/<rule>.py`` only unpacks Snakemake's object.

Each step writes its outputs completely or not at all and logs to the rule's log file.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from detbench import runs
from detbench.files import write_json_atomic, write_text_atomic
from detbench.weights import runner_entry


@contextlib.contextmanager
def logging_to(log_path: str | Path | None):
    """Send this step's stdout/stderr to its log file (and keep the traceback there)."""
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log_path, "w") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        try:
            yield
        except BaseException:
            import traceback

            traceback.print_exc()
            raise


def make_demo_voc(devkit: str, synthetic: dict, split: str, log: str) -> None:
    from detbench.data.synthetic import make_synthetic_voc

    with logging_to(log):
        make_synthetic_voc(Path(devkit), synthetic["images"], synthetic["seed"], split)


def make_photo_voc(devkit: str, split: str, log: str) -> None:
    from detbench.data.photos import make_photo_voc as build

    with logging_to(log):
        build(Path(devkit), split)


def fetch_voc(urls: list[str], md5: str, archive: str, log: str) -> None:
    from detbench.data.download import fetch_voc as download

    with logging_to(log):
        download(urls, md5, Path(archive), progress=True)


def extract_voc(archive: str, devkit: str, md5: str, log: str) -> None:
    from detbench.data.extract import extract_voc_tar

    with logging_to(log):
        extract_voc_tar(Path(archive), Path(devkit), md5)


def check_voc(devkit: str, split: str, synthetic: bool, dataset_json: str, log: str) -> None:
    from detbench.data.check import check_dataset

    with logging_to(log):
        dataset = {**check_dataset(devkit, split), "synthetic": bool(synthetic)}
        write_json_atomic(dataset_json, dataset)


def sample_speed_images(dataset_json: str, images: int, seed: int, out: str, log: str) -> None:
    from detbench.data.sample import sample_speed_images as sample
    from detbench.data.voc import read_split

    with logging_to(log):
        dataset = runs.read_json(dataset_json)
        ids = sample(read_split(dataset["devkit"], dataset["split"]), images, seed)
        write_text_atomic(out, "".join(f"{i}\n" for i in ids))


def fetch_weights(
    model: str,
    source: str,
    weights: dict,
    python: str | None,
    params: str,
    sidecar: str,
    log: str,
) -> None:
    """``source`` is the output's (``weights/<source>/``): a model's own source, or the FP32
    source of a quantized model (``weights.quantize.from``)."""
    from detbench import weights as weight_sources

    with logging_to(log):
        if source == "untrained":
            weight_sources.make_untrained(model, weights["seed"], params, sidecar, python, log)
        else:
            weight_sources.fetch_pretrained(model, weights, params, sidecar, source=source)


def fetch_darknet(model: str, weights: dict, params: str, cfg: str, sidecar: str, log: str):
    from detbench import weights as weight_sources

    with logging_to(log):
        weight_sources.fetch_darknet(model, weights, params, cfg, sidecar)


def quantize_weights(
    model: str,
    quantize: dict,
    size: int,
    python: str | None,
    fp32_params: str,
    fp32_sidecar: str,
    dataset_json: str,
    images_txt: str,
    params: str,
    sidecar: str,
    log: str,
    fp32_cfg: str | None = None,
) -> None:
    """INT8 weights of ``model`` from the FP32 weights (``fp32_cfg``: a darknet base's .cfg)."""
    from detbench import weights as weight_sources

    with logging_to(log):
        devkit = runs.read_json(dataset_json)["devkit"]
        weight_sources.make_quantized(
            model, quantize, fp32_params, fp32_sidecar, devkit, images_txt, size,
            params, sidecar, python, log, fp32_cfg=fp32_cfg,
        )  # fmt: skip


def run_spec(
    *,
    kind: str,
    model: str,
    device: str,
    mode: str,
    settings: dict,
    config_name: str,
    dataset_json: str,
    images_txt: str | None,
    weights_params: str,
    weights_sidecar: str,
    telemetry_interval_s: float,
    threads: int | None,
    progress: dict,
    out: str,
    log: str,
    backend: str = "mxnet",
    onnx: str | None = None,
    onnx_record: str | None = None,
) -> None:
    """Write the ``spec.json`` of one speed or voc run: everything the runner needs, from the
    declared inputs (the dataset, the speed sample, the weights sidecar, the ONNX export and
    its record where the backend runs it) and ``settings``; ``progress`` is
    ``runner.progress_s`` and ``runner.cooldown``."""
    from detbench.data.voc import read_split

    with logging_to(log):
        dataset = runs.read_json(dataset_json)
        if images_txt is not None:
            ids = Path(images_txt).read_text().split()
        else:
            ids = read_split(dataset["devkit"], dataset["split"])
        spec = runs.build_spec(
            kind=kind, config_name=config_name, model=model, device=device, mode=mode,
            settings=settings, image_ids=ids, dataset_json=dataset_json,
            weights=runner_entry(weights_params, weights_sidecar),
            telemetry_interval_s=telemetry_interval_s, threads=threads, backend=backend,
            model_file=_onnx_entry(onnx, onnx_record) if onnx else None,
        )  # fmt: skip
        spec["progress_interval_s"] = progress["progress_s"]
        cooldown = progress.get("cooldown") or {}
        if cooldown.get("below_c") is not None or cooldown.get("max_wait_s"):
            spec["cooldown"] = cooldown
        runs.write_spec(spec, out)


def _onnx_entry(onnx: str, record: str) -> dict:
    from detbench.weights import onnx_entry

    return onnx_entry(onnx, record)


def run(spec: str, python: str | None, log: str, device_entry: dict | None = None) -> None:
    """A speed or voc run of ``spec`` through the device runner; its failures are recorded
    results. ``device_entry``: :func:`detbench.plan.device_entry` (a device over SSH runs
    there). The job ends with Snakemake: if Snakemake dies, this process is terminated and
    stops the runner (:func:`detbench.runs.die_with_parent`)."""
    runs.die_with_parent()
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    Path(log).write_text("")
    runs.execute(spec, python, log, device=device_entry)


def evaluate(result: str, detections: str, dataset_json: str, metric: str, out: str, log: str):
    from detbench import zoo
    from detbench.evaluate import evaluate_files, published_reference, write_map_json

    with logging_to(log):
        run = runs.read_json(result)
        dataset = runs.read_json(dataset_json)
        untrained = bool(run["weights"]["untrained"])
        info = zoo.model_info(run["model"])
        published, check = published_reference(info, metric, run["image_count"], untrained)
        if run["status"] != "ok":
            body = {
                "status": "failed",
                "error": run["error"],
                "metric": metric,
                "mAP": None,
                "weights_untrained": untrained,
            }
        else:
            body = evaluate_files(
                dataset["devkit"],
                detections,
                split=dataset["split"],
                metric=metric,
                published_map=published,
                untrained=untrained,
            )
            body["status"] = "ok"
        body.update(
            published_mAP=info["published_map"],
            published_metric=info["published_metric"],
            accuracy_check=check,
        )
        write_map_json(body, Path(out))


def mlflow_experiment(config_name: str, out: str, log: str) -> None:
    from detbench import track

    with logging_to(log):
        track.ensure_experiment(config_name, out)


def track(files: dict[str, str], experiment: str, out: str, log: str, pictures=()) -> None:
    """Log one run to MLflow from the files its rule declares (roles of track.RUN_FILES)."""
    from detbench import track as tracking

    with logging_to(log):
        record = tracking.log_run(files, experiment, out, pictures)
        print(json.dumps(record), file=sys.stdout)


def aggregate(results: list[str], maps: list[str], out: str, log: str) -> None:
    """``summary.csv`` from each run's ``result.json`` and each voc run's ``map.json``."""
    from detbench.report.aggregate import write_summary

    with logging_to(log):
        write_summary([Path(p) for p in results], out, maps=[Path(p) for p in maps])


def plots(summary: str, figures: list[str], log: str) -> None:
    """Draw each of ``figures`` (``<dir>/<key>.png``, ``key`` in FIGURES) from the summary."""
    from detbench.report.aggregate import read_summary
    from detbench.report.figures import draw

    with logging_to(log):
        table = read_summary(summary)
        for figure in figures:
            draw(Path(figure).stem, table, figure)


def detection_pictures(
    result: str, detections: str, dataset_json: str, pictures: dict, out: str, log: str
) -> None:
    from detbench.report.pictures import draw_pictures

    with logging_to(log):
        dataset = runs.read_json(dataset_json)
        draw_pictures(
            dataset["devkit"], dataset["split"], result, detections,
            pictures["images"], pictures["min_score"], out,
        )  # fmt: skip


def backends_table(summary: str, model_files: dict, out_csv: str, out_png: str, log: str) -> None:
    """``backends.csv`` and its figure from the summary and each model's files per backend."""
    from detbench.report.backends import draw_backends, write_backends

    with logging_to(log):
        draw_backends(write_backends(summary, model_files, out_csv), out_png)


def modes_table(summary: str, out_csv: str, log: str) -> None:
    """``modes.csv``: imperative vs hybrid per model and device, against the passes' spread."""
    from detbench.report.modes import write_modes

    with logging_to(log):
        table = write_modes(summary, out_csv)
        for row in table.to_dict("records"):
            print(f"{row['model']} {row['device']}: {row['verdict']}")


def export_onnx(
    model: str, python: str | None, params: str, sidecar: str, onnx: str, record: str, log: str
) -> None:
    """The ONNX export of ``model``'s weights and its record (a failed export is a record)."""
    from detbench import weights as weight_sources

    with logging_to(log):
        done = weight_sources.export_onnx(model, params, sidecar, onnx, record, python, log)
        print(f"export_onnx {model}: {done['status']} {done['error'] or ''}".rstrip())
