#!/usr/bin/env python3
"""Install (or uninstall) the Stylefill GIMP 3 plug-in into the user's GIMP profiles.

Standard library only, so the same script serves Linux, macOS and Windows (install.sh and
install.ps1 call it). It copies gimp_plugin/stylefill/ to <profile>/plug-ins/stylefill/,
writes stylefill.json there (engine URL, token, how to start the engine) and a manifest of
exactly what it wrote, which `uninstall` reads back.

    python3 install/gimp_plugin.py install [--gimp-dir DIR] [--venv VENV] [--url URL]
                                           [--token TOKEN | --token-file FILE]
    python3 install/gimp_plugin.py uninstall [--gimp-dir DIR]
    python3 install/gimp_plugin.py detect     # list the GIMP 3 profiles found
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "gimp_plugin" / "stylefill"
PLUGIN = "stylefill"                      # GIMP 3 loads plug-ins/<name>/<name>.py
FILES = {"stylefill.py": 0o755, "client.py": 0o644, "dialogs.py": 0o644}
CONFIG = "stylefill.json"
MANIFEST = ".stylefill-install-manifest.json"
FLATPAK_ID = "org.gimp.GIMP"


def _plugin_client():
    """The plug-in's own client.py (stdlib only): the engine's default address, what counts as
    local and where the engine keeps its token are written down there once."""
    spec = importlib.util.spec_from_file_location("stylefill_plugin_client", SOURCE / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLIENT = _plugin_client()
DEFAULT_URL = CLIENT.DEFAULT_URL


def home() -> Path:
    return Path(os.path.expanduser("~"))


def profiles() -> list[tuple[str, Path]]:
    """(kind, GIMP 3 profile dir) for every place GIMP 3 keeps a user profile on this OS."""
    if sys.platform == "darwin":
        return [("macOS", home() / "Library" / "Application Support" / "GIMP" / "3.0")]
    if os.name == "nt":
        appdata = os.environ.get("APPDATA") or str(home() / "AppData" / "Roaming")
        return [("Windows", Path(appdata) / "GIMP" / "3.0")]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(home() / ".config")
    return [("distro", Path(xdg) / "GIMP" / "3.0"),
            ("Flatpak", home() / ".var" / "app" / FLATPAK_ID / "config" / "GIMP" / "3.0"),
            ("Snap", home() / "snap" / "gimp" / "current" / ".config" / "GIMP" / "3.0")]


def _have_flatpak_gimp() -> bool:
    if (home() / ".var" / "app" / FLATPAK_ID).is_dir():
        return True
    if shutil.which("flatpak") is None:
        return False
    try:
        return subprocess.run(["flatpak", "info", FLATPAK_ID], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _have_native_gimp() -> bool:
    names = ("gimp-3.0", "gimp-3", "gimp", "gimp-console-3.0")
    if sys.platform == "darwin":
        return Path("/Applications/GIMP.app").exists() or any(shutil.which(n) for n in names)
    return any(shutil.which(n) for n in names)


def targets(gimp_dir: str | None) -> list[tuple[str, Path]]:
    """Where to install: --gimp-dir, else every existing GIMP 3 profile, else where GIMP 3 is."""
    if gimp_dir:
        path = Path(gimp_dir).expanduser().resolve()
        if path.name == "plug-ins":
            path = path.parent
        kind = "Flatpak" if f"/app/{FLATPAK_ID}/" in path.as_posix() + "/" else "given"
        return [(kind, path)]
    found = [(kind, path) for kind, path in profiles() if path.is_dir()]
    if found:
        return found
    # GIMP 3 never ran yet: its profile appears on first start; create it where GIMP will look.
    all_profiles = dict(profiles())
    out = []
    if _have_native_gimp() or os.name == "nt" or sys.platform == "darwin":
        out.append((profiles()[0][0], profiles()[0][1]))
    if "Flatpak" in all_profiles and _have_flatpak_gimp():
        out.append(("Flatpak", all_profiles["Flatpak"]))
    return out or [profiles()[0]]


def default_token_file() -> Path:
    """The engine's token path, by the engine's own rule (as the plug-in's client finds it)."""
    return Path(CLIENT.default_token_file())


def engine_executable(venv: Path) -> Path:
    return venv / ("Scripts/stylefill.exe" if os.name == "nt" else "bin/stylefill")


def ensure_token(venv: Path | None) -> None:
    """Let the engine create its token now (it would on first start), so it can be copied."""
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python") if venv else None
    if python is None or not python.exists():
        return
    subprocess.run([str(python), "-c", "from stylefill.config import ensure_token; ensure_token()"],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def plugin_config(kind: str, profile: Path, args: argparse.Namespace) -> dict:
    """stylefill.json: where the engine is, its token, and how the plug-in may start it."""
    url = (args.url or DEFAULT_URL).rstrip("/")
    host = urllib.parse.urlsplit(url).hostname or ""
    local = host in CLIENT.LOOPBACK
    port = urllib.parse.urlsplit(url).port or urllib.parse.urlsplit(DEFAULT_URL).port
    cfg: dict = {"url": url}
    token_file = Path(args.token_file).expanduser() if args.token_file else default_token_file()
    if args.token:
        cfg["token"] = args.token
    else:
        cfg["token_file"] = str(token_file)
    if local and args.venv:
        exe = engine_executable(Path(args.venv))
        command = [str(exe), "serve", "--port", str(port)]
        if kind == "Flatpak":
            # The sandbox cannot run the host's venv; flatpak-spawn can, once GIMP may talk to
            # the Flatpak portal (flatpak override --user --talk-name=org.freedesktop.Flatpak).
            command = ["flatpak-spawn", "--host"] + command
            if not args.token and token_file.is_file():
                cfg["token"] = token_file.read_text(encoding="ascii").strip()
                cfg.pop("token_file", None)
        cfg["engine_command"] = command
        env = {k: os.environ[k] for k in ("STYLEFILL_CONFIG", "STYLEFILL_MODELS")
               if os.environ.get(k)}
        if env:
            cfg["engine_env"] = env
        # The sandbox of Flatpak GIMP sees its own ~/.var/app/<id> (same path), not ~/.config.
        log_dir = (profile.parents[2] / "cache" / "stylefill" if kind == "Flatpak"
                   else token_file.parent)
        cfg["engine_log"] = str(log_dir / "engine.log")
    return cfg


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write with the given mode (a reinstall never leaves a half file for GIMP)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_manifest(plugin_dir: Path) -> dict | None:
    try:
        data = json.loads((plugin_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def install_into(kind: str, profile: Path, args: argparse.Namespace) -> Path:
    plugins = profile / "plug-ins"
    plugin_dir = plugins / PLUGIN
    old = _read_manifest(plugin_dir) or {}
    created = list(old.get("created_dirs", []))
    for d in (profile, plugins, plugin_dir):
        if not d.is_dir():
            d.mkdir(parents=True)
            created.append(str(d))
    files = []
    for name, mode in FILES.items():
        _write(plugin_dir / name, (SOURCE / name).read_bytes(), mode)
        files.append(name)
    cfg = plugin_config(kind, profile, args)
    _write(plugin_dir / CONFIG, (json.dumps(cfg, indent=2) + "\n").encode(), 0o600)
    files.append(CONFIG)
    for stale in set(old.get("files", [])) - set(files):  # files an older version installed
        (plugin_dir / stale).unlink(missing_ok=True)
    manifest = {"plugin_dir": str(plugin_dir), "files": files, "created_dirs": created,
                "source": str(SOURCE)}
    _write(plugin_dir / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode(), 0o644)
    return plugin_dir


def uninstall_from(profile: Path) -> list[str]:
    """Remove exactly the files the manifest lists, then the folders install created, if empty."""
    plugin_dir = profile / "plug-ins" / PLUGIN
    manifest = _read_manifest(plugin_dir)
    if manifest is None:
        return []
    removed = []
    for name in manifest.get("files", []):
        path = plugin_dir / name
        if path.parent == plugin_dir and path.exists():
            path.unlink()
            removed.append(str(path))
    (plugin_dir / MANIFEST).unlink(missing_ok=True)
    pycache = plugin_dir / "__pycache__"   # Python writes it when GIMP runs the plug-in
    if pycache.is_dir():
        shutil.rmtree(pycache)
    left = []
    for d in sorted(manifest.get("created_dirs", []), key=len, reverse=True):
        try:
            Path(d).rmdir()                # only when empty: the user's own files stay
            removed.append(d + os.sep)
        except OSError:
            left.append(d)
    if left and plugin_dir.is_dir():
        # Folders kept for the user's files are still ours: a later uninstall may remove them.
        _write(plugin_dir / MANIFEST, (json.dumps(
            {"plugin_dir": str(plugin_dir), "files": [], "created_dirs": left}, indent=2)
            + "\n").encode(), 0o644)
    return removed


def detect(args: argparse.Namespace) -> int:
    for kind, path in targets(args.gimp_dir):
        print(f"{kind}: {path}{'' if path.is_dir() else ' (not created yet)'}")
    return 0


def uninstall(args: argparse.Namespace) -> int:
    profiles_ = [("given", Path(args.gimp_dir).expanduser())] if args.gimp_dir else profiles()
    total = 0
    for _kind, profile in profiles_:
        if profile.name == "plug-ins":
            profile = profile.parent
        for path in uninstall_from(profile):
            print(f"removed {path}")
            total += 1
    print("GIMP plug-in: nothing installed was found" if total == 0
          else "GIMP plug-in removed; restart GIMP")
    return 0


def install(args: argparse.Namespace) -> int:
    for name in FILES:
        if not (SOURCE / name).is_file():
            print(f"gimp_plugin.py: {SOURCE / name} is missing; is this a Stylefill checkout?",
                  file=sys.stderr)
            return 1
    if args.venv and not engine_executable(Path(args.venv)).exists():
        print(f"gimp_plugin.py: {engine_executable(Path(args.venv))} does not exist; install the "
              "engine first", file=sys.stderr)
        return 1
    if args.venv and not args.token:
        ensure_token(Path(args.venv))
    for kind, profile in targets(args.gimp_dir):
        plugin_dir = install_into(kind, profile, args)
        mode = stat.filemode((plugin_dir / "stylefill.py").stat().st_mode)
        print(f"GIMP plug-in ({kind}): {plugin_dir} ({mode} stylefill.py)")
        if kind == "Flatpak":
            print("  Flatpak GIMP cannot start the engine by itself unless you allow it:\n"
                  f"    flatpak override --user --talk-name=org.freedesktop.Flatpak {FLATPAK_ID}\n"
                  "  or start the engine yourself before using the plug-in: "
                  f"{engine_executable(Path(args.venv or '.venv'))} serve")
    print("Restart GIMP 3; the commands are under Filters > Stylefill.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gimp_plugin.py", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["install", "uninstall", "detect"])
    parser.add_argument("--gimp-dir", help="GIMP 3 profile (…/GIMP/3.0) or its plug-ins folder; "
                        "default: every GIMP 3 profile found")
    parser.add_argument("--venv", help="the engine's virtual environment (to start the engine)")
    parser.add_argument("--url", help=f"engine URL (default {DEFAULT_URL}; remote: http(s)://HOST:PORT)")
    parser.add_argument("--token", help="the engine's token, for a remote engine")
    parser.add_argument("--token-file", help="file holding the token (default: the engine's)")
    args = parser.parse_args(argv)
    if args.venv:
        args.venv = str(Path(args.venv).expanduser().resolve())
    return {"install": install, "uninstall": uninstall, "detect": detect}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
