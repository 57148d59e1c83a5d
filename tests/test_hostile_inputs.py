"""Hostile inputs at the user's level: through ``snakemake`` on a temporary copy of the workflow,
or the ``detbench`` CLI. Each is refused with a message, on the user's terminal or in the rule's
log, that names the file or config key at fault and says what to do.

Snakemake is asked for single targets (``data/<name>/dataset.json``, one weights file) or a dry
run, so nothing here runs a model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import REPO, copy_workflow, snakemake

from detbench.data.synthetic import make_synthetic_voc

MODEL = "ssd_512_mobilenet1.0_voc"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One copy of the workflow; each test writes its own config with its own ``name``."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "wf").mkdir()
    return copy_workflow(root / "wf", {"name": "unused"})


def run(workdir: Path, name: str, config: dict, *targets: str) -> tuple[int, str]:
    """``snakemake TARGETS --configfile <name>.yaml``; the exit code and all it printed."""
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **config}))
    done = snakemake(workdir, *targets, "--configfile", f"{name}.yaml")
    return done.returncode, done.stdout + done.stderr


def log_of(workdir: Path, name: str, rule: str) -> str:
    return (workdir / f"logs/{name}/{rule}.log").read_text()


def devkit(root: Path, images: int = 3) -> Path:
    path = root / "VOCdevkit"
    make_synthetic_voc(path, images=images, seed=4)
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "detbench.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


# --- config ------------------------------------------------------------------------------------


def test_invalid_config_value_names_the_key_and_the_allowed_range(workdir):
    code, out = run(workdir, "badvalue", {"voc_run": {"batch": 0}}, "-n")
    assert code != 0
    assert "Error validating config file" in out
    assert "0 is less than the minimum of 1" in out
    assert "['voc_run']['batch']" in out


def test_misspelt_config_key_is_refused_by_name(workdir):
    code, out = run(workdir, "typo", {"voc_runs": {"batch": 2}}, "-n")
    assert code != 0
    assert "'voc_runs' was unexpected" in out


def test_unknown_model_is_refused_with_the_known_names(workdir):
    code, out = run(workdir, "unknown", {"models": ["ssd_512_mobilenet1.0_vocc"]}, "-n")
    assert code != 0
    assert "models: unknown model(s) ssd_512_mobilenet1.0_vocc" in out
    assert MODEL in out.split("known VOC detectors (detbench.zoo):")[1]


# --- archives ----------------------------------------------------------------------------------


def test_archive_with_wrong_md5_is_refused_and_kept(workdir, tmp_path):
    archive = tmp_path / "VOCtest_06-Nov-2007.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(devkit(tmp_path / "src"), arcname="VOCdevkit")
    code, out = run(workdir, "md5", {"voc": {"archive": str(archive)}}, "data/md5/dataset.json")
    assert code != 0
    log = log_of(workdir, "md5", "extract_voc")
    default_md5 = "b6e924de25625d8de591ea690078ad9f"
    expected = f"{archive}: md5 mismatch: expected {default_md5}, got {md5(archive)}"
    assert expected in log and "fix `voc.md5`" in log
    assert "md5 mismatch" in out
    assert archive.exists() and not (workdir / "data/md5/VOCdevkit").exists()


def _add(tar: tarfile.TarFile, name: str, kind: str = "file", payload: bytes | str = b"x"):
    info = tarfile.TarInfo(name)
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, payload
        tar.addfile(info)
    else:
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))


@pytest.fixture(scope="module")
def unsafe_archive(workdir, tmp_path_factory) -> dict:
    """A tar (with the right md5) holding a ``..`` member and a symlink out of the devkit."""
    root = tmp_path_factory.mktemp("unsafe")
    archive = root / "archive" / "VOCtest_06-Nov-2007.tar"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tar:
        _add(tar, "VOCdevkit", "dir")
        _add(tar, "VOCdevkit/VOC2007", "dir")
        _add(tar, "VOCdevkit/../../evil.txt", payload=b"escaped\n")
        _add(tar, "VOCdevkit/VOC2007/JPEGImages", "symlink", "../../../../../etc")
    config = {"voc": {"archive": str(archive), "md5": md5(archive)}}
    code, out = run(workdir, "unsafe", config, "data/unsafe/dataset.json")
    return {"code": code, "out": out, "log": log_of(workdir, "unsafe", "extract_voc"),
            "root": root, "archive": archive}  # fmt: skip


def test_traversal_member_is_refused_by_name_and_nothing_extracted(unsafe_archive, workdir):
    assert unsafe_archive["code"] != 0
    log = unsafe_archive["log"]
    assert f"{unsafe_archive['archive']}: refusing to extract 2 unsafe member(s)" in log
    assert "'VOCdevkit/../../evil.txt': path contains '..'" in log
    assert "not a genuine VOC devkit tar; nothing was extracted" in log
    assert "refusing to extract" in unsafe_archive["out"]
    for base in (workdir, unsafe_archive["root"]):
        assert not list(base.rglob("evil.txt"))
    assert not (workdir / "data/unsafe/VOCdevkit").exists()
    assert not list((workdir / "data/unsafe").glob(".*partial*"))


def test_symlink_escaping_the_devkit_is_refused_by_name(unsafe_archive):
    log = unsafe_archive["log"]
    member = "'VOCdevkit/VOC2007/JPEGImages'"
    assert f"{member}: symlink to '../../../../../etc', outside the destination" in log


# --- a broken VOCdevkit given as voc.root -----------------------------------------------------


@pytest.fixture(scope="module")
def broken_root(workdir, tmp_path_factory) -> dict:
    """``voc.root`` at a devkit with one malformed annotation and one truncated JPEG."""
    root = devkit(tmp_path_factory.mktemp("broken"), images=3)
    year = root / "VOC2007"
    (year / "Annotations/000002.xml").write_text("<annotation><size><width>300</width>\n")
    jpeg = year / "JPEGImages/000003.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    config = {"voc": {"root": str(root)}}
    code, out = run(workdir, "broken", config, "data/broken/dataset.json")
    return {"code": code, "out": out, "log": log_of(workdir, "broken", "check_voc"), "year": year}


def test_malformed_xml_is_named_in_the_error(broken_root):
    assert broken_root["code"] != 0
    line = f"{broken_root['year'] / 'Annotations/000002.xml'}: malformed XML"
    assert line in broken_root["log"] and line in broken_root["out"]
    assert "2 problem(s) in split 'test' (3 images)" in broken_root["log"]


def test_truncated_jpeg_is_named_in_the_error(broken_root):
    line = f"{broken_root['year'] / 'JPEGImages/000003.jpg'}: truncated JPEG"
    assert line in broken_root["log"] and line in broken_root["out"]


def test_devkit_without_imagesets_file_names_it_and_the_config_key(workdir, tmp_path):
    root = devkit(tmp_path)
    (root / "VOC2007/ImageSets/Main/test.txt").unlink()
    code, out = run(workdir, "noset", {"voc": {"root": str(root)}}, "data/noset/dataset.json")
    assert code != 0
    log = log_of(workdir, "noset", "check_voc")
    missing = f"{root}/VOC2007/ImageSets/Main/test.txt"
    assert f"{root}: not a VOCdevkit directory; missing: {missing}" in log
    assert "if you set `voc.root`, point it at the folder that holds VOC2007/" in log
    assert "not a VOCdevkit directory" in out


# --- weights -----------------------------------------------------------------------------------


def test_weights_file_with_wrong_sha256_is_refused_and_not_kept(workdir, tmp_path):
    params = tmp_path / "mine.params"
    params.write_bytes(b"weights a user trained\n")
    wrong = "0" * 64
    files = {MODEL: {"path": str(params), "sha256": wrong}}
    config = {"models": [MODEL], "weights": {"source": "file", "files": files}}
    code, out = run(workdir, "sha", config, f"weights/file/{MODEL}.params")
    assert code != 0
    log = (workdir / f"logs/weights/file/{MODEL}.log").read_text()
    actual = hashlib.sha256(params.read_bytes()).hexdigest()
    expected = f"{params}: sha256 {actual}, expected {wrong} (weights.files.{MODEL}.sha256)"
    assert expected in log and "refused" in log
    assert "sha256" in out
    assert not list((workdir / "weights/file").glob(f"{MODEL}.*"))


# --- devices -----------------------------------------------------------------------------------


def runner_spec(tmp_path: Path, device: str, weights: dict) -> Path:
    """A speed-run spec in its run directory, as the workflow writes it."""
    run_dir = tmp_path / "results/cli/speed" / MODEL / f"{device}-hybrid"
    run_dir.mkdir(parents=True)
    spec = {
        "kind": "speed", "config_name": "cli", "model": MODEL, "family": "ssd",
        "device": device, "mode": "hybrid", "batch_size": 1, "input_shape": [3, 128, 128],
        "warmup": 1, "repeats": 1, "devkit": str(devkit(tmp_path)), "image_ids": ["000001"],
        "weights": weights, "dataset": {"name": "cli", "fingerprint": "f00d", "split": "test"},
        "telemetry_interval_s": 0.1, "threads": 1,
    }  # fmt: skip
    (run_dir / "spec.json").write_text(json.dumps(spec))
    return run_dir / "spec.json"


def test_weights_changed_after_fetching_are_a_failed_run_naming_the_file(tmp_path):
    params = tmp_path / "weights/untrained" / f"{MODEL}.params"
    params.parent.mkdir(parents=True)
    params.write_bytes(b"replaced after its sidecar was written\n")
    recorded = "1" * 64
    weights = {"path": str(params), "source": "untrained", "untrained": True, "sha256": recorded}
    spec = runner_spec(tmp_path, "cpu", weights)
    done = cli("run", str(spec), cwd=tmp_path)
    result = json.loads((spec.parent / "result.json").read_text())
    assert result["status"] == "failed"
    actual = hashlib.sha256(params.read_bytes()).hexdigest()
    assert result["error"] == (
        f"WeightsRefused: {params}: sha256 {actual} differs from {recorded} recorded when the "
        "weights were fetched; refusing to run on unverified weights"
    )
    assert "refusing to run on unverified weights" in done.stderr


def test_gpu_asked_where_none_is_is_a_failed_result_saying_no_gpu(tmp_path):
    weights = {"path": "absent.params", "source": "untrained", "untrained": True}
    spec = runner_spec(tmp_path, "gpu63", {**weights, "sha256": "0" * 64})
    done = cli("run", str(spec), cwd=tmp_path)
    result = json.loads((spec.parent / "result.json").read_text())
    assert result["status"] == "failed"
    assert result["error"].startswith("DeviceUnavailable: no GPU 63")
    assert "drop 'gpu63' from the config's devices" in result["error"]
    assert "no GPU 63" in done.stderr


# --- detections --------------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs ``open(path, "w")``: a stand-in for arbitrary code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_detections_with_pickled_objects_are_refused_unread(tmp_path):
    kit = devkit(tmp_path)
    sentinel = tmp_path / "unpickled"
    npz = tmp_path / "dets.npz"
    np.savez(
        npz,
        image_ids=np.array([_Payload(sentinel)], dtype=object),
        image_index=np.zeros(0, np.int64), labels=np.zeros(0, np.int64),
        scores=np.zeros(0, np.float32), boxes=np.zeros((0, 4), np.float32),
    )  # fmt: skip
    out = tmp_path / "map.json"
    done = cli("evaluate", "--voc-root", str(kit), "--detections", str(npz), "--out", str(out),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    refusal = f"{npz}: key 'image_ids': expected a plain numpy array, got a pickled object"
    assert refusal in done.stderr
    assert "refused" in done.stderr
    assert not sentinel.exists() and not out.exists()


# --- config values that would escape their folders ---------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", ".hidden"])
def test_run_name_that_is_not_a_plain_folder_is_refused(workdir, name):
    (workdir / "escape.yaml").write_text(yaml.safe_dump({"name": name}))
    done = snakemake(workdir, "-n", "--configfile", "escape.yaml")
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "Error validating config file" in out and "['name']" in out


def test_split_that_is_a_path_is_refused(workdir):
    code, out = run(workdir, "split", {"voc": {"split": "../../../etc/x"}}, "-n")
    assert code != 0
    assert "['voc']['split']" in out and "does not match" in out


def test_weights_files_entry_no_model_uses_is_refused_by_name(workdir, tmp_path):
    files = {"yolo3_mobilenet1.0_voc": {"path": str(tmp_path / "w.params"), "sha256": "a" * 64}}
    config = {"models": [MODEL], "weights": {"source": "untrained", "files": files}}
    code, out = run(workdir, "stray", config, "-n")
    assert code != 0
    assert "weights.files: yolo3_mobilenet1.0_voc: no listed model takes these weights" in out


def test_runner_refuses_image_ids_that_are_paths(tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 not for the runner")
    weights = {"path": "absent.params", "source": "untrained", "untrained": True, "sha256": "0"}
    spec = runner_spec(tmp_path, "cpu", weights)
    body = json.loads(spec.read_text())
    body["image_ids"] = ["000001", "../../../../secret"]
    spec.write_text(json.dumps(body))
    done = cli("run", str(spec), cwd=tmp_path)
    assert done.returncode == 1
    assert f"{spec}: image_ids entry 2 is '../../../../secret', expected a VOC image id" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in spec.parent.iterdir()) == ["spec.json"]


# --- unbounded reads ---------------------------------------------------------------------------

CHECK = "import sys; from detbench.data.check import check_dataset; check_dataset(sys.argv[1])"


def limited(memory: int):
    """A ``preexec_fn`` capping the child's address space: a runaway read fails, not the host."""

    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


