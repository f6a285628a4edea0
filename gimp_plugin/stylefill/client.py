"""HTTP client for the Stylefill engine (docs/protocol.md, version 1), standard library only.

It runs inside GIMP's own Python, so nothing here may need numpy, torch or GIMP; that also keeps
it testable on its own. Everything a user can act on surfaces as one `EngineError` message.

    python3 client.py check   # show the config, reach (or start) the engine, print its health
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

PROTOCOL = 1  # the `api` version of GET /v1/health this client speaks
PREVIEW_EVERY = 1.0  # s between preview fetches while a job runs: each redraws a layer in GIMP
CONFIG_NAME = "stylefill.json"
DEFAULT_URL = "http://127.0.0.1:8765"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class EngineError(Exception):
    """A failure explained in one message a user can act on."""


class Cancelled(EngineError):
    """The job was cancelled (by the user, a timeout, or another client)."""


class Unreachable(EngineError):
    """Nothing answers at the engine's URL (refused, timed out, no route)."""


class NotFound(EngineError):
    """The engine has no such thing (404): a job, after a restart, is one."""


# ----------------------------------------------------------------------------- configuration

def default_token_file() -> str:
    """Where the engine keeps its token (same rule as engine/stylefill/config.py)."""
    base = os.environ.get("STYLEFILL_CONFIG")
    if not base:
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        base = os.path.join(xdg, "stylefill")
    return os.path.join(base, "token")


def config_path() -> str:
    """$STYLEFILL_PLUGIN_CONFIG, else stylefill.json next to this file (the installer puts it there)."""
    return os.environ.get("STYLEFILL_PLUGIN_CONFIG") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), CONFIG_NAME)


class Config:
    """What the installer wrote: where the engine is, how to authenticate, how to start it.

    Keys of stylefill.json (all optional): `url`, `token` (inline, e.g. for a remote engine),
    `token_file`, `engine_command` (argv list), `engine_env` (extra environment for it),
    `engine_log`, `start_timeout` (s), `request_timeout` (s).
    """

    def __init__(self, data: dict | None = None, path: str | None = None):
        data = dict(data or {})
        self.path = path
        self.url = str(data.get("url") or DEFAULT_URL).rstrip("/")
        self.token = data.get("token") or None
        self.token_file = data.get("token_file") or default_token_file()
        cmd = data.get("engine_command") or []
        if isinstance(cmd, str):
            cmd = [cmd]
        self.engine_command = [str(c) for c in cmd]
        self.engine_env = {str(k): str(v) for k, v in (data.get("engine_env") or {}).items()}
        self.engine_log = data.get("engine_log") or os.path.join(
            os.path.dirname(self.token_file), "engine.log")
        self.start_timeout = float(data.get("start_timeout", 120))
        self.request_timeout = float(data.get("request_timeout", 120))
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise EngineError(f"engine URL {self.url!r} in {path or 'the config'} is not an "
                              "http(s) URL like http://127.0.0.1:8765")
        self.host = parsed.hostname

    @property
    def local(self) -> bool:
        """True for an engine on this machine (the only kind the plug-in may start)."""
        return self.host in LOOPBACK

    @classmethod
    def load(cls, path: str | None = None) -> Config:
        """Read stylefill.json; a missing file means the defaults (local engine, default token)."""
        path = path or config_path()
        if not os.path.exists(path):
            return cls({}, path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read the Stylefill plug-in config {path}: {exc}; "
                              "run install/install.sh again to rewrite it") from None
        if not isinstance(data, dict):
            raise EngineError(f"{path}: expected a JSON object; run install/install.sh again")
        return cls(data, path)


