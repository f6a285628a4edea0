"""Small helpers shared by the engine, HTTP and GIMP tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

import faulthandler
import importlib.util
import io
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn
from PIL import Image, ImageEnhance

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="the ray extra: install/install.sh --with-ray")


@contextmanager
def local_ray(budget_s: float) -> Iterator[ModuleType]:
    """One local Ray instance for a test module: 2 CPUs (2 workers of one thread), loopback
    only; a module still running after `budget_s` (Ray's start included) ends the test run
    with a traceback instead of hanging it."""
    from stylefill import cluster

    faulthandler.dump_traceback_later(budget_s, exit=True)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("RAY_ADDRESS", raising=False)
            with cluster.connected("local", num_cpus=2) as ray:
                yield ray
    finally:
        faulthandler.cancel_dump_traceback_later()


def slight_jitter(img: Image.Image, rnd: random.Random) -> Image.Image:
    """A crop of a few pixels, brightness within 4 %, JPEG at quality 85: the same picture."""
    dx, dy = rnd.randint(2, 6), rnd.randint(2, 6)
    out = ImageEnhance.Brightness(img.crop((dx, dy, img.width - 6 + dx, img.height - 6 + dy)))
    buf = io.BytesIO()
    out.enhance(rnd.uniform(0.96, 1.04)).convert("RGB").save(buf, "JPEG", quality=85)
    return Image.open(buf).convert("RGB")


def reserved_port() -> int:
    """A free port below the kernel's ephemeral range (32768-60999 here), for the one case where
    a URL must name the port before the engine that binds it runs (the plug-in starting a local
    engine). Nothing is handed such a port implicitly, so no other socket can take it in
    between; only a process asking for that very port could."""
    low, _high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for port in rng.sample(range(20000, min(low, 32768)), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port found below the ephemeral range")


ENGINE_LINE = re.compile(r"stylefill engine on \S+ port (\d+);")


def start_engine_process(env: dict[str, str], log: Path,
                         timeout: float = 120) -> tuple[subprocess.Popen, int]:
    """`python -m stylefill serve --port 0` as the plug-in starts it; it binds a free port
    itself and prints it, so no other process can take the port in between (no race).
    Returns the process and its port once it has printed the line."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "stylefill", "serve", "--port", "0"],
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = ENGINE_LINE.search(log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1))
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the engine did not start:\n{log.read_text(errors='replace')}")


def isolated_models(folder: Path) -> Path:
    """A fresh models dir (styles learned by a test stay out of the user's cache) that shares
    the usual one's weights and patch databases, which take long to build."""
    from stylefill.paths import models_dir

    folder.mkdir(parents=True, exist_ok=True)
    for shared in ("weights", "patchdb"):
        (models_dir() / shared).mkdir(exist_ok=True)
        if not (folder / shared).exists():
            (folder / shared).symlink_to(models_dir() / shared, target_is_directory=True)
    return folder


@dataclass
class Engine:
    url: str
    token: str
    config: Path | None = None  # the subprocess engine's config dir (token file) and log
    log: Path | None = None
    models: Path | None = None  # its models dir (styles a test learns for it go here)
    pid: int | None = None  # the subprocess engine's process id (its memory is measured)

    def client(self, token: str | None = "default") -> httpx.Client:
        """A client with the engine's token (default), another token, or none (None)."""
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def serve_in_process(config: Path, models: Path, log: Path,
                     env: dict[str, str] | None = None) -> Iterator[Engine]:
    """`python -m stylefill serve --port 0` with its own config dir (token) and models dir,
    as the plug-in starts it; yields it once healthy, stops it afterwards."""
    env = {"STYLEFILL_CONFIG": str(config), "STYLEFILL_MODELS": str(models), **(env or {})}
    proc, port = start_engine_process(env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 120, alive=lambda: proc.poll() is None)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"engine did not start:\n{log.read_text()}") from None
    try:
        yield Engine(url, (config / "token").read_text().strip(), config, log, models, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def serve_in_thread(app, token: str) -> Iterator[Engine]:
    """An app served by uvicorn in a thread of this process, on a port bound here first."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    wait_healthy(url, 30, alive=thread.is_alive)
    try:
        yield Engine(url, token)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def held_at_sampling(learn, released: threading.Event):
    """`learn` (styles.learn, or a cut-down partial of it) stopping at its sampling stage until
    `released` is set (60 s at most): a run of a few seconds could otherwise pass that stage
    between two looks of a test that wants to see it."""
    def held(*args, progress, **kwargs):
        def report(fraction, stage, *rest):
            progress(fraction, stage, *rest)
            if "sampling pathways" in stage:
                released.wait(60)
        return learn(*args, progress=report, **kwargs)
    return held
