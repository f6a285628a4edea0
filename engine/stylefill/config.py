"""The engine's settings: its config dir, its access token, where it listens, which folders HTTP
requests may name (docs/protocol.md, "Transport and security").

The token keeps other local users' processes and web pages (DNS rebinding) from driving the
engine; only someone who can read the 0600 file in the user's own config dir can.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import StylefillError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765  # the engine's address; the plug-in's side is gimp_plugin/stylefill/client.py


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def allowed_folders(host: str, given: Sequence[str] | None = None) -> list[str]:
    """The folders HTTP requests may name (stylefill.folders): `serve --folders`, else
    $STYLEFILL_FOLDERS (separated by ':'), else the user's home on a loopback engine and none
    on a network one (its clients are other machines, whose users the home is not for)."""
    if given is not None:
        return list(given)
    env = os.environ.get("STYLEFILL_FOLDERS")
    if env is not None:
        return [folder for folder in env.split(os.pathsep) if folder]
    return [str(Path.home())] if is_loopback(host) else []


def config_dir() -> Path:
    """$STYLEFILL_CONFIG, else $XDG_CONFIG_HOME/stylefill, else ~/.config/stylefill."""
    env = os.environ.get("STYLEFILL_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "stylefill"


def token_path() -> Path:
    return config_dir() / "token"


def ensure_token() -> str:
    """The engine token, created on first start (32 random bytes, URL-safe, file mode 0600).

    The file appears complete or not at all (written aside, then hard-linked into place), and
    of two engines starting at once both end up with the one token that won the link.
    """
    path = token_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".token.")
            try:
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    os.fchmod(f.fileno(), 0o600)
                    f.write(secrets.token_urlsafe(32))
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
            finally:
                os.unlink(tmp)
        elif path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # a token others can read protects nothing
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StylefillError(f"{path}: cannot create or read the engine token ({exc})") from None
    if not token:
        raise StylefillError(f"{path}: the engine token file is empty; delete it to make a new one")
    return token