# ------------------------------------------------------------------------------ PNG encoding

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(width: int, height: int, pixels: bytes, channels: int) -> bytes:
    """8-bit PNG of raw rows (1 = grey, 3 = RGB, 4 = RGBA), filter "none", zlib level 6.

    Encoding by hand costs a few ms per megapixel and avoids round-trips through temporary
    GIMP images and export settings; decoding is left to GIMP's own PNG loader.
    """
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    stride = width * channels
    if len(pixels) != stride * height:
        raise ValueError(f"expected {stride * height} bytes for {width}x{height}x{channels}, "
                         f"got {len(pixels)}")
    view = memoryview(pixels)
    raw = b"".join(b"\x00" + view[y * stride:(y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header, or EngineError when it is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise EngineError("the engine sent a result that is not a PNG image")
    return struct.unpack(">II", data[16:24])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ------------------------------------------------------------------------------------ client

def _detail(body: bytes) -> str:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return body.decode("utf-8", "replace").strip()[:300]
    if isinstance(data, dict) and "detail" in data:
        detail = data["detail"]
        if isinstance(detail, list):  # request validation errors: field locations and messages
            detail = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', []) if p != 'body')}: {d.get('msg')}"
                if isinstance(d, dict) else str(d) for d in detail)
        return str(detail)
    return json.dumps(data)[:300]


class Client:
    """One engine: health and version check, starting it when local, requests, jobs."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config.load()
        handlers = [urllib.request.ProxyHandler({})] if self.config.local else []
        # A proxy from the environment must never reroute 127.0.0.1 (it would see the token).
        self._opener = urllib.request.build_opener(*handlers)
        self.health_info: dict | None = None
        self.spawned: subprocess.Popen | None = None  # the engine this client started, if any

    # -- low level

    def _token(self) -> str:
        if self.config.token:
            return str(self.config.token).strip()
        try:
            with open(self.config.token_file, encoding="ascii") as f:
                token = f.read().strip()
        except FileNotFoundError:
            raise EngineError(
                f"no engine token at {self.config.token_file}: the engine writes it on its first "
                "start. For a remote engine copy its token there or put \"token\" into "
                f"{self.config.path or 'stylefill.json'}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise EngineError(f"cannot read the engine token {self.config.token_file}: {exc}") from None
        if not token:
            raise EngineError(f"the engine token file {self.config.token_file} is empty")
        return token

    def request(self, method: str, path: str, body: dict | None = None, *, auth: bool = True,
                timeout: float | None = None, raw: bool = False):
        """One call; JSON answer (or bytes with raw=True); every failure becomes EngineError."""
        url = self.config.url + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = "Bearer " + self._token()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=timeout or self.config.request_timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc.read())
            if exc.code == 401:
                raise EngineError(
                    f"the engine at {self.config.url} rejected the token from "
                    f"{self.config.token if self.config.token else self.config.token_file} "
                    f"({detail}). Local: restart GIMP after reinstalling; remote: copy the "
                    "engine's token file.") from None
            if exc.code == 429:
                raise EngineError(f"the engine is busy (queue full): {detail}; try again shortly"
                                  ) from None
            if exc.code == 404:
                raise NotFound(detail or "the engine has no such thing (404)") from None
            if 400 <= exc.code < 500:
                raise EngineError(detail or f"the engine refused the request ({exc.code})") from None
            raise EngineError(f"the engine failed ({exc.code}): {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the Stylefill engine at {self.config.url}: {reason}"
                              ) from None
        if raw:
            return payload
        try:
            return json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise EngineError(f"{url} did not answer with JSON; is something other than the "
                              "Stylefill engine listening there?") from None

    def health(self, timeout: float = 3.0) -> dict:
        """GET /v1/health, checked: a Stylefill engine that speaks this protocol version."""
        try:
            info = self.request("GET", "/v1/health", auth=False, timeout=timeout)
        except Unreachable:
            raise
        except EngineError as exc:
            raise EngineError(f"{self.config.url} answers, but not like a Stylefill engine "
                              f"({exc}); is another program using that port? Change \"url\" "
                              f"in {self.config.path}") from None
        if not isinstance(info, dict) or info.get("name") != "stylefill":
            raise EngineError(f"{self.config.url} answers, but it is not a Stylefill engine "
                              f"({str(info)[:100]}); change \"url\" in {self.config.path}")
        api = info.get("api")
        if api != PROTOCOL:
            raise EngineError(
                f"the engine at {self.config.url} (version {info.get('version', '?')}) speaks "
                f"protocol {api}, this plug-in speaks {PROTOCOL}; run install/install.sh from "
                "the same Stylefill checkout to update both")
        self.health_info = info
        return info

    # -- starting a local engine

    def _answers(self) -> bool:
        try:
            self.health(timeout=2.0)
            return True
        except Unreachable:
            return False

    def ensure_running(self, progress=None) -> dict:
        """Health of a running engine; a local one that does not answer is started and awaited.

        progress(fraction, text) may return False to give up waiting.
        """
        if self._answers():
            return self.health_info
        cfg = self.config
        how = (" ".join(cfg.engine_command) if cfg.engine_command
               else "stylefill serve (from the engine's venv)")
        if not cfg.local:
            raise EngineError(f"the remote Stylefill engine at {cfg.url} is not answering; start "
                              f"it there with `stylefill serve --host ...` or fix \"url\" in {cfg.path}")
        if not cfg.engine_command:
            raise EngineError(f"the Stylefill engine is not answering at {cfg.url} and no "
                              f"engine_command is configured in {cfg.path}; start it with: {how}")
        proc = self.spawned = self._spawn()
        start = time.monotonic()
        down = f"the Stylefill engine is not answering at {cfg.url}"
        while True:
            waited = time.monotonic() - start
            if self._answers():
                return self.health_info
            code = proc.poll()
            if code is not None and not self._answers():
                raise EngineError(f"{down} and `{how}` exited with code {code} while starting: "
                                  f"{_tail(cfg.engine_log)} (log: {cfg.engine_log})")
            if waited > cfg.start_timeout:
                raise EngineError(f"{down}: `{how}` was started but did not answer within "
                                  f"{cfg.start_timeout:.0f} s (log: {cfg.engine_log})")
            if progress and progress(min(0.99, waited / 30.0),
                                     f"Starting the Stylefill engine ({waited:.0f} s)") is False:
                raise Cancelled("cancelled while the engine was starting (it keeps starting)")
            time.sleep(0.25)

    def _spawn(self) -> subprocess.Popen:
        """Start the engine detached: it must outlive this plug-in call and serve the next ones."""
        cfg = self.config
        env = dict(os.environ)
        for var in ("PYTHONPATH", "PYTHONHOME"):  # GIMP's Python settings are not the engine's
            env.pop(var, None)
        env.update(cfg.engine_env)                # what the config gives the engine is
        kwargs: dict = {}
        if os.name == "nt":
            kwargs["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP
                                       | subprocess.DETACHED_PROCESS)
        else:
            kwargs["start_new_session"] = True
        try:
            os.makedirs(os.path.dirname(cfg.engine_log) or ".", exist_ok=True)
            log = open(cfg.engine_log, "ab")
        except OSError:
            log = open(os.devnull, "wb")  # no log is no reason not to start the engine
        try:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: "
                      f"{' '.join(cfg.engine_command)}\n".encode())
            log.flush()
            return subprocess.Popen(cfg.engine_command, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, close_fds=True, **kwargs)
        except OSError as exc:
            raise EngineError(
                f"the Stylefill engine is not answering at {cfg.url} and starting "
                f"`{' '.join(cfg.engine_command)}` failed: {exc.strerror or exc}. Run "
                "install/install.sh again, or start the engine yourself with `stylefill serve`"
            ) from None
        finally:
            log.close()

    # -- endpoints

    def backbones(self) -> dict:
        return self.request("GET", "/v1/backbones")

    def suggest(self, image_png: bytes, mask_png: bytes | None = None, rect=None, top: int = 5,
                backbone: str | None = None, look: str = "around") -> list[dict]:
        """Classes for the selection: what fits `around` it, or what it holds (`inside`)."""
        body: dict = {"image": b64(image_png), "top": int(top)}
        if look != "around":
            body["look"] = look
        if mask_png is not None:
            body["mask"] = b64(mask_png)
        if rect is not None:
            body["rect"] = [int(v) for v in rect]
        if backbone:
            body["backbone"] = backbone
        answer = self.request("POST", "/v1/suggest", body)
        return list(answer.get("suggestions", []))

    def styles(self, cls: str, backbone: str | None = None) -> dict | None:
        """The learned styles of a class, or None when none were learned yet."""
        query = "?" + urllib.parse.urlencode({"backbone": backbone}) if backbone else ""
        try:
            return self.request("GET", f"/v1/styles/{urllib.parse.quote(str(cls), safe='')}{query}")
        except EngineError as exc:
            if "no styles" in str(exc):
                return None
            raise

    def prefetch_styles(self, cls: str, backbone: str | None = None) -> dict:
        """Ask the engine to learn the class's styles in the background (one-time, cached)."""
        query = "?" + urllib.parse.urlencode({"backbone": backbone}) if backbone else ""
        return self.request("POST", f"/v1/styles/{urllib.parse.quote(str(cls), safe='')}/"
                                    f"prefetch{query}")

    def style_preview(self, cls: str, style_id: int, backbone: str | None = None) -> bytes:
        query = "?" + urllib.parse.urlencode({"backbone": backbone}) if backbone else ""
        return self.request("GET", f"/v1/styles/{urllib.parse.quote(str(cls), safe='')}/"
                                   f"{int(style_id)}/preview.png{query}", raw=True)

    def create_job(self, kind: str, params: dict, image_png: bytes | None = None,
                   mask_png: bytes | None = None, rect=None) -> dict:
        body: dict = {"kind": kind, "params": params}
        if image_png is not None:
            body["image"] = b64(image_png)
        if mask_png is not None:
            body["mask"] = b64(mask_png)
        if rect is not None:
            body["rect"] = [int(v) for v in rect]
        return self.request("POST", "/v1/jobs", body)

    def job(self, job_id: str) -> dict:
        return self.request("GET", f"/v1/jobs/{job_id}", timeout=30)

    def cancel(self, job_id: str) -> dict:
        return self.request("POST", f"/v1/jobs/{job_id}/cancel", timeout=30)

    def result(self, job_id: str) -> dict:
        return self.request("GET", f"/v1/jobs/{job_id}/result")

    def job_preview(self, job_id: str) -> bytes | None:
        """The running job's latest preview PNG; None when it has none (yet) or it cannot be
        had: a preview is a courtesy, the job's status says what matters."""
        try:
            return self.request("GET", f"/v1/jobs/{job_id}/preview.png", raw=True, timeout=30)
        except EngineError:
            return None

    def wait(self, job_id: str, progress=None, timeout: float = 0.0, poll: float = 0.25,
             on_preview=None) -> dict:
        """Poll a job until it ends; its result dict when done.

        progress(fraction, text) returning False, or `timeout` seconds (0 = none) passing,
        cancels the job on the engine and raises Cancelled; a failed job raises EngineError.
        on_preview(png) gets the running job's preview at most every PREVIEW_EVERY seconds.
        """
        start = time.monotonic()
        previewed = start
        while True:
            status = self._status(job_id)
            state = status.get("state")
            if state == "done":
                return self._status(job_id, self.result)
            if state == "failed":
                raise EngineError(status.get("message") or "the engine job failed")
            if state == "cancelled":
                raise Cancelled("the engine job was cancelled")
            text = status.get("stage") or state or ""
            if state == "queued" and status.get("position"):
                text = f"waiting for the engine (queue position {status['position']})"
            stop = progress is not None and progress(
                float(status.get("progress") or 0) / 100.0, text) is False
            if on_preview and state == "running" and time.monotonic() - previewed >= PREVIEW_EVERY:
                previewed = time.monotonic()
                png = self.job_preview(job_id)
                if png:
                    on_preview(png)
            elapsed = time.monotonic() - start
            if stop or (timeout and elapsed > timeout):
                self.cancel_and_wait(job_id)
                why = "by the user" if stop else f"after the time limit of {timeout:g} s"
                raise Cancelled(f"the engine job was cancelled {why}")
            time.sleep(poll)

    def _status(self, job_id: str, ask=None) -> dict:
        """The job's status (or `ask(job_id)`); an engine that stopped, or restarted and so
        forgot its jobs, is said to have lost the job, not to be a bug or a refusal."""
        try:
            return (ask or self.job)(job_id)
        except Unreachable as exc:
            raise EngineError(f"the Stylefill engine stopped while the job ran, so nothing was "
                              f"added; run it again ({exc})") from None
        except NotFound:
            raise EngineError("the Stylefill engine restarted while the job ran and no longer "
                              "has it, so nothing was added; run it again") from None

    def cancel_and_wait(self, job_id: str, limit: float = 10.0) -> str:
        """Cancel a job and wait (briefly) until the engine says it stopped; its final state."""
        state = self.cancel(job_id).get("state")
        end = time.monotonic() + limit
        while state in ("queued", "running") and time.monotonic() < end:
            time.sleep(0.2)
            state = self.job(job_id).get("state")
        return state

    def run_job(self, kind: str, params: dict, image_png: bytes | None = None,
                mask_png: bytes | None = None, rect=None, progress=None, timeout: float = 0.0,
                on_created=None, on_preview=None) -> dict:
        """Create a job and wait for its result; Ctrl-C or any error here cancels it."""
        job = self.create_job(kind, params, image_png, mask_png, rect)
        job_id = job["id"]
        if on_created:
            on_created(job_id)
        try:
            return self.wait(job_id, progress, timeout, on_preview=on_preview)
        except Cancelled:
            raise
        except BaseException:
            try:
                self.cancel(job_id)
            except EngineError:
                pass
            raise


class Session:
    """The engine for one plug-in run (dialog and job): reached once, on first use, with one
    health check (starting a local engine that is down), then reused; the class suggestions
    for one region are asked once and shared by the dialog and the run."""

    def __init__(self, config: Config | None = None):
        self._config = config
        self.client: Client | None = None          # None until connect() succeeded
        self._suggested: dict = {}                 # (region, backbone) -> (top asked, answer)

    def connect(self, progress=None) -> Client:
        if self.client is None:
            client = Client(self._config or Config.load())
            client.ensure_running(progress)
            self.client = client
        return self.client

    def suggest(self, image_png: bytes, mask_png: bytes, top: int = 5,
                backbone: str | None = None, progress=None, look: str = "around") -> list[dict]:
        """The engine's best `top` classes for the region; asked again only for more of them."""
        key = (hashlib.sha256(image_png).digest(), hashlib.sha256(mask_png).digest(), backbone,
               look)
        asked, found = self._suggested.get(key, (0, []))
        if asked < top:
            found = self.connect(progress).suggest(image_png, mask_png, top=top, backbone=backbone,
                                                   look=look)
            self._suggested[key] = (top, found)
        return found[:top]

    def run_job(self, kind: str, params: dict, progress=None, time_limit: float | None = None,
                on_preview=None, **payload) -> dict:
        """One job to its result, with a watchdog that cancels it when this process is killed
        (GIMP's Cancel kills the plug-in); prints `stylefill: KIND job ID` to stderr."""
        client = self.connect(progress)
        watchdog = []

        def created(job_id: str) -> None:
            watchdog.append(start_watchdog(client.config, job_id))
            print(f"stylefill: {kind} job {job_id}", file=sys.stderr, flush=True)

        try:
            return client.run_job(kind, params, progress=progress, timeout=time_limit or 0.0,
                                  on_created=created, on_preview=on_preview, **payload)
        finally:
            if watchdog:
                release_watchdog(watchdog[0])


def _tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()[-4000:]
    except OSError:
        return "no log"
    text = text.rsplit("\n--- ", 1)[-1].split("\n", 1)[-1]  # this start's lines only
    last = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(last) if last else "empty log"


# -------------------------------------------------------------------------------- watchdog

def start_watchdog(config: Config, job_id: str) -> subprocess.Popen | None:
    """Cancel `job_id` if this process dies before calling `release_watchdog`.

    GIMP answers the Cancel button of a plug-in's progress by killing the plug-in (SIGKILL),
    so the plug-in cannot cancel its job itself; a small helper that holds the read end of a
    pipe sees the pipe close and cancels the job on the engine instead.
    """
    env = dict(os.environ)
    if config.path:
        env["STYLEFILL_PLUGIN_CONFIG"] = config.path
    kwargs: dict = {"start_new_session": True} if os.name != "nt" else {}
    try:
        return subprocess.Popen([sys.executable, os.path.abspath(__file__), "watch", job_id],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, close_fds=True, **kwargs)
    except OSError:
        return None  # no watchdog: the job then only stops when it ends


def release_watchdog(proc: subprocess.Popen | None) -> None:
    """Tell the watchdog the job needs no cancelling, and let it exit."""
    if proc is None:
        return
    try:
        proc.stdin.write(b"done\n")
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _watch(job_id: str) -> int:
    """Block until the parent writes "done" or dies (EOF); on death, cancel the job."""
    try:
        said = sys.stdin.buffer.read()
    except OSError:
        said = b""
    if b"done" in said:
        return 0
    try:
        client = Client(Config.load())
        if client.job(job_id).get("state") in ("queued", "running"):
            client.cancel(job_id)
    except EngineError:
        return 1
    return 0


def _check() -> int:
    """Print the config in use and what the engine answers (for troubleshooting)."""
    try:
        cfg = Config.load()
        print(f"config: {cfg.path} ({'found' if os.path.exists(cfg.path) else 'missing: defaults'})")
        print(f"url: {cfg.url} ({'local' if cfg.local else 'remote'})")
        print(f"token: {'inline' if cfg.token else cfg.token_file}")
        print(f"engine command: {' '.join(cfg.engine_command) or '(none)'}")
        client = Client(cfg)
        info = client.ensure_running(lambda f, text: print(text, file=sys.stderr) or True)
        print(f"engine: {info.get('name')} {info.get('version')} protocol {info.get('api')}")
        bb = client.backbones()
        print("backbones: " + ", ".join(b.get("name", "?") for b in bb.get("backbones", [])))
    except EngineError as exc:
        print(f"stylefill: {exc}", file=sys.stderr)
        return 1
    print("ok")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "watch":
        return _watch(argv[1])
    if argv == ["check"]:
        return _check()
    print("usage: client.py check | watch JOB_ID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
