"""File-system helpers: md5 of a file, and directories that appear only complete."""

from __future__ import annotations

import hashlib
import os
import shutil
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
