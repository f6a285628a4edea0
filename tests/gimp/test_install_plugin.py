"""install/gimp_plugin.py (what install.sh runs for GIMP) in a throwaway home folder: where it
installs, what it writes, that reinstalling changes nothing and uninstalling removes exactly it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gimp_harness import REPO

SCRIPT = REPO / "install" / "gimp_plugin.py"
FILES = {".stylefill-install-manifest.json", "client.py", "dialogs.py", "stylefill.json",
         "stylefill.py"}


def run(home: Path, *args: str, script: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_CONFIG_HOME", "STYLEFILL_CONFIG", "STYLEFILL_MODELS")}
    env.update(HOME=str(home), PATH="/usr/bin:/bin")  # no gimp, no flatpak on PATH
    cmd = script or [sys.executable, str(SCRIPT)]
    res = subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    (tmp_path / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0").mkdir(parents=True)
    return tmp_path


def test_installs_into_distro_and_flatpak_profiles(home: Path):
    run(home, "install", "--venv", sys.prefix)
    distro = home / ".config" / "GIMP" / "3.0" / "plug-ins" / "stylefill"
    flatpak = home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0" / "plug-ins" / \
        "stylefill"
    for folder in (distro, flatpak):
        assert {p.name for p in folder.iterdir()} == FILES
        assert os.access(folder / "stylefill.py", os.X_OK)
        assert (folder / "stylefill.json").stat().st_mode & 0o777 == 0o600
        assert (folder / "client.py").read_bytes() == \
            (REPO / "gimp_plugin" / "stylefill" / "client.py").read_bytes()
    token = (home / ".config" / "stylefill" / "token").read_text().strip()  # made by the engine
    cfg = json.loads((distro / "stylefill.json").read_text())
    stylefill = str(Path(sys.prefix) / "bin" / "stylefill")
    assert cfg["url"] == "http://127.0.0.1:8765"
    assert cfg["token_file"] == str(home / ".config" / "stylefill" / "token")
    assert cfg["engine_command"] == [stylefill, "serve", "--port", "8765"]
    fcfg = json.loads((flatpak / "stylefill.json").read_text())
    assert fcfg["engine_command"] == ["flatpak-spawn", "--host", stylefill, "serve", "--port", "8765"]
    assert fcfg["token"] == token  # the sandbox may not see ~/.config
    assert fcfg["engine_log"].startswith(str(home / ".var" / "app" / "org.gimp.GIMP"))


def test_gimp_dir_overrides_detection_and_accepts_the_plug_ins_folder(home: Path):
    custom = home / "portable" / "GIMP" / "3.0"
    out = run(home, "install", "--venv", sys.prefix, "--gimp-dir", str(custom / "plug-ins")).stdout
    assert str(custom / "plug-ins" / "stylefill") in out
    assert {p.name for p in (custom / "plug-ins" / "stylefill").iterdir()} == FILES
    assert not (home / ".config" / "GIMP" / "3.0" / "plug-ins").exists()


def test_no_profile_yet_installs_where_gimp_will_look(tmp_path: Path):
    run(tmp_path, "install", "--venv", sys.prefix)
    assert (tmp_path / ".config" / "GIMP" / "3.0" / "plug-ins" / "stylefill" / "stylefill.py").exists()


def test_remote_engine_config(home: Path):
    custom = home / "g"
    run(home, "install", "--gimp-dir", str(custom), "--url", "https://gpu.example.org:9000/",
        "--token", "s3cret")
    cfg = json.loads((custom / "plug-ins" / "stylefill" / "stylefill.json").read_text())
    assert cfg == {"url": "https://gpu.example.org:9000", "token": "s3cret"}


def test_reinstall_is_idempotent_and_drops_files_older_versions_installed(home: Path):
    run(home, "install", "--venv", sys.prefix)
    first = tree(home)
    folder = home / ".config" / "GIMP" / "3.0" / "plug-ins" / "stylefill"
    manifest = json.loads((folder / ".stylefill-install-manifest.json").read_text())
    (folder / "old_helper.py").write_text("# from an older version\n")
    manifest["files"].append("old_helper.py")
    (folder / ".stylefill-install-manifest.json").write_text(json.dumps(manifest))
    run(home, "install", "--venv", sys.prefix)
    assert tree(home) == first


def test_uninstall_removes_exactly_what_install_wrote(home: Path):
    before = tree(home)
    run(home, "install", "--venv", sys.prefix)
    token = home / ".config" / "stylefill"          # the engine's, not the plug-in's: it stays
    mine = home / ".config" / "GIMP" / "3.0" / "plug-ins" / "stylefill" / "my-notes.txt"
    mine.write_text("the user's own file")
    (mine.parent / "__pycache__").mkdir()            # Python's, from GIMP running the plug-in
    (mine.parent / "__pycache__" / "client.cpython-313.pyc").write_bytes(b"x")
    out = run(home, "uninstall").stdout
    assert "GIMP plug-in removed" in out
    after = tree(home)
    kept = {str(p.relative_to(home)) for p in (token, mine, mine.parent, mine.parent.parent)}
    kept |= {str((token / "token").relative_to(home)),
             str((mine.parent / ".stylefill-install-manifest.json").relative_to(home))}
    assert set(after) - set(before) == kept
    assert after[str(mine.relative_to(home))] == b"the user's own file"
    mine.unlink()
    run(home, "install", "--venv", sys.prefix)
    run(home, "uninstall")
    assert set(tree(home)) - set(before) == {str(token.relative_to(home)),
                                             str((token / "token").relative_to(home))}


def test_install_sh_uninstall_and_bad_flags(home: Path):
    custom = home / "g"
    run(home, "install", "--gimp-dir", str(custom))
    out = run(home, "--uninstall", "--gimp-dir", str(custom),
              script=["bash", str(REPO / "install" / "install.sh")]).stdout
    assert "removed" in out and not (custom / "plug-ins").exists()
    bad = subprocess.run(["bash", str(REPO / "install" / "install.sh"), "--gimp-dir"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--gimp-dir needs a folder" in bad.stderr