def test_jpegs_that_are_a_fifo_or_dev_zero_are_refused_unread(tmp_path):
    kit = devkit(tmp_path, images=3)
    images = kit / "VOC2007/JPEGImages"
    (images / "000001.jpg").unlink()
    os.mkfifo(images / "000001.jpg")
    (images / "000002.jpg").unlink()
    (images / "000002.jpg").symlink_to("/dev/zero")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(kit)], env=env, capture_output=True, text=True,
        timeout=120, preexec_fn=limited(2 << 30),
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{images / '000001.jpg'}: image file unreadable (not a regular file but a FIFO)" in (
        done.stderr
    )
    assert f"{images / '000002.jpg'}: image file unreadable (not a regular file but a device" in (
        done.stderr
    )
    assert "2 problem(s) in split 'test' (3 images)" in done.stderr


def _npz_with_scores(path: Path, scores_npy) -> Path:
    """A detections.npz whose ``scores`` member is written by ``scores_npy(member)``."""
    import zipfile

    empty = {"image_ids": np.array(["000001"]), "image_index": np.zeros(0, np.int64),
             "labels": np.zeros(0, np.int64), "boxes": np.zeros((0, 4), np.float32)}  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, array in empty.items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array)
        with archive.open("scores.npy", "w", force_zip64=True) as member:
            scores_npy(member)
    return path


