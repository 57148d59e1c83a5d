"""Strict parsing of VOC annotations and split files."""

from __future__ import annotations

from pathlib import Path

import pytest

from detbench.data.errors import DataError, VOCFormatError
from detbench.data.voc import VOC_CLASSES, load_split, parse_annotation, read_split


def annotation(objects: str = "", width: str = "500", height: str = "375") -> str:
    return (
        "<annotation><folder>VOC2007</folder><filename>000001.jpg</filename>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        f"{objects}</annotation>"
    )


def obj(name="dog", box=(48, 240, 195, 371), difficult="0", truncated="1") -> str:
    coords = "".join(
        f"<{t}>{v}</{t}>" for t, v in zip("xmin ymin xmax ymax".split(), box, strict=True)
    )
    return (
        f"<object><name>{name}</name><pose>Left</pose><truncated>{truncated}</truncated>"
        f"<difficult>{difficult}</difficult><bndbox>{coords}</bndbox></object>"
    )


def write(tmp_path: Path, text: str, name: str = "000001.xml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_annotation_gives_boxes_in_gluoncv_frame(tmp_path):
    path = write(tmp_path, annotation(obj() + obj("person", (8, 12, 352, 498 - 123), "1", "0")))
    record = parse_annotation(path)
    assert (record.image_id, record.width, record.height) == ("000001", 500, 375)
    dog, person = record.objects
    assert dog.box == (47, 239, 194, 370) and dog.name == "dog" and dog.truncated
    assert person.label == VOC_CLASSES.index("person") and person.difficult


def test_box_touching_the_far_edges_is_accepted(tmp_path):
    record = parse_annotation(write(tmp_path, annotation(obj(box=(1, 1, 500, 375)))))
    assert record.objects[0].box == (0, 0, 499, 374)


def test_image_without_objects_parses_empty(tmp_path):
    assert parse_annotation(write(tmp_path, annotation())).objects == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (annotation(obj())[:-5], "malformed XML"),
        ("<foo/>", "expected <annotation>"),
        (annotation(obj("dragon")), "unknown class 'dragon'"),
        (annotation(obj(box=(1, 1, 502, 375))), "outside the 500x375 image"),
        (annotation(obj(box=(0, 1, 10, 10))), "outside"),
        (annotation(obj(box=(10, 10, 10, 20))), "empty"),
        (annotation(obj(box=(1, 1, "nan", 20))), "expected a number"),
        (annotation(obj(difficult="2")), "expected 0 or 1"),
        (annotation(width="500.5"), "whole number"),
        (annotation(width="0"), "not positive"),
        (annotation("<object><name>dog</name></object>"), "no <bndbox>"),
        ("<annotation><size><width>5</width></size></annotation>", "<height> missing"),
    ],
)
def test_bad_annotation_raises_error_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(VOCFormatError, match=message) as caught:
        parse_annotation(path)
    assert str(caught.value).startswith(str(path))
    assert isinstance(caught.value, DataError) and isinstance(caught.value, ValueError)


def test_missing_annotation_names_the_file(tmp_path):
    with pytest.raises(VOCFormatError, match="000009.xml: annotation file missing"):
        parse_annotation(tmp_path / "000009.xml")


def split_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return tmp_path / "VOCdevkit"


def test_split_ids_are_read_in_file_order_skipping_blank_lines(tmp_path):
    assert read_split(split_file(tmp_path, "000005\n\n000001\r\n2008_000002\n")) == [
        "000005", "000001", "2008_000002",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no image ids"),
        ("000001\n000001\n", "twice: 000001"),
        ("000001\n../../etc/passwd\n", "entry 2"),
        ("000001 -1\n", "entry 1"),
    ],
)
def test_bad_split_file_raises_error_naming_it(tmp_path, text, message):
    devkit = split_file(tmp_path, text)
    with pytest.raises(VOCFormatError, match=message) as caught:
        read_split(devkit)
    assert "test.txt" in str(caught.value)


def test_missing_split_file_suggests_the_devkit_layout(tmp_path):
    with pytest.raises(VOCFormatError, match="is .* a VOCdevkit directory"):
        load_split(tmp_path)
