"""Real object photos and drawings from Debian's tuxpaint-stamps-default (GPL-2+ / CC),
fetched with apt-get into a cache on first use: photos and cartoons of the same ImageNet
class are two visually different groups of one class (a style test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGE = "tuxpaint-stamps-default"
STAMPS = "usr/share/tuxpaint/stamps"
FILES = (
    "food/fruit/strawberry.png",
    "food/fruit/Strawberry2.png",
    "food/fruit/cartoon/strawberry.png",
)


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "stylefill" / "test-data" / PACKAGE


def stamps() -> Path:
    """The stamps folder with FILES present, downloading and extracting the .deb if needed."""
    root = cache_dir()
    if all((root / STAMPS / f).is_file() for f in FILES):
        return root / STAMPS
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        if got.returncode != 0 or not debs:
            raise RuntimeError(f"cannot fetch {PACKAGE} with apt-get: {got.stderr.strip()[-300:]}")
        out = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(out)], check=True)
        root.mkdir(parents=True, exist_ok=True)
        for f in FILES:
            dest = root / STAMPS / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / STAMPS / f, dest)
    return root / STAMPS
