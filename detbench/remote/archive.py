"""The runner archive sent to a device: the modules ``python -m detbench.runner`` imports.

One gzip'd tar, byte-for-byte reproducible (sorted members, fixed times and owners), named by
its sha256 so a device unpacks each version of the runner once.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


def runner_files() -> list[Path]:
    """``detbench/__init__.py``, every top-level module the runner imports (``zoo.py``,
    ``contract.py``) and ``detbench/runner/*.py``, relative to the repository root."""
    top = [PACKAGE / "__init__.py", PACKAGE / "zoo.py", PACKAGE / "contract.py"]
    return sorted(p.relative_to(PACKAGE.parent) for p in [*top, *PACKAGE.glob("runner/*.py")])


@functools.cache
def runner_archive() -> tuple[bytes, str]:
    """(archive bytes, sha256 hex digest) of :func:`runner_files`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in runner_files():
            data = (PACKAGE.parent / rel).read_bytes()
            info = tarfile.TarInfo(rel.as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(raw.getvalue(), mtime=0)
    return packed, hashlib.sha256(packed).hexdigest()
