"""Where Stylefill keeps its cache (weights, patch databases, styles) and how it writes files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def models_dir() -> Path:
    """The models cache: $STYLEFILL_MODELS, else `models/` of a source checkout, else ~/.cache."""
    env = os.environ.get("STYLEFILL_MODELS")
    if env:
        path = Path(env)
    else:
        checkout = Path(__file__).resolve().parents[2] / "models"
        if checkout.is_dir() and os.access(checkout, os.W_OK):
            path = checkout
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            path = base / "stylefill" / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` and move tmp onto `path`, so a crash or full disk never leaves half a file.

    The temporary file keeps the final suffix so writers that pick a format by suffix work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
