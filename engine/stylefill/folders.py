"""The folders of the engine's machine that HTTP requests may name (docs/protocol.md, "Folders").

A client of the HTTP engine (a web page that learned the token, a remote user) must not read or
write anywhere the engine's user can: paths it sends are resolved (symlinks followed) and must
lie under one of the allowed folders, `stylefill serve --folders` (default: the user's home on
a loopback engine, none on a network one). Every refusal says "not allowed or not found", so an
answer never tells whether something outside exists; answers name files relative to their
folder, never by an absolute path of the engine's machine. The CLI has no such policy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import InputError
from .progress import Cancel, check

HINT = ("the engine reads and writes only inside the folders it allows (`stylefill serve "
        "--folders DIR...`; by default the home folder of a local engine)")


class Folders:
    """The allowed folders, as real paths; the first one is where relative paths start. Paths
    in answers are shown relative to them, and to the folders `also` (the models dir)."""

    def __init__(self, roots: Iterable[str | Path], also: Iterable[str | Path] = ()):
        self.roots = tuple(Path(os.path.realpath(os.path.expanduser(r))) for r in roots)
        bases = {*self.roots, *(Path(os.path.realpath(a)) for a in also)}
        self._bases = sorted(bases, key=lambda p: -len(str(p)))  # the deepest first

    def resolve(self, value: str, label: str, *, write: bool = False) -> Path:
        """`value` as a real path inside an allowed folder; one that must exist (to read) or
        whose folder is allowed (to write). InputError otherwise, the same for every reason."""
        try:
            path = Path(value) if os.path.isabs(value) else self.roots[0] / value
            real = Path(os.path.realpath(path))
        except (IndexError, ValueError):  # no folder allowed; a NUL byte in the path
            raise self._refused(value, label) from None
        if not self.contains(real) or not (write or os.path.exists(real)):
            raise self._refused(value, label)
        return real

    def check_tree(self, folder: Path, label: str, cancel: Cancel | None = None) -> None:
        """Refuse a folder that holds a link leading out of the allowed folders (the readers
        list files recursively and would follow it)."""
        for parent, dirs, files in os.walk(folder):
            check(cancel, "while checking the folder")
            for name in dirs + files:
                path = os.path.join(parent, name)
                if os.path.islink(path) and not self.contains(Path(os.path.realpath(path))):
                    raise InputError(f"{label}: {self.show(path)} is a link to a place that is "
                                     f"not allowed or not found; {HINT}")

    def contains(self, real: Path) -> bool:
        return any(real.is_relative_to(root) for root in self.roots)

    def show(self, text: str) -> str:
        """`text` with the folders left out of the paths in it: files named relative to their
        folder."""
        for base in self._bases:
            text = re.sub(re.escape(str(base)) + r"(/|(?![\w.-]))",
                          lambda m: "" if m.group(1) else ".", text)
        return text

    def shown(self, value: Any) -> Any:
        """A JSON value with `show` applied to its strings; an absolute path outside every
        folder is reduced to its file name."""
        if isinstance(value, str):
            text = self.show(value)
            return os.path.basename(text) if os.path.isabs(text) else text
        if isinstance(value, dict):
            return {k: self.shown(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.shown(v) for v in value]
        return value

    def _refused(self, value: str, label: str) -> InputError:
        return InputError(f"{label} '{value}': not allowed or not found; {HINT}")
