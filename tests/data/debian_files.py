"""Real photos from Debian packages, fetched with apt-get into a cache on first use.

- tuxpaint-stamps-default: photos and drawings of the same ImageNet class (strawberries), two
  visually different groups of one class (the styles test).
- scratch: scene backgrounds (CC-BY-SA), e.g. a grass playing field for object insertion.
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
    "scratch": ("usr/share/scratch/Media/Backgrounds", (
        "Sports/playing-field.jpg",
        "Nature/garden-rock.jpg",
    ) + tuple(f"{d}/{name}.jpg" for d, name in (
        ("Outdoors", "pool"), ("Indoors", "room1"), ("Indoors", "room2"), ("Indoors", "room3"),
        ("Outdoors", "route66"), ("Outdoors", "school2"), ("Outdoors", "silos"),
        ("Indoors", "spotlight-stage"), ("Sports", "tennis-backboard"),
        ("Indoors", "the-movies-inside"),
    ))),
}

# Scenes 43-52 of the 61 backgrounds in name order (pool ... the-movies-inside), a block fixed
# before any inversion ran on them: the fresh photos of Table 1's check (tests/optvis/test_recipes.py).
FRESH_SCENES = PACKAGES["scratch"][1][2:]


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
            shutil.copy2(out / inner / f, dest)
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
