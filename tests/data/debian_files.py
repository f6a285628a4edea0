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
    )),
}


def cache_dir(package: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "stylefill" / "test-data" / package


def fetch(package: str) -> Path:
    """The package's data folder with its listed files present, downloading the .deb if needed."""
    inner, files = PACKAGES[package]
    root = cache_dir(package) / inner
    if all((root / f).is_file() for f in files):
        return root
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob(f"{package}_*.deb"))
        if got.returncode != 0 or not debs:
            raise RuntimeError(f"cannot fetch {package} with apt-get: {got.stderr.strip()[-300:]}")
        out = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(out)], check=True)
        for f in files:
            dest = root / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / inner / f, dest)
    return root
