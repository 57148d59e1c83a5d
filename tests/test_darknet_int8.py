"""The trained darknet Nano in INT8, ``mobilenetv2_yolov3_nano_voc_int8``: its registry entry, the
config rules that give it its one source (``quantized``, of its base's ``darknet`` .cfg/.weights
whatever ``weights.quantize.from`` says), the quantizing of the real files, and the workflow
running it on the demo photos: speed runs in both Gluon modes, a voc run scored with the base's
published metric (area), the ONNX export failing as a record, and ONNX Runtime and OpenCV runs
recorded failed with that export's error."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, copy_workflow, snakemake, summary_rows
from snakemake.utils import validate

from detbench import plan, weights, zoo
from detbench.data.photos import make_photo_voc

MODEL = "mobilenetv2_yolov3_nano_voc_int8"
BASE = "mobilenetv2_yolov3_nano_voc"
SSD_INT8 = "ssd_512_mobilenet1.0_voc_int8"
BASE_FILES = zoo.MODELS[BASE]["darknet"]
DARKNET_INPUTS = {
    "fp32_params": f"weights/darknet/{BASE}.params",
    "fp32_sidecar": f"weights/darknet/{BASE}.json",
    "fp32_cfg": f"weights/darknet/{BASE}.cfg",
}
QUANTIZED = f"weights/quantized/{MODEL}"
ONNX_ERROR = "No conversion function registered for op type _contrib_quantize_v2"


def config(name: str = "nano8", quantize_from: str = "untrained") -> dict:
    """One model, three backends, the demo photos; 4 speed photos, also the calibration set."""
    return {
        "name": name,
        "voc": {"photos": True},
        "models": [MODEL],
        "weights": {
            "source": "untrained",
            "per_model": {MODEL: "quantized"},
            "quantize": {"from": quantize_from, "images": 4},
        },
        "backends": ["mxnet", "onnxruntime", "opencv"],
        "devices": ["cpu"],
        "speed": {"images": 4, "modes": ["imperative", "hybrid"], "warmup": 1, "repeats": 1},
        "voc_run": {"batch": 8, "warmup": 1, "metric": "area"},
        "telemetry": {"interval_s": 0.1},
    }


def validated(config: dict) -> dict:
    """``config`` with the schema's defaults filled in, as the workflow sees it."""
    validate(config, str(REPO / "config/schema.yaml"))
    return config


def weights_config(**sources) -> dict:
    return {"source": "untrained", "seed": 0, "per_model": sources, "files": {}}


# --- the registry and the config rules ----------------------------------------------------------


def test_registry_entry_is_the_int8_of_the_trained_nano_without_a_published_figure():
    info, base = zoo.model_info(MODEL), zoo.model_info(BASE)
    assert info["int8"] is True and info["base"] == BASE and zoo.fp32_name(MODEL) == BASE
    assert info["requires"] == zoo.model_info(SSD_INT8)["requires"]  # MKL-DNN, CPU only
    assert info["published_map"] is None and info["published_metric"] == "area"
    assert {k: info[k] for k in ("family", "eval", "speed_shape")} == {
        k: base[k] for k in ("family", "eval", "speed_shape")
    }
    assert zoo.is_darknet(MODEL) and not zoo.runs_darknet_files(MODEL)
    assert info["darknet"] is None and info["sha1"] is None and info["store_name"] is None


@pytest.mark.parametrize("source", ["darknet", "gluoncv", "untrained", "file"])
def test_the_int8_nano_takes_only_the_quantized_source(source):
    assert weights.config_errors(weights_config(**{MODEL: "quantized"}), [MODEL]) == []
    problems = weights.config_errors(weights_config(**{MODEL: source}), [MODEL])
    assert len(problems) == 1, problems
    assert f"{MODEL}: weights source {source!r}" in problems[0]
    assert f"set weights.per_model.{MODEL}: quantized" in problems[0]


