"""Small helpers shared by the engine, HTTP and GIMP tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_models(folder: Path) -> Path:
    """A fresh models dir (styles learned by a test stay out of the user's cache) that shares
    the usual one's weights and patch databases, which take long to build."""
    from stylefill.paths import models_dir

    folder.mkdir(parents=True, exist_ok=True)
    for shared in ("weights", "patchdb"):
        (models_dir() / shared).mkdir(exist_ok=True)
        if not (folder / shared).exists():
            (folder / shared).symlink_to(models_dir() / shared, target_is_directory=True)
    return folder
