"""The data layer's errors, defined once.

Every error is an ordinary exception (never ``SystemExit``: Snakemake's scheduler can hang on one)
whose message names the file, member or URL at fault and says how to fix it. Catch
:class:`DataError` to catch them all.

    DataError
    ├── DownloadError          every mirror failed; ``failures`` lists (url, reason) per mirror
    │   └── OfflineError       no mirror could even be reached: suggests the offline config keys
    ├── ChecksumError          md5 mismatch; ``expected``, ``actual``, ``path``, ``removed``
    ├── ArchiveError           not a readable VOC tar, or extraction failed
    │   └── UnsafeArchiveError a member would escape the destination or is a device/FIFO
    ├── VOCFormatError         one VOC file is missing or malformed (also a ``ValueError``)
    └── DatasetError           a dataset check found problems; ``problems`` lists every one
"""

from __future__ import annotations

from pathlib import Path

from detbench.contract import DetbenchError

OFFLINE_HINT = (
    "To work without a download, set `voc.archive` to a local VOCtest_06-Nov-2007.tar, or "
    "`voc.root` to an extracted VOCdevkit directory, or run the offline demo with "
    "`--configfile config/demo.yaml`."
)


class DataError(DetbenchError):
    """Base class of every error raised by :mod:`detbench.data`."""


class DownloadError(DataError):
    """Every mirror failed; ``failures`` holds ``(url, reason)`` for each one, in order tried."""

    def __init__(self, message: str, failures: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.failures = list(failures or [])


class OfflineError(DownloadError):
    """No mirror could be reached at all (no network, DNS failure, connection refused)."""


class ChecksumError(DataError):
    """A file's md5 differs from the expected one.

    ``removed`` says whether the file was deleted (a download is; a user's own archive never is).
    """

    def __init__(self, path: Path | str, expected: str, actual: str, removed: bool, hint: str = ""):
        self.path, self.expected, self.actual, self.removed = Path(path), expected, actual, removed
        fate = "the file was removed" if removed else "the file was left in place"
        message = f"{path}: md5 mismatch: expected {expected}, got {actual}; {fate}."
        super().__init__(f"{message} {hint}".strip())


class ArchiveError(DataError):
    """An archive cannot be read or extracted as a VOC devkit tar."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the destination, or is a device or FIFO.

    ``members`` lists the offending member names.
    """

    def __init__(self, message: str, members: list[str] | None = None):
        super().__init__(message)
        self.members = list(members or [])


class VOCFormatError(DataError, ValueError):
    """A VOC file is missing or malformed; the message names the file."""


class DatasetError(DataError):
    """A dataset check failed; ``problems`` holds one ``"<file>: <reason>"`` line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])
