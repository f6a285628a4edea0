"""What the engine checks before it reads a request (docs/protocol.md, "Transport and
security"): the Host it is addressed to (DNS rebinding), then the token, from the headers
alone, so a client without the token gets no body read, parsed or decoded."""

from __future__ import annotations

import re
import socket
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from stylefill import server


def raw_request(url: str, head: str, body: bytes = b"", wait: float = 10.0) -> bytes:
    """Send `head` and `body` on one connection and return the answer that arrives within
    `wait` s, without sending anything more."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        answer, deadline = b"", time.monotonic() + wait
        while not complete(answer) and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    return bool(found and length and len(body) >= int(length[1]))


def test_no_token_is_refused_before_the_body_arrives(engine):
    """A 200 MB body is announced and never sent: the 401 comes from the headers alone (an
    engine that read the body first would wait for it)."""
    port = engine.url.rsplit(":", 1)[1]
    answer = raw_request(engine.url, f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 200000000", b"{")
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"missing token" in answer


def test_no_token_with_broken_json_is_401_and_names_no_path(engine):
    with engine.client(None) as c:
        for r in (c.post("/v1/jobs", content=b'{"kind": "visualize",',
                         headers={"content-type": "application/json"}),
                  c.post("/v1/suggest", content=b"[" * 100_000)):
            assert r.status_code == 401, r.text
            assert r.json()["detail"].startswith("missing token: send 'Authorization: Bearer")
            assert str(engine.config) not in r.text and "/token" not in r.text
    with engine.client("wrong") as c:
        r = c.get("/v1/backbones")
        assert r.status_code == 401 and str(engine.config) not in r.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io",
                                  "localhost.evil.example", "192.168.1.20", "[::2]:80", "",
                                  "user@127.0.0.1", "127.0.0.1/x"])
def test_a_host_that_is_not_this_engine_gets_421_everywhere(engine, host):
    """A page that reached the engine by DNS rebinding sends its own name as Host: refused on
    every route, health and the schema included, before the token is looked at."""
    with engine.client() as c:
        for path in ("/v1/health", "/openapi.json", "/v1/backbones"):
            r = c.get(path, headers={"Host": host})
            assert r.status_code == 421, (path, r.text)
            assert "does not name this engine" in r.json()["detail"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost:{port}",
                                  "LOCALHOST", "127.8.9.10:1", "[::1]:{port}"])
def test_loopback_hosts_are_this_engine(engine, host):
    port = engine.url.rsplit(":", 1)[1]
    r = httpx.get(f"{engine.url}/v1/health", headers={"Host": host.format(port=port)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("bound, allowed, refused", [
    ("127.0.0.1", ["localhost", "127.0.0.1:8765", "[::1]"], ["192.168.1.20", "example.org"]),
    ("192.168.1.20", ["192.168.1.20:8765", "127.0.0.1"], ["192.168.1.21", "gpu.example"]),
    ("gpu.example", ["gpu.example:8765", "GPU.example", "localhost"], ["evil.example"]),
    ("0.0.0.0", ["192.168.1.20:8765", "10.1.2.3", "[fe80::1]:8765"], ["gpu.example"]),
    ("::", ["[2001:db8::5]:8765", "192.168.1.20"], ["gpu.example:8765"]),
])
def test_host_check_accepts_loopback_and_the_bound_address(bound, allowed, refused):
    """Bound to all addresses, any IP address is this engine (a rebinding page names a domain)."""
    check = server.HostCheck(bound)
    assert [h for h in allowed if not check(h)] == []
    assert [h for h in refused if check(h)] == []


class Bound:
    """What `serve` gets instead of a listening socket."""

    def getsockname(self) -> tuple[str, int]:
        return ("192.168.1.20", 8765)


def test_serve_on_a_network_address_answers_to_it(tmp_path, monkeypatch):
    """`serve --host ADDRESS` (not bound here) builds an engine that takes ADDRESS as Host,
    with no folder open to requests unless it is told which."""
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path))
    monkeypatch.delenv("STYLEFILL_FOLDERS", raising=False)
    apps = []
    monkeypatch.setattr(server, "listen", lambda h, p: Bound())
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: apps.append(self.config.app))
    server.serve(host="192.168.1.20", port=8765)
    with TestClient(apps[0], base_url="http://192.168.1.20:8765") as c:
        assert c.get("/v1/health").status_code == 200
        assert c.get("/v1/health", headers={"Host": "evil.example"}).status_code == 421
        token = (tmp_path / "token").read_text()
        r = c.post("/v1/jobs", headers={"Authorization": f"Bearer {token}"}, json={
            "kind": "learn_styles", "params": {"class": "tabby", "folder": str(tmp_path)}})
        assert r.status_code == 400 and "not allowed or not found" in r.json()["detail"]
