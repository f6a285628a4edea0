"""Crash-safe sets of files (learned styles, patch databases): replaced as a whole or not at all.

A set lives in its own folder as versions, and a one-line pointer names the complete one:

    <set>/current     the name of the version readers use (replaced atomically: os.replace)
    <set>/v-XXXX/     that version's files
    <set>/.lock       held by the set's one writer while it writes (an OS lock, released when
                      the writer dies, however it dies)

A writer fills a new version beside the current one, syncs it to disk and switches the pointer
in one rename; only then is the previous version removed. A kill or a full disk at any step
leaves the previous version as readers saw it. A dead writer's half-written version, an
unswitched pointer and an old version it had no time to remove are removed when the next
writer of any set in the same parent folder starts (it takes each set's lock first, so a live
writer's work is never touched). A set written before versions existed (its files directly in
<set>/) is read as it is until its first new version replaces it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .errors import StylefillError
from .progress import Cancel, check

POINTER = "current"
LOCK = ".lock"
VERSION = re.compile(r"v-[A-Za-z0-9_]+")
FAULT_ENV = "STYLEFILL_FAULT_AT"
LOCK_POLL = 0.25  # s between tries for a set another writer holds (a cancel is seen meanwhile)
READ_TRIES = 3    # a reader racing that many switches in a row reports what it saw

T = TypeVar("T")

if os.name == "posix":
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
else:  # Windows: the same exclusive lock on the file's first byte
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True


class WriteFailed(StylefillError):
    """The disk refused a write (full, read-only, over quota); the previous set is kept."""


def fault_point(step: str) -> None:
    """Test hook: the process kills itself (SIGKILL) here when $STYLEFILL_FAULT_AT is `step`,
    so tests/test_faults.py can stop a real writer at each of its steps and check what a
    restart finds. Costs one environment lookup."""
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def current(folder: Path) -> Path | None:
    """The folder holding the set's complete files: the version the pointer names, the set
    folder itself when it predates versions, None when there is no set. A pointer that names
    anything but an existing version inside `folder` raises ValueError (damaged)."""
    try:
        name = (folder / POINTER).read_text().strip()
    except FileNotFoundError:
        return folder if folder.is_dir() else None
    except OSError as exc:
        raise ValueError(f"its pointer cannot be read ({exc.strerror})") from None
    version = folder / name
    if not VERSION.fullmatch(name) or version.is_symlink() or not version.is_dir():
        raise ValueError(f"its pointer names '{name[:80]}', which is not a version in {folder}")
    return version


def read(folder: Path, reader: Callable[[Path | None], T]) -> T:
    """`reader(version)` on the current version (None: no set); tried again when a writer
    switched versions while it read (the version it read may be gone meanwhile), so what it
    returns comes from one complete set."""
    for attempt in range(READ_TRIES):
        version = current(folder)
        try:
            return reader(version)
        except Exception:
            if attempt + 1 == READ_TRIES or current(folder) == version:
                raise
    raise AssertionError("unreachable")


@contextmanager
def replacing(folder: Path, kind: str, cancel: Cancel | None = None) -> Iterator[Path]:
    """A new, empty version of the set in `folder` to write into; it becomes the current one
    in one atomic step when the block ends without error. `kind` names the set in fault
    points ("styles:switched")."""
    folder.mkdir(parents=True, exist_ok=True)
    with _writer_lock(folder, cancel):
        clean(folder.parent, held=folder)
        new = Path(tempfile.mkdtemp(prefix="v-", dir=folder))
        fault_point(f"{kind}:begun")
        try:
            yield new
            fault_point(f"{kind}:written")
            _sync(new)
            _switch(folder, new, kind)
        except BaseException as exc:
            if _pointed_at(folder, new):  # the switch itself was done: keep the new set
                raise
            shutil.rmtree(new, ignore_errors=True)
            if isinstance(exc, OSError):
                raise WriteFailed(f"could not write {folder}: {exc.strerror or exc}; "
                                  "its previous version is kept") from exc
            raise
        sweep(folder, kind)


def remove(folder: Path) -> None:
    """Delete a whole set (its writer lock first taken, so no writer is cut off)."""
    if folder.exists():
        with _writer_lock(folder, None):
            shutil.rmtree(folder)


def sweep(folder: Path, kind: str = "") -> None:
    """Remove what no reader can reach: every entry but the lock, the pointer and the version
    it names (the writer lock must be held). Without a pointer (a set from before versions, or
    none yet) only dead writers' versions and unswitched pointers go."""
    try:
        keep = current(folder)
    except ValueError:
        return  # a damaged pointer: its load reports it, and the next write replaces it
    pointed = (folder / POINTER).exists()
    for entry in sorted(folder.iterdir()):
        if entry.name in (LOCK, POINTER) or entry == keep:
            continue
        if pointed or VERSION.fullmatch(entry.name) or entry.name.startswith(f".{POINTER}."):
            _delete(entry)
            fault_point(f"{kind}:cleaning")


@contextmanager
def _writer_lock(folder: Path, cancel: Cancel | None) -> Iterator[None]:
    """The set's writer lock, waited for while another writer holds it."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while not _try_lock(fd):
            check(cancel, f"while waiting for another writer of {folder}")
            time.sleep(LOCK_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock


def _pointed_at(folder: Path, version: Path) -> bool:
    try:
        return current(folder) == version
    except ValueError:
        return False


def clean(parent: Path, held: Path | None = None) -> None:
    """Remove dead writers' leftovers from every set in `parent` that no live writer holds
    (`held`: the set whose lock the caller holds). Writers do this when they start."""
    for other in sorted(parent.iterdir()):
        if other == held:
            sweep(other)
            continue
        if not other.is_dir() or other.is_symlink():
            continue
        try:
            fd = os.open(other / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue  # not ours to clean (read-only)
        try:
            if _try_lock(fd):
                sweep(other)
        finally:
            os.close(fd)


def _switch(folder: Path, new: Path, kind: str) -> None:
    """Point `folder` at `new` with one rename of a freshly written pointer file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{POINTER}.", dir=folder)
    with os.fdopen(fd, "w") as out:
        out.write(new.name + "\n")
        out.flush()
        os.fsync(out.fileno())
    fault_point(f"{kind}:pointed")
    os.replace(tmp, folder / POINTER)
    _fsync_dir(folder)
    fault_point(f"{kind}:switched")


def _sync(version: Path) -> None:
    """Everything in the version on disk before the pointer names it (a power cut then
    cannot leave a pointer to files the disk never got)."""
    for path in version.rglob("*"):
        if path.is_file():
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
    _fsync_dir(version)


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _delete(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        try:
            entry.unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
