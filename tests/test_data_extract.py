"""extract_voc_tar: safe, all-or-nothing extraction of tars built here."""

from __future__ import annotations

import hashlib
import io
import posixpath
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detbench.data import extract
from detbench.data.check import check_dataset
from detbench.data.errors import ArchiveError, ChecksumError, UnsafeArchiveError
from detbench.data.extract import extract_voc_tar, member_problem
from detbench.data.synthetic import make_synthetic_voc


def make_tar(path: Path, members: list[tuple[str, str, str | bytes]]) -> Path:
    """A tar of ``(kind, name, payload)``: kind file/dir/symlink/hardlink/fifo/chr/blk;
    payload is the file's bytes or the link's target."""
    types = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
             "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}  # fmt: skip
    with tarfile.open(path, "w") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = types[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
            tar.addfile(info)
    return path


GOOD = [
    ("dir", "VOCdevkit", ""),
    ("dir", "VOCdevkit/VOC2007", ""),
    ("file", "VOCdevkit/VOC2007/readme.txt", b"hello"),
]


def leftovers(parent: Path) -> list[str]:
    """Hidden entries (staging directories) left in ``parent``."""
    if not parent.exists():
        return []
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture
def devkit_tar(tmp_path) -> Path:
    make_synthetic_voc(tmp_path / "src" / "VOCdevkit", images=6, seed=1)
    archive = tmp_path / "VOCtest.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "src" / "VOCdevkit", arcname="VOCdevkit")
    return archive


def test_genuine_tar_extracts_to_a_checkable_devkit(devkit_tar, tmp_path):
    dest = tmp_path / "data" / "VOCdevkit"
    md5 = hashlib.md5(devkit_tar.read_bytes()).hexdigest()
    assert extract_voc_tar(devkit_tar, dest, md5, progress=False) == dest
    source = tmp_path / "src" / "VOCdevkit"
    for path in sorted(source.rglob("*")):
        if path.is_file():
            assert (dest / path.relative_to(source)).read_bytes() == path.read_bytes()
    assert check_dataset(dest, progress=False)["images"] == 6
    assert leftovers(dest.parent) == []


def test_empty_destination_precreated_by_snakemake_is_replaced(devkit_tar, tmp_path):
    dest = tmp_path / "data" / "VOCdevkit"
    dest.mkdir(parents=True)
    extract_voc_tar(devkit_tar, dest, progress=False)
    assert (dest / "VOC2007" / "ImageSets" / "Main" / "test.txt").is_file()


def test_rerun_after_complete_extraction_is_a_noop(devkit_tar, tmp_path):
    dest = tmp_path / "VOCdevkit"
    extract_voc_tar(devkit_tar, dest, progress=False)
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    devkit_tar.unlink()
    assert extract_voc_tar(devkit_tar, dest, "0" * 32, progress=False) == dest
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before


def test_foreign_nonempty_destination_is_refused_untouched(devkit_tar, tmp_path):
    dest = tmp_path / "VOCdevkit"
    dest.mkdir()
    (dest / "mine.txt").write_text("user data")
    with pytest.raises(ArchiveError, match="voc.root"):
        extract_voc_tar(devkit_tar, dest, progress=False)
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]


def test_md5_mismatch_keeps_the_archive_and_extracts_nothing(devkit_tar, tmp_path):
    dest = tmp_path / "VOCdevkit"
    with pytest.raises(ChecksumError) as caught:
        extract_voc_tar(devkit_tar, dest, "0" * 32, progress=False)
    actual = hashlib.md5(devkit_tar.read_bytes()).hexdigest()
    assert "0" * 32 in str(caught.value) and actual in str(caught.value)
    assert devkit_tar.is_file() and not caught.value.removed
    assert not dest.exists()


@pytest.mark.parametrize(
    ("kind", "name", "payload", "reason"),
    [
        ("file", "../evil.txt", b"x", "'..'"),
        ("file", "VOCdevkit/../../evil.txt", b"x", "'..'"),
        ("file", "/tmp/detbench-evil.txt", b"x", "absolute path"),
        ("symlink", "VOCdevkit/VOC2007/escape", "../../..", "outside the destination"),
        ("symlink", "VOCdevkit/VOC2007/passwd", "/etc/passwd", "absolute path"),
        ("hardlink", "VOCdevkit/VOC2007/hard", "../outside.txt", "outside the destination"),
        ("fifo", "VOCdevkit/VOC2007/pipe", "", "FIFO"),
        ("chr", "VOCdevkit/VOC2007/null", "", "device"),
        ("blk", "VOCdevkit/VOC2007/sda", "", "device"),
        ("file", "elsewhere/file.txt", b"x", "top folder"),
    ],
)
def test_unsafe_member_is_refused_by_name_and_nothing_written(
    tmp_path, kind, name, payload, reason
):
    archive = make_tar(tmp_path / "bad.tar", [*GOOD, (kind, name, payload)])
    dest = tmp_path / "out" / "VOCdevkit"
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_voc_tar(archive, dest, progress=False)
    assert repr(name) in str(caught.value) and reason in str(caught.value)
    assert caught.value.members == [name]
    assert not dest.exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/detbench-evil.txt").exists()
    assert leftovers(dest.parent) == []