def test_its_base_still_takes_only_the_darknet_source():
    problems = weights.config_errors(weights_config(**{BASE: "quantized"}), [BASE])
    assert f"set weights.per_model.{BASE}: darknet" in problems[0]


@pytest.mark.parametrize("quantize_from", ["gluoncv", "untrained", "file"])
def test_quantizing_reads_the_darknet_files_whatever_quantize_from_says(quantize_from):
    cfg = validated(config(quantize_from=quantize_from))
    assert weights.quantize_input(cfg["weights"], MODEL) == ("darknet", BASE)
    assert plan.quantize_inputs(cfg, MODEL) == DARKNET_INPUTS
    plan.check_config(cfg)  # `from: gluoncv` or `file` would need store or file weights
    ssd = {**cfg, "models": [SSD_INT8], "weights": {**cfg["weights"], "per_model": {}}}
    ssd["weights"]["per_model"] = {SSD_INT8: "quantized"}
    stem = f"weights/{quantize_from}/ssd_512_mobilenet1.0_voc"
    assert plan.quantize_inputs(ssd, SSD_INT8) == {
        "fp32_params": f"{stem}.params", "fp32_sidecar": f"{stem}.json"
    }  # fmt: skip


def test_weights_files_may_replace_the_bases_darknet_files():
    cfg = validated(config())
    override = {"path": "my.weights", "sha256": "0" * 64, "cfg": {"path": "my.cfg", "sha256": "1"}}
    cfg["weights"]["files"] = {BASE: override}
    plan.check_config(cfg)
    assert plan.weights_settings(cfg, BASE)["files"] == {BASE: override}


def test_runs_read_the_int8_symbol_and_opencv_gets_the_onnx_export():
    cfg = config()
    files = {"params": f"{QUANTIZED}.params", "sidecar": f"{QUANTIZED}.json",
             "symbol": f"{QUANTIZED}-symbol.json"}  # fmt: skip
    onnx = {"onnx": f"weights/onnx/quantized/{MODEL}.onnx",
            "record": f"weights/onnx/quantized/{MODEL}.json"}  # fmt: skip
    assert plan.run_inputs(cfg, MODEL, "mxnet") == files
    assert plan.run_inputs(cfg, MODEL, "onnxruntime") == {**files, **onnx}
    assert plan.run_inputs(cfg, MODEL, "opencv") == {**files, **onnx}
    assert not plan.runs_onnx(BASE, "opencv")  # the FP32 Nano: OpenCV reads its .cfg/.weights


def planned_inputs(dry_run: str, message: str) -> set[str]:
    """The inputs of the job whose dry-run entry starts with ``message`` (the rule's message),
    from its reason line (every input is another job's output in a fresh directory)."""
    found = re.search(
        r"Job \d+: " + re.escape(message) + r".*\nReason: .*Input files updated by another "
        r"job: ([^\n;]+)",
        dry_run,
    )
    assert found, f"no job {message!r} planned"
    return set(found.group(1).split(", "))


