"""Weight sources against a real HTTP server on 127.0.0.1 laid out like GluonCV's model store
(``MXNET_GLUON_REPO`` pointing at it), and the runner's loading of what they wrote."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from detbench import weights, zoo
from detbench.runner import nets

MODEL = "ssd_300_mobilenet0.25_voc"  # small (14 MiB) and quick to build
INPUT = mx.nd.array(np.random.default_rng(0).uniform(-1, 1, (1, 3, 300, 300)))


def sha(path: Path, name: str) -> str:
    return hashlib.new(name, path.read_bytes()).hexdigest()


def outputs(net) -> list[np.ndarray]:
    return [out.asnumpy() for out in net(INPUT)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """Stand-in for trained weights: a seeded net's .params and its outputs on INPUT."""
    path = tmp_path_factory.mktemp("weights") / f"{MODEL}.params"
    net = nets.build_net(MODEL, mx.cpu(), seed=7)
    net.save_parameters(str(path))
    return path, outputs(net)


class Store:
    """A directory served over HTTP; ``requests`` lists the paths asked for."""

    def __init__(self, root: Path):
        self.root, self.requests = root, []
        root.mkdir(parents=True, exist_ok=True)
        store = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                store.requests.append(self.path)

        handler = functools.partial(Handler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        serve = functools.partial(self.server.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, daemon=True).start()

    def add_model(self, name: str, params: Path, sha1: str) -> str:
        """Publish ``params`` as GluonCV's store would: ``gluon/models/<name>-<sha1[:8]>.zip``."""
        file_name = f"{name}-{sha1[:8]}"
        folder = self.root / "gluon" / "models"
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(folder / f"{file_name}.zip", "w") as archive:
            archive.write(params, f"{file_name}.params")
        return f"/gluon/models/{file_name}.zip"


@pytest.fixture
def store(tmp_path, monkeypatch):
    served = Store(tmp_path / "store")
    monkeypatch.setenv("MXNET_GLUON_REPO", served.url)
    yield served
    served.server.shutdown()
    served.server.server_close()


def paths(tmp_path: Path, source: str, model: str = MODEL) -> tuple[Path, Path]:
    folder = tmp_path / "weights" / source
    return folder / f"{model}.params", folder / f"{model}.json"


def load(params: Path, sidecar: Path, model: str = MODEL):
    return nets.build_from_weights(model, mx.cpu(), weights.runner_entry(str(params), str(sidecar)))


def assert_same_outputs(net, expected):
    for got, want in zip(outputs(net), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_store_zip_with_right_sha1_is_accepted_and_loads(store, trained, tmp_path):
    source, expected = trained
    sha1 = sha(source, "sha1")
    zip_url = store.add_model(MODEL, source, sha1)
    params, sidecar = paths(tmp_path, "gluoncv")
    facts = weights.fetch_pretrained(
        MODEL, {"source": "gluoncv"}, params, sidecar, sha1=sha1, progress=False
    )
    assert facts == json.loads(sidecar.read_text())
    assert facts["url"] == store.url + zip_url[1:] and store.requests == [zip_url]
    assert facts["sha1"] == sha1 and facts["sha256"] == sha(source, "sha256")
    assert facts["source"] == "gluoncv" and facts["untrained"] is False
    assert facts["size_bytes"] == source.stat().st_size and facts["format"] == "params"
    assert sorted(p.name for p in params.parent.iterdir()) == sorted([params.name, sidecar.name])
    assert_same_outputs(load(params, sidecar), expected)


def test_verified_file_already_present_is_not_downloaded_again(store, trained, tmp_path):
    source, _ = trained
    sha1 = sha(source, "sha1")
    store.add_model(MODEL, source, sha1)
    params, sidecar = paths(tmp_path, "gluoncv")
    for _ in range(2):
        weights.fetch_gluoncv(MODEL, params, sidecar, sha1=sha1, progress=False)
    assert len(store.requests) == 1


def test_store_file_with_other_sha1_than_gluoncv_table_is_refused_and_removed(
    store, trained, tmp_path
):
    source, _ = trained
    registry_sha1 = zoo.model_info("ssd_512_mobilenet1.0_voc")["sha1"]
    store.add_model("ssd_512_mobilenet1.0_voc", source, registry_sha1)  # the production name
    params, sidecar = paths(tmp_path, "gluoncv", "ssd_512_mobilenet1.0_voc")
    with pytest.raises(weights.WeightsError) as refused:
        weights.fetch_pretrained(
            "ssd_512_mobilenet1.0_voc", {"source": "gluoncv"}, params, sidecar, progress=False
        )
    message = str(refused.value)
    assert registry_sha1 in message and sha(source, "sha1") in message
    assert f"{store.url}gluon/models/ssd_512_mobilenet1.0_voc-{registry_sha1[:8]}.zip" in message
    assert not params.parent.exists() or not any(params.parent.iterdir())


def test_corrupt_local_copy_is_replaced_by_a_verified_download(store, trained, tmp_path):
    source, _ = trained
    sha1 = sha(source, "sha1")
    store.add_model(MODEL, source, sha1)
    params, sidecar = paths(tmp_path, "gluoncv")
    params.parent.mkdir(parents=True)
    params.write_bytes(b"not the weights")
    weights.fetch_gluoncv(MODEL, params, sidecar, sha1=sha1, progress=False)
    assert sha(params, "sha1") == sha1


def test_missing_zip_names_the_url_and_the_mirror_setting(store, tmp_path):
    params, sidecar = paths(tmp_path, "gluoncv")
    with pytest.raises(weights.WeightsError, match=r"gluon/models/.*\.zip: HTTP 404"):
        weights.fetch_gluoncv(MODEL, params, sidecar, sha1="ab" * 20, progress=False)
    assert not params.exists()


def test_model_without_store_weights_is_refused_without_download(store, tmp_path):
    params, sidecar = paths(tmp_path, "gluoncv")
    with pytest.raises(weights.WeightsError, match="no weights for it.*MXNET_GLUON_REPO"):
        weights.fetch_gluoncv(MODEL, params, sidecar, progress=False)
    assert store.requests == []


def test_int8_model_gets_its_base_weights_and_reuses_a_fetched_copy(store, tmp_path):
    base, int8 = "ssd_512_mobilenet1.0_voc", "ssd_512_mobilenet1.0_voc_int8"
    source = tmp_path / "base.params"
    nets.build_net(base, mx.cpu(), seed=0).save_parameters(str(source))
    sha1 = sha(source, "sha1")
    store.add_model(base, source, sha1)
    base_params, base_sidecar = paths(tmp_path, "gluoncv", base)
    weights.fetch_gluoncv(base, base_params, base_sidecar, sha1=sha1, progress=False)
    params, sidecar = paths(tmp_path, "gluoncv", int8)
    facts = weights.fetch_gluoncv(int8, params, sidecar, sha1=sha1, progress=False)
    assert len(store.requests) == 1 and facts["base_model"] == base
    assert facts["store_file"] == f"{base}-{sha1[:8]}.params" and facts["sha1"] == sha1
    net = load(params, sidecar, int8)
    assert [out.shape for out in net(mx.nd.zeros((1, 3, 512, 512)))] == [
        (1, 100, 1), (1, 100, 1), (1, 100, 4)
    ]  # fmt: skip


def file_config(**entry) -> dict:
    return {"source": "file", "files": {MODEL: entry}}


def test_path_with_right_sha256_is_copied_and_loads(trained, tmp_path):
    source, expected = trained
    params, sidecar = paths(tmp_path, "file")
    config = file_config(path=str(source), sha256=sha(source, "sha256"))
    facts = weights.fetch_pretrained(MODEL, config, params, sidecar, progress=False)
    assert facts["source"] == "file" and facts["origin"] == str(source)
    assert_same_outputs(load(params, sidecar), expected)


def test_url_with_right_sha256_is_downloaded_and_loads(store, trained, tmp_path):
    source, expected = trained
    shutil.copy(source, store.root / "mine.params")
    params, sidecar = paths(tmp_path, "file")
    config = file_config(url=store.url + "mine.params", sha256=sha(source, "sha256"))
    facts = weights.fetch_pretrained(MODEL, config, params, sidecar, progress=False)
    assert facts["source"] == "url" and facts["origin"] == store.url + "mine.params"
    assert_same_outputs(load(params, sidecar), expected)


@pytest.mark.parametrize("where", ["path", "url"])
def test_wrong_sha256_is_refused_and_leaves_no_file(store, trained, tmp_path, where):
    source, _ = trained
    shutil.copy(source, store.root / "mine.params")
    origin = str(source) if where == "path" else store.url + "mine.params"
    params, sidecar = paths(tmp_path, "file")
    with pytest.raises(weights.WeightsError, match=f"sha256 {sha(source, 'sha256')}, expected"):
        weights.fetch_pretrained(
            MODEL, file_config(**{where: origin, "sha256": "0" * 64}), params, sidecar
        )
    assert not any(params.parent.iterdir())


def test_runner_refuses_weights_changed_after_they_were_verified(trained, tmp_path):
    source, _ = trained
    params, sidecar = paths(tmp_path, "file")
    config = file_config(path=str(source), sha256=sha(source, "sha256"))
    weights.fetch_pretrained(MODEL, config, params, sidecar, progress=False)
    with params.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\0\1\2\3")
    with pytest.raises(nets.WeightsRefused, match="refusing to run on unverified weights"):
        load(params, sidecar)


def test_config_errors_name_what_cannot_work():
    config = {
        "source": "gluoncv",
        "per_model": {"yolo3_mobilenet1.0_voc": "file", "stray_voc": "untrained"},
        "files": {},
        "quantize": {"from": "gluoncv"},
    }
    models = [MODEL, "yolo3_mobilenet1.0_voc", "ssd_512_mobilenet1.0_voc"]
    errors = weights.config_errors(config, models)
    assert len(errors) == 3
    assert "stray_voc is not listed" in errors[0]
    assert errors[1].startswith(f"{MODEL}: GluonCV's model store has no weights")
    assert "no path or url (with sha256) for yolo3_mobilenet1.0_voc" in errors[2]
    config["per_model"] = {MODEL: "quantized"}
    config["quantize"]["from"] = "untrained"
    assert weights.config_errors(config, models) == []
