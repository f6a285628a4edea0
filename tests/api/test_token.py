"""The engine's token file and bind policy: private to the user, loopback unless asked."""

from __future__ import annotations

import stat

import httpx
import pytest
import uvicorn

from stylefill import config, server
from stylefill.errors import StylefillError


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_engine_created_a_private_token_on_first_start(engine):
    token_file = engine.config / "token"
    assert mode(token_file) == 0o600
    assert len(engine.token) == 43  # 32 random bytes, URL-safe base64 without padding
    r = httpx.get(f"{engine.url}/v1/backbones", headers={"Authorization": f"Bearer {engine.token}"})
    assert r.status_code == 200
    assert "token in " + str(token_file) in engine.log.read_text()


def test_token_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("STYLEFILL_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.token_path() == tmp_path / "home" / ".config" / "stylefill" / "token"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config.token_path() == tmp_path / "xdg" / "stylefill" / "token"
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path / "own"))
    assert config.token_path() == tmp_path / "own" / "token"


def test_token_is_made_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path / "cfg"))
    first = config.ensure_token()
    path = tmp_path / "cfg" / "token"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert config.ensure_token() == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["token"]  # no temporary left
    path.chmod(0o644)
    assert config.ensure_token() == first and mode(path) == 0o600
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path / "other"))
    assert config.ensure_token() != first


def test_empty_token_file_is_an_error_not_an_open_door(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path))
    (tmp_path / "token").write_text("")
    with pytest.raises(StylefillError, match="token file is empty"):
        config.ensure_token()


@pytest.mark.parametrize("host, bind, warned", [
    (None, "127.0.0.1", False), ("127.0.0.1", "127.0.0.1", False), ("::1", "::1", False),
    ("localhost", "localhost", False), ("0.0.0.0", "0.0.0.0", True),
    ("192.168.1.20", "192.168.1.20", True), ("my-machine.example", "my-machine.example", True),
])
def test_serve_binds_loopback_unless_told_and_warns_otherwise(tmp_path, monkeypatch, capsys,
                                                              host, bind, warned):
    """Where `serve` binds (not bound here: binding 0.0.0.0 in a test would expose it)."""
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path))
    calls, served = [], []

    class Bound:
        def getsockname(self):
            return (bind, 8765)

    monkeypatch.setattr(server, "_listen", lambda h, p: calls.append((h, p)) or Bound())
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: served.append(sockets))
    server.serve(host=host, port=8765)
    assert calls == [(bind, 8765)] and len(served[0]) == 1
    err = capsys.readouterr().err
    assert f"stylefill engine on {bind} port 8765; token in" in err
    assert ("warning: listening on" in err) == warned
    assert f"token in {tmp_path / 'token'}" in err


def test_serve_on_port_0_names_the_port_it_bound(tmp_path, monkeypatch, capsys):
    """Port 0: the system picks a free port and the printed line names it (no race for ports)."""
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path))
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: served.append(sockets))
    server.serve(host=None, port=0)
    (sock,) = served[0]
    try:
        port = sock.getsockname()[1]
        assert port > 0
        assert f"stylefill engine on 127.0.0.1 port {port}; token in" in capsys.readouterr().err
        with pytest.raises(StylefillError, match=f"cannot listen on 127.0.0.1 port {port}"):
            server._listen("127.0.0.1", port)
    finally:
        sock.close()
