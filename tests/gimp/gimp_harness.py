"""Helpers for the real-GIMP tests: the engine server process and gimp-console in the rootfs.

The rootfs is built once and cached by rootfs.sh. Each session gets a work folder that is
bind-mounted into the rootfs at the same path, so every path (GIMP profile, installed plug-in,
token file, photos) reads the same inside GIMP and on the host, exactly as after install.sh.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ROOTFS_SH = HERE / "rootfs.sh"
PLUGIN_DIR = REPO / "gimp_plugin" / "stylefill"
sys.path.insert(0, str(PLUGIN_DIR))
sys.path.insert(0, str(HERE.parent))  # tests/, for harness.py (also when run as a script)

import client as sf  # noqa: E402  (the plug-in's own HTTP client, to look at jobs)

PRELUDE = (HERE / "snippets" / "prelude.py").read_text()


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)


@dataclass
class Engine:
    url: str
    port: int
    config_dir: Path
    proc: subprocess.Popen
    log: Path
    models: Path | None = None

    def client(self) -> sf.Client:
        return sf.Client(sf.Config({"url": self.url, "token_file": str(self.config_dir / "token")}))

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


LISTENING = re.compile(r"stylefill engine on \S+ port (\d+);")


def start_engine(workdir: Path, name: str = "engine", models: Path | None = None) -> Engine:
    """`stylefill serve --port 0` from the test's own venv: it binds a free port itself and
    names it in its log once bound (no race for a port); its token in the work folder, which
    is also the folder requests may name files in; its models dir `models` when given (else
    the user's)."""
    config_dir = workdir / f"{name}-config"
    config_dir.mkdir(exist_ok=True)
    log = workdir / f"{name}.log"
    env = dict(os.environ, STYLEFILL_CONFIG=str(config_dir), OMP_NUM_THREADS="1",
               STYLEFILL_FOLDERS=str(workdir))  # the photos' folder: as a user's home
    if models is not None:
        env["STYLEFILL_MODELS"] = str(models)
    proc = subprocess.Popen([sys.executable, "-m", "stylefill", "serve", "--port", "0"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    port = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the engine exited with {proc.returncode}:\n{_tail(log)}")
        found = port or LISTENING.search(log.read_text(errors="replace"))
        port = port or (int(found.group(1)) if found else None)
        if port is None:
            time.sleep(0.2)
            continue
        engine = Engine(f"http://127.0.0.1:{port}", port, config_dir, proc, log, models)
        try:
            with opener.open(engine.url + "/v1/health", timeout=10) as resp:
                if json.loads(resp.read()).get("api") == 1:
                    return engine
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the engine did not answer within 120 s:\n{_tail(log)}")


def _tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else ""


@contextmanager
def dead_url():
    """The URL of a port on 127.0.0.1 that refuses connections: bound here, never listened on,
    so nothing else can take it while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class CountingProxy:
    """A recording HTTP proxy in front of the engine, on a port it binds itself. `counts`
    holds requests by "METHOD /path"; `bodies` the JSON bodies of POSTs (images left out);
    `images` their images as sent: {"path", "image", "mask"} (PNG bytes or None)."""

    def __init__(self, target: str):
        self.target, self.counts, self.bodies = target, Counter(), []
        self.images: list[dict] = []
        self.answers: list[dict] = []    # what the engine answered to POST /v1/suggest
        self.lock = threading.Lock()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                proxy.record(self.command, self.path, body)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "accept")}
                req = urllib.request.Request(proxy.target + self.path, data=body,
                                             headers=headers, method=self.command)
                try:
                    with opener.open(req, timeout=300) as resp:
                        status, ctype, answer = resp.status, resp.headers["Content-Type"], resp.read()
                except urllib.error.HTTPError as exc:
                    status, ctype, answer = exc.code, exc.headers["Content-Type"], exc.read()
                if self.path == "/v1/suggest" and status == 200:
                    proxy.answers.append(json.loads(answer))
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, method: str, path: str, body: bytes | None) -> None:
        with self.lock:
            self.counts[f"{method} {path.split('?')[0]}"] += 1
            if body:
                data = json.loads(body)
                self.bodies.append({k: v for k, v in data.items()
                                    if k not in ("image", "mask")} | {"path": path})
                self.images.append({"path": path} | {
                    k: base64.b64decode(data[k]) if data.get(k) else None
                    for k in ("image", "mask")})

    def count(self, prefix: str) -> int:
        """Requests whose "METHOD /path" starts with `prefix`."""
        return sum(n for key, n in self.counts.items() if key.startswith(prefix))

    def jobs(self) -> list[dict]:
        return [b for b in self.bodies if b["path"] == "/v1/jobs"]

    def job_images(self) -> list[dict]:
        """The image and mask PNGs of each job request, in order."""
        return [i for i in self.images if i["path"] == "/v1/jobs"]

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.bodies.clear()
            self.images.clear()
            self.answers.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def quick_styles(engine: Engine, cls: str, photo: Path, folder: Path, topics: int = 2):
    """`topics` styles of `cls` in the engine's models dir, learned here in seconds from four
    views of one photo (kept whatever the network sees in them; 4-step previews): real styles
    with real thumbnails for the plug-in to show, not good styles of the class."""
    from PIL import Image

    from stylefill import styles
    from stylefill.backbones import load_backbone

    image = Image.open(photo).convert("RGB")
    w, h = image.size
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / "a.png")
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b.png")
    image.crop((w // 10, 0, w - w // 15, h)).save(folder / "c.png")
    image.crop((w // 6, h // 20, w * 3 // 4, h * 3 // 4)).save(folder / "d.png")
    return styles.learn(cls, load_backbone(), folder=folder, topics=topics, keep_all=True,
                        preview_settings=styles.PreviewSettings(iters=4), root=engine.models)


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


def xwd_to_png(xwd: Path, png: Path) -> None:
    """Xvfb's -fbdir framebuffer (an XWD file, 24/32 bit TrueColor) as a PNG."""
    import struct

    from PIL import Image

    data = xwd.read_bytes()
    fields = struct.unpack(">25I", data[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    bits_per_pixel, bytes_per_line, ncolors = fields[11], fields[12], fields[19]
    if bits_per_pixel != 32:
        raise ValueError(f"{xwd}: {bits_per_pixel} bits per pixel; expected a 24-bit screen")
    start = header_size + ncolors * 12
    order = "BGRX" if fields[7] == 0 else "XRGB"  # byte order: 0 = LSBFirst
    Image.frombuffer("RGB", (width, height), data[start:start + bytes_per_line * height], "raw",
                     order, bytes_per_line, 1).save(png)


def free_display() -> int:
    """An X display number no server uses (abstract sockets are shared with the chroot)."""
    used = Path("/proc/net/unix").read_text()
    for n in range(90, 200):
        if f"/tmp/.X11-unix/X{n}" not in used and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number between 90 and 199")


class GuiSession:
    """Xvfb and the GIMP 3 GUI (gimp-3.0) in the rootfs, driven by xdotool and files.

    The batch snippet runs inside GIMP while its windows stay live, so keystrokes (ctrl+z,
    Escape) reach GIMP between the snippet's steps; the snippet waits for flag files.
    """

    def __init__(self, gimp: Gimp, size: str = "1280x800"):
        self.gimp = gimp
        self.display = free_display()
        self.fbdir = gimp.workdir / f"fb{self.display}"
        self.fbdir.mkdir(exist_ok=True)
        self.log = gimp.workdir / f"gimp-gui-{self.display}.log"
        self.xvfb = subprocess.Popen(
            ["chroot", str(gimp.rootfs), "env", "-i", "PATH=/usr/bin:/bin",
             "Xvfb", f":{self.display}", "-screen", "0", f"{size}x24", "-nolisten", "tcp",
             "-fbdir", str(self.fbdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc: subprocess.Popen | None = None
        deadline = time.monotonic() + 20
        while f"/tmp/.X11-unix/X{self.display}" not in Path("/proc/net/unix").read_text():
            if self.xvfb.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb :{self.display} did not start")
            time.sleep(0.1)

    def start(self, body: str, env: dict | None = None) -> None:
        cmd = self.gimp.command(dict(env or {}, DISPLAY=f":{self.display}"))
        at = cmd.index("gimp-console-3.0")
        cmd[at:at + 2] = ["gimp-3.0", "--no-splash"]  # the GUI instead of "gimp-console-3.0 -i"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self.log.open("wb"),
                                     stderr=subprocess.STDOUT)
        self.proc.stdin.write(self.gimp.script(body).encode())
        self.proc.stdin.close()

    def xdotool(self, *args: str) -> str:
        res = subprocess.run(["chroot", str(self.gimp.rootfs), "env", "-i", "PATH=/usr/bin:/bin",
                              f"DISPLAY=:{self.display}", "xdotool", *args],
                             capture_output=True, text=True, check=False, timeout=30)
        return res.stdout.strip()

    def window(self, pattern: str, timeout: float = 60) -> str:
        """The id of the first window whose title matches `pattern` (a regex), waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.xdotool("search", "--onlyvisible", "--name", pattern).split()
            if found:
                return found[0]
            self.check_alive()
            time.sleep(0.3)
        raise AssertionError(f"no window matching {pattern!r} within {timeout} s:\n{self.output()}")

    def key(self, window: str, *keys: str) -> None:
        self.xdotool("windowfocus", "--sync", window)
        self.xdotool("key", "--clearmodifiers", "--window", window, *keys)

    def keys(self, *keys: str, pause: float = 0.25) -> None:
        """Keys to whatever has the keyboard (an open menu), one at a time."""
        for key in keys:
            self.xdotool("key", key)
            time.sleep(pause)

    def click(self, widget: dict) -> None:
        """A left click in the middle of a widget of a dialog's map (see ui())."""
        self.xdotool("mousemove", "--sync", str(widget["x"]), str(widget["y"]))
        time.sleep(0.2)
        self.xdotool("click", "1")

    def ui(self, path: Path, want, timeout: float = 60) -> dict:
        """The open dialog's widgets as the plug-in maps them ($STYLEFILL_UI_MAP=path, see
        dialogs.py: {title, widgets: {name: {x, y, label, sensitive, image, active, focus}}})
        once want(map) is true."""
        deadline = time.monotonic() + timeout
        data = None
        while True:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = None
            if data is not None and want(data):
                return data
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"the dialog did not get there within {timeout} s: {data}\n"
                                     f"{self.output()}")
            time.sleep(0.2)

    def gone(self, pattern: str, timeout: float = 60) -> None:
        """Wait until no visible window's title matches `pattern`."""
        deadline = time.monotonic() + timeout
        while self.xdotool("search", "--onlyvisible", "--name", pattern).split():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} still open after {timeout} s")
            time.sleep(0.2)

    def dismiss(self, pattern: str, timeout: float = 60) -> None:
        """Escape to the window whose title matches `pattern` until it is gone (a dialog that
        has just been mapped may not listen to the keyboard yet)."""
        deadline = time.monotonic() + timeout
        while found := self.xdotool("search", "--onlyvisible", "--name", pattern).split():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} still open after {timeout} s")
            self.key(found[0], "Escape")
            time.sleep(2.0)

    def wait_file(self, path: Path, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{path.name} did not appear within {timeout} s:\n"
                                     f"{self.output()}")
            time.sleep(0.2)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"GIMP exited with {self.proc.returncode}:\n{self.output()}")

    def screenshot(self, png: Path) -> Path:
        xwd_to_png(self.fbdir / "Xvfb_screen0", png)
        return png

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""

    def finish(self, timeout: float = 120) -> GimpRun:
        start = time.monotonic()
        self.proc.wait(timeout=timeout)
        return GimpRun(self.proc.returncode, self.log.read_text(errors="replace"),
                       time.monotonic() - start)

    def close(self) -> None:
        for proc in (self.proc, self.xvfb):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
