"""check_dataset and fingerprint on synthetic sets damaged in known ways."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from detbench.data.check import check_dataset, check_jpeg, fingerprint
from detbench.data.errors import DatasetError
from detbench.data.synthetic import make_synthetic_voc
from detbench.data.voc import annotation_path, image_path, load_split, year_dir


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("pristine") / "VOCdevkit"
    make_synthetic_voc(path, images=12, seed=11)
    return path


@pytest.fixture
def devkit(pristine, tmp_path):
    """A private copy of the pristine set, free to damage."""
    return shutil.copytree(pristine, tmp_path / "VOCdevkit")


def test_clean_set_gives_the_dataset_json_record(pristine):
    record = check_dataset(pristine, progress=False)
    objects = [o for r in load_split(pristine) for o in r.objects]
    assert record == {
        "devkit": str(pristine),
        "split": "test",
        "images": 12,
        "objects": len(objects),
        "difficult": sum(o.difficult for o in objects),
        "fingerprint": fingerprint(pristine),
        "synthetic": True,
    }
    assert len(record["fingerprint"]) == 12 and int(record["fingerprint"], 16) >= 0


def test_every_bad_file_is_listed_in_one_error(devkit):
    ann = {i: annotation_path(devkit, f"{i:06d}") for i in range(1, 13)}
    img = {i: image_path(devkit, f"{i:06d}") for i in range(1, 13)}
    ann[1].write_text(ann[1].read_text()[:-20])
    unicorn = "<object><name>unicorn</name><bndbox><xmin>1</xmin></bndbox></object>"
    ann[4].write_text(ann[4].read_text().replace("</annotation>", unicorn + "</annotation>"))
    img[5].write_bytes(img[5].read_bytes()[:-300])
    img[6].unlink()
    Image.new("RGB", (123, 45)).save(img[7], "JPEG")
    Image.new("RGB", (300, 300)).save(img[8], "PNG")
    with pytest.raises(DatasetError) as caught:
        check_dataset(devkit, progress=False)
    problems = caught.value.problems
    expected = [
        (ann[1], "malformed XML"),
        (ann[4], "unknown class"),
        (img[5], "truncated JPEG"),
        (img[6], "image file missing"),
        (img[7], "123x45 pixels"),
        (img[8], "not a JPEG"),
    ]
    assert len(problems) == len(expected)
    for problem, (path, reason) in zip(problems, expected, strict=True):
        assert problem.startswith(f"{path}: ") and reason in problem
        assert problem in str(caught.value)


def test_image_of_a_malformed_annotation_is_still_checked(devkit):
    annotation_path(devkit, "000002").write_text("<annotation>")
    image_path(devkit, "000002").unlink()
    with pytest.raises(DatasetError) as caught:
        check_dataset(devkit, progress=False)
    assert len(caught.value.problems) == 2


def test_jpeg_cut_inside_its_data_is_truncated(pristine, tmp_path):
    data = image_path(pristine, "000003").read_bytes()
    for cut in (len(data) - 2, len(data) // 2):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(data[:cut])
        assert "truncated" in check_jpeg(path)
    assert check_jpeg(image_path(pristine, "000003")) is None


def test_folder_that_is_not_a_devkit_names_the_expected_layout(pristine):
    with pytest.raises(DatasetError) as caught:
        check_dataset(year_dir(pristine), progress=False)
    message = str(caught.value)
    assert "Annotations" in message and "ImageSets/Main/test.txt" in message
    assert "voc.root" in message


def test_fingerprint_changes_when_one_annotation_byte_changes(devkit):
    before = fingerprint(devkit)
    path = annotation_path(devkit, "000004")
    data = bytearray(path.read_bytes())
    data[data.index(b"<folder>") + 8] ^= 0x01
    path.write_bytes(bytes(data))
    assert fingerprint(devkit) != before


def test_fingerprint_changes_with_the_id_list_but_not_with_images(devkit):
    before = fingerprint(devkit)
    image_path(devkit, "000001").write_bytes(b"other pixels")
    assert fingerprint(devkit) == before
    split = year_dir(devkit) / "ImageSets" / "Main" / "test.txt"
    ids = split.read_text().split()
    split.write_text("\n".join(ids[:-1]) + "\n")
    assert fingerprint(devkit) != before
    split.write_text("\n".join([ids[1], ids[0], *ids[2:]]) + "\n")
    assert fingerprint(devkit) != before


def test_fingerprint_of_identical_sets_in_different_places_agrees(pristine, devkit):
    assert fingerprint(pristine) == fingerprint(devkit)