def test_dry_run_plans_the_quantize_job_from_the_darknet_files(tmp_path):
    workdir = copy_workflow(tmp_path / "dry", config())
    done = snakemake(workdir, "all", "-n", "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.MULTILINE))
    assert {rule: counts.get(rule) for rule in ("fetch_darknet", "quantize_weights",
            "export_onnx", "speed", "voc", "evaluate")} == {
        "fetch_darknet": "1", "quantize_weights": "1", "export_onnx": "1",
        "speed": "4", "voc": "3", "evaluate": "3",
    }  # fmt: skip
    assert "fetch_weights" not in counts  # no untrained weights: `from` plays no part
    assert planned_inputs(out, f"INT8-quantizing {MODEL}") == {
        *DARKNET_INPUTS.values(),
        "data/nano8/dataset.json",
        "data/nano8/speed_images.txt",
    }
    assert planned_inputs(out, f"Speed run: {MODEL} (mxnet) on cpu, imperative") >= {
        f"{QUANTIZED}.params",
        f"{QUANTIZED}.json",
        f"{QUANTIZED}-symbol.json",
    }
    assert planned_inputs(out, f"VOC test-set run: {MODEL} (opencv) on cpu") >= {
        f"weights/onnx/quantized/{MODEL}.onnx",
        f"weights/onnx/quantized/{MODEL}.json",
    }
    for mode in ("imperative", "hybrid"):
        assert f"speed/{MODEL}/mxnet/cpu-{mode}/result.json" in out
    assert f"speed/{MODEL}/onnxruntime/cpu-native/result.json" in out


# --- quantizing the real files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """The demo's photo devkit, and the base's files as the darknet source fetches them."""
    out = tmp_path_factory.mktemp("inputs")
    make_photo_voc(out / "VOCdevkit")
    files = {"params": out / f"{BASE}.params", "cfg": out / f"{BASE}.cfg",
             "sidecar": out / f"{BASE}.json"}  # fmt: skip
    weights.fetch_darknet(BASE, {}, files["params"], files["cfg"], files["sidecar"])
    return {"devkit": out / "VOCdevkit", **files}


def quantize(tmp_path: Path, inputs: dict) -> dict:
    """``make_quantized`` on the first three of a speed sample of four photos."""
    sample = tmp_path / "speed_images.txt"
    sample.write_text("000008\n000010\n000005\n000001\n")
    params, sidecar = tmp_path / f"{MODEL}.params", tmp_path / f"{MODEL}.json"
    return weights.make_quantized(
        MODEL, {"images": 3, "calib_mode": "naive"}, inputs["params"], inputs["sidecar"],
        inputs["devkit"], sample, 512, params, sidecar,
        python=sys.executable, log_path=tmp_path / "quantize.log", fp32_cfg=inputs["cfg"],
    )  # fmt: skip


def test_the_real_nano_quantizes_and_its_sidecar_says_from_what(tmp_path, inputs):
    import mxnet as mx

    from detbench.runner import nets

    facts = quantize(tmp_path, inputs)
    assert facts == json.loads((tmp_path / f"{MODEL}.json").read_text())
    assert facts["source"] == "quantized" and facts["format"] == "symbol"
    assert facts["untrained"] is False and "error" not in facts  # trained weights, quantized
    assert facts["fp32"] == {
        "source": "darknet",
        "path": str(inputs["params"]),
        "sha256": BASE_FILES["weights"]["sha256"],
        "cfg": str(inputs["cfg"]),
        "cfg_sha256": BASE_FILES["cfg"]["sha256"],
    }
    assert facts["calibration"] == {"mode": "naive", "image_ids": ["000008", "000010", "000005"],
                                    "size": 512, "input_shape": [320, 320]}  # fmt: skip
    assert facts["symbol_sha256"] == weights.sha256_file(facts["symbol"])
    entry = weights.runner_entry(str(tmp_path / f"{MODEL}.params"), str(tmp_path / f"{MODEL}.json"))
    assert "cfg" not in entry  # the runner loads the INT8 symbol, not darknet files
    net = nets.build_from_weights(MODEL, mx.cpu(), entry)
    assert isinstance(net, mx.gluon.SymbolBlock)
    assert "quantized_sg_mkldnn_conv" in Path(facts["symbol"]).read_text()


def test_a_cfg_changed_after_it_was_fetched_is_refused_before_quantizing(tmp_path, inputs):
    edited = dict(inputs, cfg=tmp_path / "edited.cfg")
    edited["cfg"].write_text(inputs["cfg"].read_text() + "\n# edited\n")
    with pytest.raises(weights.WeightsError, match=r"edited\.cfg: sha256 .* expected 671b726a"):
        quantize(tmp_path, edited)
    assert not (tmp_path / "quantize.log").exists()  # the runner never started


# --- the workflow on the demo photos ------------------------------------------------------------

RUNS = {
    "imperative": f"speed/{MODEL}/mxnet/cpu-imperative",
    "hybrid": f"speed/{MODEL}/mxnet/cpu-hybrid",
    "voc": f"voc/{MODEL}/mxnet/cpu",
    "onnxruntime": f"speed/{MODEL}/onnxruntime/cpu-native",
    "opencv": f"voc/{MODEL}/opencv/cpu",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The workflow's own jobs, up to the INT8 runs and the voc run's map.json (no tracking or
    report, which other tests cover)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"), config())
    targets = [f"results/nano8/{run}/result.json" for run in RUNS.values()]
    targets.append(f"results/nano8/{RUNS['voc']}/map.json")
    done = snakemake(workdir, *targets, "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def result(workdir: Path, run: str) -> dict:
    return json.loads((workdir / f"results/nano8/{RUNS[run]}/result.json").read_text())


def test_the_rule_quantizes_the_darknet_files_on_the_speed_sample(workdir):
    facts = json.loads((workdir / f"{QUANTIZED}.json").read_text())
    assert facts["fp32"]["source"] == "darknet"
    assert facts["fp32"]["cfg"] == DARKNET_INPUTS["fp32_cfg"]
    assert facts["fp32"]["cfg_sha256"] == BASE_FILES["cfg"]["sha256"]
    sample = (workdir / "data/nano8/speed_images.txt").read_text().split()
    assert facts["calibration"]["image_ids"] == sample[:4]


@pytest.mark.parametrize("mode", ["imperative", "hybrid"])
def test_speed_runs_time_the_int8_symbol_in_both_modes(workdir, mode):
    run = result(workdir, mode)
    assert run["status"] == "ok", run["error"]
    assert run["mode"] == mode and run["input_shape"] == [3, 320, 320]
    assert run["weights"]["source"] == "quantized" and run["weights"]["format"] == "symbol"
    assert run["weights"]["untrained"] is False
    assert run["timings"]["measured_images"] == 4 and run["timings"]["repeats"] == 1


def test_voc_run_scores_a_real_map_with_the_bases_metric(workdir):
    scores = json.loads((workdir / f"results/nano8/{RUNS['voc']}/map.json").read_text())
    assert scores["status"] == "ok" and scores["metric"] == "area"
    assert scores["images"] == 24 and scores["weights_untrained"] is False
    assert 0.85 < scores["mAP"] <= 1.0  # FP32: 0.9945 on these photos (benchmarks/RESULTS.md)
    assert scores["published_mAP"] is None and scores["published_metric"] == "area"
    assert scores["accuracy_check"] == "not compared: no published mAP for this model"
    assert scores["accuracy_flag"] is None


def test_onnx_export_fails_as_a_record_and_the_other_backends_record_its_error(workdir):
    record = json.loads((workdir / f"weights/onnx/quantized/{MODEL}.json").read_text())
    assert record["status"] == "failed" and ONNX_ERROR in record["error"]
    assert (workdir / f"weights/onnx/quantized/{MODEL}.onnx").stat().st_size == 0
    for backend in ("onnxruntime", "opencv"):
        run = result(workdir, backend)
        assert run["status"] == "failed" and ONNX_ERROR in run["error"], run["error"]
        assert run["backend"]["name"] == backend


def test_changing_quantize_from_reruns_nothing_of_the_int8_nano(workdir):
    """``weights.quantize.from`` is not the darknet base's source, so it is no param of its job."""
    (workdir / "from.yaml").write_text(yaml.safe_dump(config(quantize_from="gluoncv")))
    rows = summary_rows(workdir, "from.yaml")
    pending = {output for rule, output, plan in rows if plan != "no update"}
    done = {f"{QUANTIZED}.params", *(f"results/nano8/{run}/result.json" for run in RUNS.values())}
    assert done <= {output for _, output, _ in rows} and not done & pending
