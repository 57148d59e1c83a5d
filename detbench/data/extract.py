"""Safe, all-or-nothing extraction of a VOC devkit tar.

Every member is checked before anything is written: absolute paths, ``..`` components, symbolic
or hard links whose target leaves the devkit, devices, FIFOs and any other special member are
refused, and the error lists each such member by name. Members must all live under the tar's
top folder ``VOCdevkit/``. These checks read names lexically; Python's ``tarfile`` ``data``
filter (3.11.4+) then guards the extraction on disk, resolving links already written, which
catches chains such as ``a -> ..`` then ``b -> a/../../x`` (it also drops set-uid bits). Neither
would do alone: the filter silently strips a leading ``/`` instead of refusing the member.

The tar is extracted into a temporary directory beside the destination and its ``VOCdevkit/``
renamed into place, so the destination appears only complete; an interrupted or failed
extraction leaves nothing there. A small ``.detbench-extracted.json`` inside the result marks it
complete, so a rerun is a no-op.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from pathlib import Path

from tqdm import tqdm

from detbench.data._fs import file_md5, is_empty_dir, publish, staging
from detbench.data.errors import ArchiveError, ChecksumError, UnsafeArchiveError

TOP = "VOCdevkit"
MARKER = ".detbench-extracted.json"


def extract_voc_tar(
    archive: Path, dest_devkit: Path, md5: str | None = None, *, progress: bool = True
) -> Path:
    """Extract ``archive`` (a tar whose top folder is ``VOCdevkit/``) to ``dest_devkit``.

    ``dest_devkit`` is the directory that receives the tar's ``VOCdevkit/`` (it may have another
    name). Returns ``dest_devkit``. If ``md5`` is given the archive is verified first; a mismatch
    raises :class:`ChecksumError` and leaves the archive in place (it may be the user's own copy).
    An existing empty ``dest_devkit`` (Snakemake pre-creates directories) is replaced; one already
    completed by this function is returned untouched; anything else there raises
    :class:`ArchiveError`. Unsafe members raise :class:`UnsafeArchiveError`, a corrupt tar
    :class:`ArchiveError`; in both cases nothing is written to ``dest_devkit``.
    """
    archive, dest = Path(archive), Path(dest_devkit)
    if dest.exists() and not is_empty_dir(dest):
        if (dest / MARKER).is_file():
            return dest
        raise ArchiveError(
            f"{dest}: exists but is not a finished extraction of {archive.name}; remove it and "
            "rerun, or set `voc.root` to use an extracted VOCdevkit as it is"
        )
    if not archive.is_file():
        raise ArchiveError(f"{archive}: archive not found; check `voc.archive`")
    if md5:
        expected, actual = md5.strip().lower(), file_md5(archive)
        if actual != expected:
            raise ChecksumError(
                archive,
                expected,
                actual,
                removed=False,
                hint="The archive is damaged or not the expected one; replace it, or fix "
                "`voc.md5`.",
            )
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{archive}: not a readable tar archive ({exc})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(
                f"{archive}: damaged tar archive ({exc}); nothing extracted"
            ) from None
        check_members(members, archive)
        with staging(dest) as tmp:
            bar = tqdm(members, unit="file", desc=f"extract {archive.name}", disable=not progress)
            done, current = 0, ""

            def counted():
                nonlocal done, current
                for member in bar:
                    current = member.name
                    yield member
                    done += 1

            try:
                tar.extractall(tmp, members=counted(), filter="data")
            except tarfile.FilterError as exc:
                name = exc.tarinfo.name
                raise UnsafeArchiveError(
                    f"{archive}: member {name!r} refused ({exc}); nothing extracted", [name]
                ) from None
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ArchiveError(
                    f"{archive}: extracting member {current!r} failed ({exc}) after {done} of "
                    f"{len(members)} members; nothing was left at {dest}"
                ) from None
            finally:
                bar.close()
            root = tmp / TOP
            marker = {"archive": archive.name, "md5": md5, "members": len(members)}
            (root / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
            publish(root, dest)
    return dest


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` may not be extracted under ``VOCdevkit/``, or ``None`` if it may."""
    name = member.name
    if name.startswith(("/", "\\")) or posixpath.isabs(name) or name[1:2] == ":":
        return "absolute path"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return "path contains '..'"
    if not parts or parts[0] != TOP:
        return f"outside the archive's top folder {TOP}/"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hard link"
        target = member.linkname
        if target.startswith("/") or posixpath.isabs(target):
            return f"{kind} to the absolute path {target!r}"
        base = posixpath.dirname("/".join(parts)) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved.split("/")[0] != TOP:
            return f"{kind} to {target!r}, outside the destination"
        return None
    if not (member.isfile() or member.isdir()):
        return f"unsupported member type {member.type!r}"
    return None


def check_members(members: list[tarfile.TarInfo], archive: Path | str = "archive") -> None:
    """Raise :class:`UnsafeArchiveError` listing every member :func:`member_problem` refuses."""
    bad = [(m.name, problem) for m in members if (problem := member_problem(m))]
    if not members:
        raise ArchiveError(f"{archive}: empty tar archive")
    if bad:
        listing = "\n".join(f"  {name!r}: {problem}" for name, problem in bad)
        raise UnsafeArchiveError(
            f"{archive}: refusing to extract {len(bad)} unsafe member(s):\n{listing}\n"
            "This is not a genuine VOC devkit tar; nothing was extracted.",
            [name for name, _ in bad],
        )