def _evaluate_limited(tmp_path: Path, npz: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    out = str(tmp_path / "m.json")
    command = [sys.executable, "-m", "detbench.cli", "evaluate", "--voc-root",
               str(devkit(tmp_path)), "--detections", str(npz), "--out", out]  # fmt: skip
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=limited(1 << 30))  # fmt: skip


def test_detections_header_claiming_a_huge_array_is_refused_before_reading(tmp_path):
    def claim(member):
        header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)}
        np.lib.format.write_array_header_1_0(member, header)

    npz = _npz_with_scores(tmp_path / "claims.npz", claim)
    done = _evaluate_limited(tmp_path, npz)
    assert done.returncode == 1
    assert f"{npz}: expected at most 1024 MiB of arrays, its headers claim" in done.stderr
    assert "refused before reading" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "m.json").exists()


def test_small_compressed_detections_that_inflate_to_gigabytes_are_refused(tmp_path):
    size = 5 << 28  # 1.25 GiB of float32 zeros, about a megabyte compressed

    def zeros(member):
        header = {"descr": "<f4", "fortran_order": False, "shape": (size // 4,)}
        np.lib.format.write_array_header_1_0(member, header)
        block = bytes(1 << 24)
        for _ in range(size // len(block)):
            member.write(block)

    npz = _npz_with_scores(tmp_path / "bomb.npz", zeros)
    assert npz.stat().st_size < 8 << 20
    done = _evaluate_limited(tmp_path, npz)
    assert done.returncode == 1
    assert f"{npz}: expected at most 1024 MiB of arrays" in done.stderr
    assert "Traceback" not in done.stderr


# --- errors that must say what is wrong --------------------------------------------------------


def test_evaluate_without_ground_truth_records_null_and_says_undefined(tmp_path):
    kit = devkit(tmp_path)
    for xml in sorted((kit / "VOC2007/Annotations").glob("*.xml")):
        text = xml.read_text()
        xml.write_text(text[: text.find("<object>")] + "</annotation>\n" if "<object>" in text
                       else text)  # fmt: skip
    npz = tmp_path / "dets.npz"
    np.savez(npz, image_ids=np.array(["000001", "000002"]), image_index=np.zeros(0, np.int64),
             labels=np.zeros(0, np.int64), scores=np.zeros(0, np.float32),
             boxes=np.zeros((0, 4), np.float32))  # fmt: skip
    out = tmp_path / "map.json"
    done = cli("evaluate", "--voc-root", str(kit), "--detections", str(npz), "--out", str(out),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "mAP is undefined: no class has non-difficult ground truth" in done.stderr
    assert json.loads(out.read_text())["mAP"] is None


@pytest.mark.parametrize(
    ("content", "said"),
    [(b"", "got an empty file"), (bytes(range(7, 71)), "got a file starting with b'\\x07")],
    ids=["empty", "random"],
)
def test_evaluate_on_an_empty_or_random_file_says_it_is_not_an_npz(tmp_path, content, said):
    npz = tmp_path / "dets.npz"
    npz.write_bytes(content)
    done = cli("evaluate", "--voc-root", str(devkit(tmp_path)), "--detections", str(npz),
               "--out", str(tmp_path / "map.json"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert f"{npz}: expected an .npz archive (a zip file), {said}" in done.stderr
    assert "pickle" not in done.stderr


def test_fetch_voc_from_an_unreachable_mirror_is_one_message_without_traceback(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/VOCtest_06-Nov-2007.tar"
    done = cli("fetch-voc", "--url", url, "--archive", str(tmp_path / "voc.tar"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("detbench fetch-voc: ") and url in done.stderr
    assert "Traceback" not in done.stderr


def test_weights_that_are_not_an_mxnet_file_are_a_failed_run_naming_the_file(tmp_path):
    params = tmp_path / "weights/file" / f"{MODEL}.params"
    params.parent.mkdir(parents=True)
    params.write_bytes(b"PK\x03\x04 a zip, not MXNet parameters\n" * 8)
    digest = hashlib.sha256(params.read_bytes()).hexdigest()
    weights = {"path": str(params), "source": "file", "untrained": False, "sha256": digest}
    spec = runner_spec(tmp_path, "cpu", weights)
    cli("run", str(spec), cwd=tmp_path)
    result = json.loads((spec.parent / "result.json").read_text())
    assert result["status"] == "failed"
    assert result["error"].startswith(f"WeightsRefused: {params}: not an MXNet parameter file")


# --- a dataset under voc.root changed in place -------------------------------------------------


def test_changed_voc_root_is_checked_again_with_a_new_fingerprint(workdir, tmp_path):
    from detbench.data.check import fingerprint

    root = devkit(tmp_path, images=3)
    dataset = workdir / "data/edited/dataset.json"
    config = {"voc": {"root": str(root)}}
    code, out = run(workdir, "edited", config, "data/edited/dataset.json")
    assert code == 0, out
    before = json.loads(dataset.read_text())
    code, out = run(workdir, "edited", config, "data/edited/dataset.json")
    assert code == 0 and "Nothing to be done" in out  # unchanged: not checked again
    split = root / "VOC2007/ImageSets/Main/test.txt"
    split.write_text("000001\n000002\n")  # one id removed
    code, out = run(workdir, "edited", config, "data/edited/dataset.json")
    assert code == 0, out
    after = json.loads(dataset.read_text())
    assert after["images"] == 2 and after["fingerprint"] == fingerprint(root)
    assert after["fingerprint"] != before["fingerprint"]
    xml = root / "VOC2007/Annotations/000001.xml"
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
    code, out = run(workdir, "edited", config, "data/edited/dataset.json")
    assert code == 0, out
    edited = json.loads(dataset.read_text())
    assert edited["fingerprint"] == fingerprint(root) != after["fingerprint"]
