"""Real photos from Debian packages, fetched with apt-get into a cache on first use.

- tuxpaint-stamps-default: photos and drawings of the same ImageNet class (strawberries), two
  visually different groups of one class (the styles test).
- scratch: scene backgrounds (CC-BY-SA), e.g. a grass playing field for object insertion.
- kphotoalbum, palapeli-data, tuxpaint-data: Table 1's held-out photos (HELD_OUT, GPL-2+): a
  person, a dog, ..., a castle, a bee, a lighthouse; no setting was tried on them, and they are
  in no patch database (docs/evaluation.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

PACKAGES = {
    "tuxpaint-stamps-default": ("usr/share/tuxpaint/stamps", (
        "food/fruit/strawberry.png",
        "food/fruit/Strawberry2.png",
        "food/fruit/cartoon/strawberry.png",
    )),
    "scratch": ("usr/share/scratch/Media/Backgrounds", ("Sports/playing-field.jpg",)),
    "kphotoalbum": ("usr/share/kphotoalbum/demo", (
        "anne_helene.jpg", "blackie.jpg", "cold_water.jpg", "wayne.jpg")),
    "palapeli-data": ("usr/share/palapeli/collection", (
        "castle-maintenon.jpg", "citrus-fruits.jpg", "european-honey-bee.jpg")),
    "tuxpaint-data": ("usr/share/tuxpaint/templates", (
        "jellyfish.jpg", "lighthouse.jpg", "trees_at_dusk.jpg")),
}

# Table 1's ten held-out photos, chosen from the held-out list of docs/evaluation.md by their
# subjects (people, a dog, buildings, animals, fruit, a landscape) before any inversion ran on them.
HELD_OUT = tuple((package, name) for package in ("kphotoalbum", "palapeli-data", "tuxpaint-data")
                 for name in PACKAGES[package][1])


def cache_dir(package: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "stylefill" / "test-data" / package


@contextmanager
def _unpacked(package: str):
    """The package's .deb, downloaded with apt-get and unpacked into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob(f"{package}_*.deb"))
        if got.returncode != 0 or not debs:
            raise RuntimeError(f"cannot fetch {package} with apt-get: {got.stderr.strip()[-300:]}")
        out = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(out)], check=True)
        yield out


def fetch(package: str) -> Path:
    """The package's data folder with its listed files present, downloading the .deb if needed."""
    inner, files = PACKAGES[package]
    root = cache_dir(package) / inner
    if all((root / f).is_file() for f in files):
        return root
    with _unpacked(package) as out:
        for f in files:
            dest = root / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + f".{os.getpid()}.part")
            shutil.copy2(out / inner / f, part)
            part.replace(dest)  # a copy cut short is never taken for the file
    return root


def fetch_all(package: str) -> Path:
    """The package's whole data folder (e.g. all 61 scratch backgrounds, for a large database)."""
    inner, _ = PACKAGES[package]
    root = cache_dir(package) / inner
    done = root / ".complete"
    if not done.is_file():
        with _unpacked(package) as out:
            shutil.copytree(out / inner, root, dirs_exist_ok=True)
        done.touch()
    return root
