"""Download the VOC tar from its mirrors, resumably, and verify it before anyone uses it.

Why not pooch: pooch 1.9 (``pooch.retrieve`` / ``HTTPDownloader``) streams each attempt into a
fresh random temporary file that it deletes on failure, and sends no ``Range`` header, so an
interrupted 450 MB download always starts again from byte 0. Resuming is what the issue asks
for, so this module streams with ``urllib`` into ``<dest>.part``: a later attempt (in this call
or the next run) asks for the rest with ``Range: bytes=N-`` and appends when the server answers
``206``, or starts over when it answers ``200`` (no Range support). The md5 is checked on the
whole ``.part`` file and only then is it renamed to ``dest``; a mismatching file is removed.

Mirrors are tried in order. Within one mirror a download cut off mid-body, a timeout or a 5xx
answer is retried (resuming) up to ``attempts`` times; a 4xx answer or an unreachable host moves
on to the next mirror at once. When every mirror fails the error lists each URL with its reason;
when none could be reached at all it is an :class:`OfflineError` that names the offline config
keys.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from detbench.data._fs import file_md5
from detbench.data.errors import OFFLINE_HINT, ChecksumError, DownloadError, OfflineError

log = logging.getLogger(__name__)
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Unreachable(Exception):
    """No HTTP answer at all (DNS failure, connection refused, no route)."""


class _Failed(Exception):
    """The server answered, but the file could not be had from it."""


class _Retry(Exception):
    """A transient failure: try the same mirror again, resuming what was received."""


def fetch_voc(
    urls: list[str],
    md5: str,
    dest: Path,
    progress: bool = True,
    *,
    attempts: int = 3,
    timeout: float = 60.0,
    backoff_s: float = 2.0,
) -> Path:
    """Download ``dest`` from the first mirror in ``urls`` that serves a file with this md5.

    Returns ``dest``, which exists only once its md5 matched. If ``dest`` already exists with the
    right md5 nothing is downloaded; with another md5 it is left alone and :class:`ChecksumError`
    raised. A ``<dest>.part`` file left by an interrupted run is resumed. ``attempts`` is the
    number of tries per mirror, ``timeout`` the socket timeout in seconds, ``backoff_s`` the pause
    before the n-th retry (times n).

    Raises :class:`ChecksumError` when every mirror served a file with the wrong md5 (the file
    is removed), :class:`OfflineError` when no mirror could be reached, and
    :class:`DownloadError` (listing each URL and reason) when every mirror failed otherwise.
    """
    dest, md5 = Path(dest), md5.strip().lower()
    if dest.exists():
        actual = file_md5(dest)
        if actual == md5:
            return dest
        raise ChecksumError(
            dest,
            md5,
            actual,
            removed=False,
            hint="It was not written by this download; remove it (or fix `voc.md5`) and rerun.",
        )
    if not urls:
        raise DownloadError(f"no URL to download {dest.name} from; set `voc.urls`. {OFFLINE_HINT}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[tuple[str, str]] = []
    mismatches: list[ChecksumError] = []
    reached = False
    for url in urls:
        try:
            _fetch_verified(url, md5, part, attempts, timeout, backoff_s, progress)
        except _Unreachable as exc:
            failures.append((url, f"unreachable ({exc})"))
            continue
        except _Failed as exc:
            reached = True
            failures.append((url, str(exc)))
            continue
        except ChecksumError as exc:
            reached = True
            mismatches.append(exc)
            reason = f"md5 mismatch: expected {exc.expected}, got {exc.actual}; file removed"
            failures.append((url, reason))
            continue
        os.replace(part, dest)
        return dest
    listing = "\n".join(f"  {url}: {reason}" for url, reason in failures)
    if mismatches and len(mismatches) == len(failures):
        last = mismatches[-1]
        raise ChecksumError(
            dest,
            last.expected,
            last.actual,
            removed=True,
            hint=f"Every mirror served a file with the wrong md5:\n{listing}\n"
            "Check `voc.md5` and `voc.urls`.",
        )
    kept = f"\nThe partial file {part} is kept; a rerun resumes it." if part.exists() else ""
    if not reached:
        raise OfflineError(
            f"no network: could not reach any mirror of {dest.name}:\n{listing}{kept}\n"
            f"{OFFLINE_HINT}",
            failures,
        )
    raise DownloadError(
        f"could not download {dest.name} from any of {len(urls)} mirror(s):\n{listing}{kept}\n"
        f"Check `voc.urls`, or: {OFFLINE_HINT}",
        failures,
    )


def _fetch_verified(url, md5, part, attempts, timeout, backoff_s, progress) -> None:
    """Fetch ``url`` into ``part`` until it is complete and its md5 matches.

    A mismatch after resuming bytes left by an earlier try could be the old bytes' fault, so the
    file is then fetched once more from byte 0 before the mirror is blamed.
    """
    resumed = part.exists() and part.stat().st_size > 0
    _fetch(url, part, attempts, timeout, backoff_s, progress)
    actual = file_md5(part)
    if actual != md5 and resumed:
        log.warning(
            "%s: md5 mismatch after resuming; downloading %s again from the start", part, url
        )
        part.unlink()
        _fetch(url, part, attempts, timeout, backoff_s, progress)
        actual = file_md5(part)
    if actual != md5:
        part.unlink()
        raise ChecksumError(part, md5, actual, removed=True)


def _fetch(url, part, attempts, timeout, backoff_s, progress) -> None:
    """Complete ``part`` from ``url``, retrying transient failures up to ``attempts`` times."""
    if not url.lower().startswith(("http://", "https://")):
        raise _Failed("not an http(s) URL; for a tar on disk set `voc.archive` instead")
    reason = ""
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            log.warning("%s: %s; retrying (%d/%d)", url, reason, attempt, attempts)
            time.sleep(backoff_s * (attempt - 1))
        try:
            _fetch_once(url, part, timeout, progress)
            return
        except _Retry as exc:
            reason = str(exc)
    size = part.stat().st_size if part.exists() else 0
    kept = f", {size} bytes kept" if size else ""
    raise _Failed(f"{reason} (gave up after {attempts} attempts{kept})")


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One request: append the missing bytes to ``part`` (or rewrite it on a ``200`` answer)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "detbench (Python urllib)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return  # nothing left to send: ``part`` is complete, or its md5 will say otherwise
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise _Failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _Retry(f"timed out after {timeout:g} s") from None
        raise _Unreachable(str(exc.reason)) from None
    except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
        raise _Retry(f"{type(exc).__name__}: {exc}") from None
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if not match or int(match[1]) != offset:
                part.unlink()
                raise _Retry(
                    f"server sent Content-Range {response.headers.get('Content-Range')!r}"
                    f" for a request from byte {offset}; starting over"
                )
            total = None if match[3] == "*" else int(match[3])
            mode = "ab"
            log.info("%s: resuming at byte %d", url, offset)
        elif response.status == 200:
            if offset:
                log.info("%s: server ignores Range; downloading from byte 0", url)
            offset, total, mode = 0, length, "wb"
        else:
            raise _Failed(f"unexpected HTTP {response.status} {response.reason}")
        received = 0
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        )
        with bar, open(part, mode) as out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(
                        f"connection lost after byte {offset + received} "
                        f"({type(exc).__name__}: {exc})"
                    ) from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if length is not None and received < length:
        raise _Retry(f"connection closed after byte {offset + received} of {offset + length}")
