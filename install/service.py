#!/usr/bin/env python3
"""The engine as a per-user systemd service, so that a GIMP that cannot start programs on the
host (Flatpak, Snap) finds it at 127.0.0.1 from login on.

    python3 install/service.py install STYLEFILL   # write the unit, enable and start it
    python3 install/service.py uninstall           # stop, disable and remove it

Standard library only. Without systemd (or without a user session bus) it writes nothing and
says how to start the engine instead; it never fails the install for that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = "stylefill.service"


def unit_path(home: Path | None = None) -> Path:
    """$XDG_CONFIG_HOME/systemd/user/stylefill.service (else ~/.config/...)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str((home or Path.home()) / ".config")
    return Path(base) / "systemd" / "user" / UNIT


def unit_text(stylefill: Path) -> str:
    """The engine on its default loopback port, restarted if it dies, stopped at logout."""
    return (
        "[Unit]\n"
        "Description=Stylefill engine for the GIMP plug-in (127.0.0.1:8765)\n\n"
        "[Service]\n"
        f"ExecStart={stylefill} serve --port 8765\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "Nice=5\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def systemctl(*args: str) -> subprocess.CompletedProcess | None:
    """`systemctl --user ARGS`, or None when there is no systemd user manager to talk to."""
    if shutil.which("systemctl") is None:
        return None
    try:
        done = subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done


def install(stylefill: Path) -> int:
    if not stylefill.is_file():
        print(f"service.py: {stylefill} does not exist; install the engine first", file=sys.stderr)
        return 2
    probe = systemctl("is-system-running")
    if probe is None or "Failed to connect" in probe.stderr or "offline" in probe.stdout:
        print("No systemd user session here: start the engine yourself when GIMP cannot "
              f"(`{stylefill} serve`), for example from your session's autostart.")
        return 0
    path = unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(unit_text(stylefill))
    tmp.replace(path)
    for args in (("daemon-reload",), ("enable", "--now", UNIT)):
        done = systemctl(*args)
        if done is None or done.returncode != 0:
            why = done.stderr.strip() if done is not None else "systemctl did not answer"
            print(f"wrote {path}, but `systemctl --user {' '.join(args)}` failed: {why}",
                  file=sys.stderr)
            return 1
    print(f"the engine runs as the user service {UNIT} ({path}); "
          f"`systemctl --user status {UNIT}` shows it")
    return 0


def uninstall() -> int:
    path = unit_path()
    if not path.exists():
        return 0
    systemctl("disable", "--now", UNIT)
    path.unlink()
    systemctl("daemon-reload")
    print(f"removed {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("install").add_argument("stylefill", type=Path,
                                           help="the engine's stylefill command (in its venv)")
    sub.add_parser("uninstall")
    args = ap.parse_args(argv)
    return install(args.stylefill.resolve()) if args.command == "install" else uninstall()


if __name__ == "__main__":
    sys.exit(main())