def test_every_unsafe_member_is_listed_in_one_error(tmp_path):
    bad = [
        ("file", "../a.txt", b"x"),
        ("symlink", "VOCdevkit/l", "/etc"),
        ("fifo", "VOCdevkit/f", ""),
    ]
    archive = make_tar(tmp_path / "bad.tar", [*GOOD, *bad])
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_voc_tar(archive, tmp_path / "VOCdevkit", progress=False)
    assert caught.value.members == ["../a.txt", "VOCdevkit/l", "VOCdevkit/f"]


def test_links_inside_the_devkit_are_extracted(tmp_path):
    archive = make_tar(
        tmp_path / "links.tar",
        [*GOOD, ("symlink", "VOCdevkit/VOC2007/soft", "readme.txt"),
         ("hardlink", "VOCdevkit/VOC2007/hard", "VOCdevkit/VOC2007/readme.txt")],
    )  # fmt: skip
    dest = extract_voc_tar(archive, tmp_path / "VOCdevkit", progress=False)
    assert (dest / "VOC2007" / "soft").read_bytes() == b"hello"
    assert (dest / "VOC2007" / "hard").read_bytes() == b"hello"


def test_failure_mid_extraction_leaves_nothing_at_destination(tmp_path):
    archive = make_tar(
        tmp_path / "clash.tar",
        [*GOOD, ("file", "VOCdevkit/VOC2007/a", b"file"), ("file", "VOCdevkit/VOC2007/a/b", b"x")],
    )
    dest = tmp_path / "out" / "VOCdevkit"
    with pytest.raises(ArchiveError, match="'VOCdevkit/VOC2007/a/b' failed .* after 4 of 5"):
        extract_voc_tar(archive, dest, progress=False)
    assert not dest.exists()
    assert leftovers(dest.parent) == []


def test_interrupt_mid_extraction_leaves_nothing_at_destination(devkit_tar, tmp_path, monkeypatch):
    real_tqdm = extract.tqdm

    def interrupting_tqdm(members, **kwargs):
        def interrupted():
            for i, member in enumerate(members):
                if i == 5:
                    raise KeyboardInterrupt
                yield member

        return real_tqdm(interrupted(), **kwargs)

    monkeypatch.setattr(extract, "tqdm", interrupting_tqdm)
    dest = tmp_path / "out" / "VOCdevkit"
    dest.mkdir(parents=True)
    with pytest.raises(KeyboardInterrupt):
        extract_voc_tar(devkit_tar, dest, progress=False)
    assert not any(dest.iterdir())
    assert leftovers(dest.parent) == []


def test_damaged_tar_is_refused_before_extraction(devkit_tar, tmp_path):
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(devkit_tar.read_bytes()[:20000])
    with pytest.raises(ArchiveError, match="damaged.tar"):
        extract_voc_tar(damaged, tmp_path / "VOCdevkit", progress=False)
    assert not (tmp_path / "VOCdevkit").exists()


def test_missing_archive_names_config_key(tmp_path):
    with pytest.raises(ArchiveError, match="voc.archive"):
        extract_voc_tar(tmp_path / "nope.tar", tmp_path / "VOCdevkit", progress=False)


SEGMENTS = st.sampled_from(["VOCdevkit", "VOC2007", "..", ".", "", "a", "/", "b.jpg"])


@given(st.lists(SEGMENTS, min_size=1, max_size=6), st.lists(SEGMENTS, max_size=6))
def test_accepted_members_and_link_targets_stay_inside_the_devkit(name_parts, target_parts):
    name, target = "/".join(name_parts), "/".join(target_parts)
    for kind, linkname in (
        (tarfile.REGTYPE, ""),
        (tarfile.SYMTYPE, target),
        (tarfile.LNKTYPE, target),
    ):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        if member_problem(info) is not None:
            continue
        inside = posixpath.normpath("/dest/" + name)
        assert inside.startswith("/dest/VOCdevkit")
        if kind == tarfile.SYMTYPE:
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(inside), linkname))
            assert resolved.startswith("/dest/VOCdevkit")
        if kind == tarfile.LNKTYPE:
            assert posixpath.normpath("/dest/" + linkname).startswith("/dest/VOCdevkit")


def test_symlink_chain_escaping_only_on_disk_is_caught_by_the_data_filter(tmp_path):
    chain = [
        ("symlink", "VOCdevkit/VOC2007/up", ".."),
        ("symlink", "VOCdevkit/VOC2007/out", "up/../../escaped"),
        ("file", "VOCdevkit/VOC2007/out/evil.txt", b"x"),
    ]
    archive = make_tar(tmp_path / "chain.tar", [*GOOD, *chain])
    dest = tmp_path / "out" / "VOCdevkit"
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_voc_tar(archive, dest, progress=False)
    assert caught.value.members == ["VOCdevkit/VOC2007/out"]
    assert not dest.exists() and leftovers(dest.parent) == []
    assert not list(tmp_path.rglob("evil.txt"))
