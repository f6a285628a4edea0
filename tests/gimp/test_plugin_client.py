"""The plug-in's HTTP client (gimp_plugin/stylefill/client.py) against the real engine server,
on the host: what GIMP cannot show in a batch run (engine start, version and token checks)."""

from __future__ import annotations

import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gimp_harness import CountingProxy, dead_url, sf
from harness import reserved_port
from PIL import Image


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_encode_png_is_read_back_exactly(channels, mode):
    w, h = 37, 23
    raw = bytes((i * 7 + i // 5) % 256 for i in range(w * h * channels))
    img = Image.open(io.BytesIO(sf.encode_png(w, h, raw, channels)))
    assert img.mode == mode and img.size == (w, h) and img.tobytes() == raw
    assert sf.png_size(sf.encode_png(w, h, raw, channels)) == (w, h)


def test_ensure_running_starts_a_local_engine_and_waits(tmp_path: Path):
    """Nothing answers at the URL: the configured command starts the real engine, detached.
    (The URL has to name the port before the engine runs: one below the ephemeral range.)"""
    port = reserved_port()
    engine_env = {"STYLEFILL_CONFIG": str(tmp_path), "OMP_NUM_THREADS": "1"}
    if os.environ.get("PYTHONPATH"):   # the engine under test, also when it is not installed
        engine_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    cfg = sf.Config({
        "url": f"http://127.0.0.1:{port}", "token_file": str(tmp_path / "token"),
        "engine_command": [sys.executable, "-m", "stylefill", "serve", "--port", str(port)],
        "engine_env": engine_env, "engine_log": str(tmp_path / "engine.log")})
    client = sf.Client(cfg)
    seen = []
    try:
        info = client.ensure_running(lambda f, text: seen.append((f, text)) or True)
        assert info["name"] == "stylefill" and info["api"] == sf.PROTOCOL
        assert client.spawned is not None and client.spawned.poll() is None
        assert seen and seen[0][1].startswith("Starting the Stylefill engine")
        assert os.getpgid(client.spawned.pid) == client.spawned.pid  # its own session: outlives GIMP
        names = [b["name"] for b in client.backbones()["backbones"]]  # token from its token file
        assert "efficientnet-lite0" in names
        again = sf.Client(cfg)
        again.ensure_running()
        assert again.spawned is None  # answering now: not started twice
    finally:
        if client.spawned is not None:
            os.killpg(client.spawned.pid, signal.SIGTERM)
            client.spawned.wait(timeout=30)


def test_engine_that_exits_while_starting_is_explained(tmp_path: Path):
    with dead_url() as url:
        cfg = sf.Config({"url": url, "token_file": str(tmp_path / "token"),
                         "engine_command": [sys.executable, "-c", "import sys; "
                                            "sys.exit('stylefill: error: port taken')"],
                         "engine_log": str(tmp_path / "engine.log")})
        with pytest.raises(sf.EngineError) as err:
            sf.Client(cfg).ensure_running()
    msg = str(err.value)
    assert f"not answering at {url}" in msg
    assert "exited with code 1" in msg and "port taken" in msg and str(tmp_path) in msg


def test_remote_engine_is_never_started(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    cfg = sf.Config({"url": "http://192.0.2.1:8765", "token": "x",
                     "engine_command": ["/bin/false"]})
    assert not cfg.local
    client = sf.Client(cfg)
    with pytest.raises(sf.EngineError, match="remote Stylefill engine at http://192.0.2.1"):
        client.ensure_running()
    assert client.spawned is None


def test_protocol_mismatch_is_reported_not_crashed_on(engine, monkeypatch):
    monkeypatch.setattr(sf, "PROTOCOL", 2)
    with pytest.raises(sf.EngineError) as err:
        engine.client().ensure_running()
    assert "speaks protocol 1, this plug-in speaks 2" in str(err.value)
    assert "install/install.sh" in str(err.value)


def test_wrong_token_is_explained(engine, tmp_path: Path):
    bad = tmp_path / "token"
    bad.write_text("not-the-token")
    client = sf.Client(sf.Config({"url": engine.url, "token_file": str(bad)}))
    with pytest.raises(sf.EngineError, match="rejected the token from .*token"):
        client.backbones()
    missing = sf.Client(sf.Config({"url": engine.url, "token_file": str(tmp_path / "none")}))
    with pytest.raises(sf.EngineError, match="no engine token at .*none"):
        missing.backbones()


def test_another_program_on_the_port_is_named(tmp_path: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = sf.Client(sf.Config({"url": f"http://127.0.0.1:{server.server_port}",
                                      "engine_command": ["/bin/false"]}))
        with pytest.raises(sf.EngineError, match="answers, but not like a Stylefill engine"):
            client.ensure_running()
        assert client.spawned is None
    finally:
        server.shutdown()


def test_session_connects_once_and_asks_for_suggestions_once(engine):
    """A Session (one plug-in run) checks the engine's health once, and a region's suggestions
    are asked once: fewer of them come from the answer, another backbone asks again."""
    proxy = CountingProxy(engine.url)
    try:
        session = sf.Session(sf.Config({"url": proxy.url,
                                        "token_file": str(engine.config_dir / "token")}))
        w, h = 96, 64
        image = sf.encode_png(w, h, bytes((x * 2 + y) % 256 for y in range(h) for x in range(w)
                                          for _c in range(3)), 3)
        mask = sf.encode_png(w, h, bytes(255 if 20 < x < 70 and 10 < y < 50 else 0
                                         for y in range(h) for x in range(w)), 1)
        six = session.suggest(image, mask, top=6)
        assert len(six) == 6 and session.suggest(image, mask, top=1) == six[:1]
        assert session.connect() is session.client
        session.suggest(image, mask, top=1, backbone="efficientnet-lite0")
        assert proxy.count("GET /v1/health") == 1
        assert proxy.count("POST /v1/suggest") == 2
    finally:
        proxy.close()


def test_engine_errors_arrive_as_one_message(engine):
    with pytest.raises(sf.EngineError, match="unknown class 'ladybugg'; did you mean: .*ladybug"):
        engine.client().create_job("visualize", {"class": "ladybugg"})


def test_watchdog_released_leaves_the_job_alone(engine):
    client = engine.client()
    job = client.create_job("visualize", {"class": "ladybug", "iters": 3})
    dog = sf.start_watchdog(client.config, job["id"])
    assert dog is not None and dog.poll() is None
    result = client.wait(job["id"])
    sf.release_watchdog(dog)
    assert dog.returncode == 0
    assert result["size"] and client.job(job["id"])["state"] == "done"


def test_watchdog_cancels_when_its_parent_dies(engine, tmp_path: Path):
    """The parent (the plug-in, killed by GIMP's Cancel) dies: the job is cancelled."""
    config = tmp_path / "plugin.json"
    config.write_text(f'{{"url": "{engine.url}", "token_file": "{engine.config_dir}/token"}}')
    code = "\n".join([
        "import sys, time",
        f"sys.path.insert(0, {str(Path(sf.__file__).parent)!r})",
        "import client as sf",
        "c = sf.Client()",
        "j = c.create_job('visualize', {'class': 'ladybug', 'iters': 5000})",
        "sf.start_watchdog(c.config, j['id'])",
        "print(j['id'], flush=True)",
        "time.sleep(600)"])
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, STYLEFILL_PLUGIN_CONFIG=str(config)))
    try:
        job_id = child.stdout.readline().strip()
        assert job_id
        child.kill()
        child.wait()
        client = engine.client()
        end = time.monotonic() + 15
        while client.job(job_id)["state"] != "cancelled" and time.monotonic() < end:
            time.sleep(0.2)
        assert client.job(job_id)["state"] == "cancelled"
    finally:
        if child.poll() is None:
            child.kill()
