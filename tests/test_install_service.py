"""install/service.py: the engine as a systemd user service for sandboxed GIMPs (Flatpak, Snap)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "install"))
import service  # noqa: E402

STYLEFILL = Path(sys.executable).with_name("stylefill")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_unit_is_one_systemd_accepts_and_runs_this_venvs_engine(tmp_path):
    unit = tmp_path / service.UNIT
    unit.write_text(service.unit_text(STYLEFILL))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    assert f"ExecStart={STYLEFILL} serve --port 8765\n" in unit.read_text()
    broken = tmp_path / "broken.service"
    broken.write_text(service.unit_text(tmp_path / "no-such-stylefill"))
    assert subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True).returncode != 0


def test_without_a_user_session_nothing_is_written_and_it_says_what_to_do(tmp_path, monkeypatch, capsys):
    """This machine's systemd has no user manager (`systemctl --user` is offline)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    probe = service.systemctl("is-system-running")
    if probe is not None and probe.returncode == 0:
        pytest.skip("a systemd user session is running here")
    assert service.main(["install", str(STYLEFILL)]) == 0
    assert "start the engine yourself" in capsys.readouterr().out
    assert not service.unit_path().exists()
    assert service.main(["uninstall"]) == 0
    assert service.main(["install", str(tmp_path / "missing")]) == 2
