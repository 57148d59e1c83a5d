"""The darknet weights source: the project's copy of a darknet model's files, the same files from
a real HTTP server on 127.0.0.1 (its registry URL or ``weights.files``), sha256 refusals, config
checks, and the runner building the net from what was fetched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_weights import Store

from detbench import plan, weights, zoo
from detbench.runner import nets

MODEL = "mobilenetv2_yolov3_nano_voc"
FILES = zoo.MODELS[MODEL]["darknet"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def served(tmp_path):
    store = Store(tmp_path / "served")
    for entry in FILES.values():
        (store.root / Path(entry["path"]).name).write_bytes((REPO / entry["path"]).read_bytes())
    yield store
    store.server.shutdown()
    store.server.server_close()


def fetch(tmp_path: Path, weights_config: dict) -> tuple[dict, Path, Path]:
    params, cfg = tmp_path / "out" / f"{MODEL}.params", tmp_path / "out" / f"{MODEL}.cfg"
    sidecar = weights.fetch_darknet(MODEL, weights_config, params, cfg, params.with_suffix(".json"))
    return sidecar, params, cfg


def test_registry_files_come_from_the_projects_copy_and_are_hashed(tmp_path):
    sidecar, params, cfg = fetch(tmp_path, {})
    assert sidecar["format"] == "darknet" and sidecar["source"] == "darknet"
    assert sidecar["untrained"] is False
    assert sidecar["sha256"] == FILES["weights"]["sha256"]
    assert sidecar["cfg_sha256"] == FILES["cfg"]["sha256"] and sidecar["cfg"] == str(cfg)
    assert sidecar["origin"] == str(REPO / FILES["weights"]["path"])
    assert json.loads(params.with_suffix(".json").read_text()) == sidecar


def test_registry_url_is_used_when_the_copy_is_absent(tmp_path, served, monkeypatch):
    monkeypatch.setattr(weights, "REPO_ROOT", tmp_path / "no-copy-here")
    entries = {
        key: {**entry, "url": served.url + Path(entry["path"]).name}
        for key, entry in FILES.items()
    }
    monkeypatch.setitem(zoo.MODELS[MODEL], "darknet", entries)
    sidecar, params, _ = fetch(tmp_path, {})
    assert sidecar["origin"] == entries["weights"]["url"]
    assert sorted(served.requests) == sorted("/" + Path(e["path"]).name for e in FILES.values())


def test_weights_files_override_with_urls(tmp_path, served):
    name = Path(FILES["weights"]["path"]).name
    cfg_name = Path(FILES["cfg"]["path"]).name
    override = {
        "url": served.url + name,
        "sha256": FILES["weights"]["sha256"],
        "cfg": {"url": served.url + cfg_name, "sha256": FILES["cfg"]["sha256"]},
    }
    sidecar, _, _ = fetch(tmp_path, {"files": {MODEL: override}})
    assert sidecar["origin"] == override["url"] and sidecar["cfg_origin"] == override["cfg"]["url"]


def test_a_wrong_sha256_is_refused_naming_the_file_and_leaves_nothing(tmp_path):
    override = {
        "path": str(REPO / FILES["weights"]["path"]),
        "sha256": "0" * 64,
        "cfg": {"path": str(REPO / FILES["cfg"]["path"]), "sha256": FILES["cfg"]["sha256"]},
    }
    with pytest.raises(weights.WeightsError, match=r"Nano-voc\.weights: sha256 3dc752a0.*0000"):
        fetch(tmp_path, {"files": {MODEL: override}})
    assert not (tmp_path / "out" / f"{MODEL}.params").exists()
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_config_requires_the_darknet_source_for_darknet_models_only():
    base = {"source": "untrained", "seed": 0, "per_model": {}, "files": {}}
    assert weights.config_errors({**base, "per_model": {MODEL: "darknet"}}, [MODEL]) == []
    assert "darknet models, and only they" in weights.config_errors(base, [MODEL])[0]
    gluon = "yolo3_mobilenet1.0_voc"
    problem = weights.config_errors({**base, "per_model": {gluon: "darknet"}}, [gluon])
    assert f"{gluon}: weights source 'darknet'" in problem[0]
    files = {MODEL: {"path": "x", "sha256": "0"}}
    no_cfg = {**base, "per_model": {MODEL: "darknet"}, "files": files}
    assert "needs `cfg`" in weights.config_errors(no_cfg, [MODEL])[0]


def test_runs_read_the_cfg_beside_the_weights():
    config = {"name": "t", "weights": {"source": "untrained", "per_model": {MODEL: "darknet"}}}
    assert plan.weights_files(config, MODEL) == {
        "params": f"weights/darknet/{MODEL}.params",
        "sidecar": f"weights/darknet/{MODEL}.json",
        "cfg": f"weights/darknet/{MODEL}.cfg",
    }


def test_runner_builds_the_net_only_from_verified_files(tmp_path):
    import mxnet as mx

    _, params, _ = fetch(tmp_path, {})
    entry = weights.runner_entry(str(params), str(params.with_suffix(".json")))
    assert entry["format"] == "darknet" and entry["cfg_sha256"] == FILES["cfg"]["sha256"]
    net = nets.build_from_weights(MODEL, mx.cpu(), entry)
    ids, scores, boxes = net(mx.nd.zeros((1, 3, 320, 320)))
    assert boxes.shape[-1] == 4
    Path(entry["cfg"]).write_text(Path(entry["cfg"]).read_text() + "\n# edited\n")
    with pytest.raises(nets.WeightsRefused, match=r"\.cfg: sha256"):
        nets.build_from_weights(MODEL, mx.cpu(), entry)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda cfg, w: (cfg + "\n[reorg]\nstride=2\n", w), r"\[reorg\]"),
        (lambda cfg, w: (cfg, w[:-8]), r"3079012 bytes.*3079020|3079020.*3079012"),
    ],
    ids=["unsupported-layer", "short-weights"],
)
def test_a_model_the_block_cannot_run_is_a_failed_run_naming_why(tmp_path, edit, message):
    """The runner records the run as failed with the layer or the byte counts in its error."""
    import hashlib

    from detbench.data.synthetic import make_synthetic_voc
    from detbench.runner.run import run_spec

    cfg, raw = edit(
        (REPO / FILES["cfg"]["path"]).read_text(), (REPO / FILES["weights"]["path"]).read_bytes()
    )
    (tmp_path / "m.cfg").write_text(cfg)
    (tmp_path / "m.weights").write_bytes(raw)
    devkit = tmp_path / "VOCdevkit"
    make_synthetic_voc(devkit, images=2, seed=0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def digest(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    spec = {
        "kind": "voc", "config_name": "t", "model": MODEL, "family": "darknet",
        "device": "cpu", "mode": "hybrid", "batch_size": 2, "input_shape": None,
        "warmup": 1, "repeats": 1, "devkit": str(devkit), "image_ids": ["000001", "000002"],
        "weights": {
            "path": str(tmp_path / "m.weights"), "sha256": digest(tmp_path / "m.weights"),
            "source": "darknet", "untrained": False, "format": "darknet",
            "cfg": str(tmp_path / "m.cfg"), "cfg_sha256": digest(tmp_path / "m.cfg"),
        },
        "dataset": {"name": "t", "fingerprint": "x", "split": "test"},
        "telemetry_interval_s": 0.1, "threads": 1,
    }  # fmt: skip
    (run_dir / "spec.json").write_text(json.dumps(spec))
    result = run_spec(str(run_dir / "spec.json"))
    assert result["status"] == "failed"
    assert result["error"].startswith("DarknetError: ") and re.search(message, result["error"])
    assert json.loads((run_dir / "result.json").read_text())["status"] == "failed"
