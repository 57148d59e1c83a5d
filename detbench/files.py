"""Atomic file writes for the orchestrator: a file appears complete or not at all.

(The device runner keeps its own Python-3.6 writer in ``detbench.runner.run``.)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def umask() -> int:
    """This process's umask (read by setting it and setting it back)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place.

    The file gets the mode an ordinary ``open()`` would give it (0666 less the umask), not
    ``mkstemp``'s 0600, so teammates and web servers can read results as usual."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, obj: dict, *, sort_keys: bool = True) -> Path:
    """``obj`` as indented JSON (NaN refused: it is not JSON), written atomically."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"
    return write_text_atomic(path, text)
