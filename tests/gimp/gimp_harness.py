"""Helpers for the real-GIMP tests: the engine server process and gimp-console in the rootfs.

The rootfs is built once and cached by rootfs.sh. Each session gets a work folder that is
bind-mounted into the rootfs at the same path, so every path (GIMP profile, installed plug-in,
token file, photos) reads the same inside GIMP and on the host, exactly as after install.sh.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ROOTFS_SH = HERE / "rootfs.sh"
PLUGIN_DIR = REPO / "gimp_plugin" / "stylefill"
sys.path.insert(0, str(PLUGIN_DIR))

import client as sf  # noqa: E402  (the plug-in's own HTTP client, to look at jobs)

PRELUDE = (HERE / "snippets" / "prelude.py").read_text()


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Engine:
    url: str
    port: int
    config_dir: Path
    proc: subprocess.Popen
    log: Path

    def client(self) -> sf.Client:
        return sf.Client(sf.Config({"url": self.url, "token_file": str(self.config_dir / "token")}))

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def start_engine(workdir: Path, name: str = "engine") -> Engine:
    """`stylefill serve` from the test's own venv, on a free port, its token in the work folder."""
    port = free_port()
    config_dir = workdir / f"{name}-config"
    config_dir.mkdir(exist_ok=True)
    log = workdir / f"{name}.log"
    env = dict(os.environ, STYLEFILL_CONFIG=str(config_dir), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "stylefill", "serve", "--port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    engine = Engine(f"http://127.0.0.1:{port}", port, config_dir, proc, log)
    deadline = time.monotonic() + 120
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the engine exited with {proc.returncode}:\n{engine.log_tail()}")
        try:
            with opener.open(engine.url + "/v1/health", timeout=1) as resp:
                if json.loads(resp.read()).get("api") == 1:
                    return engine
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the engine did not answer within 120 s:\n{engine.log_tail()}")


def stop_engine(engine: Engine) -> None:
    engine.proc.terminate()
    try:
        engine.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        engine.proc.kill()
        engine.proc.wait()


@dataclass
class GimpRun:
    rc: int
    output: str
    seconds: float

    @property
    def result(self) -> dict:
        found = re.findall(r"^RESULT (.*)$", self.output, flags=re.M)
        assert found, f"GIMP printed no RESULT (rc {self.rc}):\n{self.output[-6000:]}"
        return json.loads(found[-1])

    def job_ids(self, kind: str) -> list[str]:
        return re.findall(rf"stylefill: {kind} job ([0-9a-f]+)", self.output)


class Gimp:
    """gimp-console-3.0 in the rootfs with an isolated profile; Python snippets in batch mode."""

    def __init__(self, rootfs: Path, workdir: Path, profile: Path, photos: Path):
        self.rootfs, self.workdir, self.profile, self.photos = rootfs, workdir, profile, photos

    def command(self, env: dict | None = None) -> list[str]:
        base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                "GIMP3_DIRECTORY": str(self.profile), "SF_PHOTOS": str(self.photos),
                "SF_WORK": str(self.workdir)}
        base.update(env or {})
        return (["chroot", str(self.rootfs), "env", "-i"] + [f"{k}={v}" for k, v in base.items()]
                + ["gimp-console-3.0", "-i", "-n", "--quit",
                   "--batch-interpreter=python-fu-eval", "-b", "-"])

    def script(self, body: str) -> str:
        return PRELUDE + "\n" + body + "\ndone()\n"

    def run(self, body: str, env: dict | None = None, timeout: float = 300) -> GimpRun:
        start = time.monotonic()
        res = subprocess.run(self.command(env), input=self.script(body), capture_output=True,
                             text=True, timeout=timeout)
        return GimpRun(res.returncode, res.stdout + res.stderr, time.monotonic() - start)

    def popen(self, body: str, env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(self.command(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        proc.stdin.write(self.script(body))
        proc.stdin.close()
        return proc


def engine_has(name: str) -> bool:
    """Whether the engine's Python API has `name` yet (insert and suggest land separately)."""
    from stylefill import api

    return hasattr(api, name)
