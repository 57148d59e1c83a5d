"""detbench.files: atomic writes that readers see whole, with the mode the umask gives."""

from __future__ import annotations

import json
import os
import stat

import pytest

from detbench.files import write_json_atomic, write_text_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_are_readable_by_others_under_umask_022(tmp_path, umask_022):
    written = [
        write_text_atomic(tmp_path / "summary.csv", "a,b\n1,2\n"),
        write_json_atomic(tmp_path / "map.json", {"mAP": None}),
    ]
    assert [mode(p) for p in written] == [0o644, 0o644]
    assert json.loads(written[1].read_text()) == {"mAP": None}
    assert list(tmp_path.glob(".*.tmp")) == []


def test_atomic_files_follow_a_strict_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = write_text_atomic(tmp_path / "dataset.json", "{}\n")
    finally:
        os.umask(old)
    assert mode(path) == 0o600
