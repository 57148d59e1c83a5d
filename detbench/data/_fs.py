"""File-system helpers: md5 of a file, bounded reads, and directories that appear only complete."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from detbench.data.errors import DataError


def file_md5(path: Path | str, chunk: int = 1 << 20) -> str:
    """The hex md5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_bounded(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    A FIFO, device or socket (also behind a symlink) is refused before anything is read, and a
    file larger than ``limit`` is refused: neither can hang a check or exhaust memory. Refusals
    are ``OSError`` with the reason as message (``FileNotFoundError`` for a missing file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "FIFO" if stat.S_ISFIFO(info.st_mode) else "device, socket or directory"
            raise OSError(f"not a regular file but a {kind}")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"larger than the {limit >> 20} MiB allowed")
    return data


def already_made(devkit: Path, marker: str, meta: dict, what: str) -> bool:
    """Whether ``devkit`` already holds the generated set ``meta`` (its ``marker`` file says so):
    True if so, False if it is absent or empty; any other content raises :class:`DataError`
    (``what`` names the set) and is left untouched."""
    if not devkit.exists() or is_empty_dir(devkit):
        return False
    marker_path = devkit / marker
    if marker_path.is_file() and json.loads(marker_path.read_text()) == meta:
        return True
    raise DataError(f"{devkit}: already exists and is not {what}; remove it and rerun")


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


@contextmanager
def staging(dest: Path) -> Iterator[Path]:
    """A fresh temporary directory beside ``dest`` (same file system, so a rename is atomic).

    It is removed when the block ends, whether it succeeded or raised (``KeyboardInterrupt``
    included), so an interrupted job leaves nothing behind. Publish results from inside the
    block with :func:`publish`.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(src: Path, dest: Path) -> None:
    """Rename the finished directory ``src`` to ``dest`` in one step.

    An empty directory at ``dest`` is replaced (Snakemake creates ``directory()`` outputs and
    output parents before a job runs); anything else there is an error, never overwritten.
    """
    if is_empty_dir(dest):
        dest.rmdir()
    try:
        os.rename(src, dest)
    except OSError as exc:
        raise DataError(
            f"{dest}: cannot move the finished directory into place ({exc.strerror}); "
            "if it already exists, remove it and rerun"
        ) from None
