"""The real engine for API tests: `stylefill serve` in its own process on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from harness import free_port, isolated_models

from stylefill.server import create_app


@dataclass
class Engine:
    url: str
    token: str
    config: Path | None = None  # the subprocess engine's config dir (token file) and log
    log: Path | None = None
    models: Path | None = None  # its models dir (styles a test learns for it go here)

    def client(self, token: str | None = "default") -> httpx.Client:
        """A client with the engine's token (default), another token, or none (None)."""
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def wait_healthy(url: str, timeout: float, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the engine at {url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Iterator[Engine]:
    """`python -m stylefill serve --port P`, as the plug-in starts it, with a fresh config dir.

    Its models dir is fresh too (styles learned here must not reach the user's cache) but
    shares the weights and patch databases of the usual one, which take long to build.
    """
    config = tmp_path_factory.mktemp("config")
    log = tmp_path_factory.mktemp("engine") / "engine.log"
    models = isolated_models(tmp_path_factory.mktemp("models"))
    port = free_port()
    env = {**os.environ, "STYLEFILL_CONFIG": str(config), "STYLEFILL_MODELS": str(models)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "stylefill", "serve", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 120, alive=lambda: proc.poll() is None)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"engine did not start:\n{log.read_text()}") from None
    try:
        yield Engine(url, (config / "token").read_text().strip(), config, log, models)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def client(engine: Engine) -> Iterator[httpx.Client]:
    with engine.client() as c:
        yield c


@pytest.fixture(scope="module")
def small_engine() -> Iterator[Engine]:
    """An engine app with a 64 KiB body limit, served by uvicorn in a thread of this process."""
    port = free_port()
    app = create_app("small-engine-token", max_body=64 * 1024)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, 30, alive=thread.is_alive)
    try:
        yield Engine(url, "small-engine-token")
    finally:
        server.should_exit = True
        thread.join(10)
