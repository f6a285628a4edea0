"""`stylefill serve --ray local --replicas 2`: the engine on Ray Serve, started as a subprocess
the way a user starts it, on a real local Ray instance (127.0.0.1 only, bounded in time). The
same protocol as the plain engine (tests/api): health, token, Host check, jobs with progress,
previews, results and cancel, whichever HTTP replica a request reaches; jobs run on two job
replicas at once. The registry's bookkeeping is tested on its own, without Ray."""

from __future__ import annotations

import base64
import faulthandler
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from harness import ENGINE_LINE, Engine, isolated_models, needs_ray, wait_healthy
from PIL import Image

from stylefill import __version__, jobs
from stylefill.cli import main
from stylefill.cluster import registry as reg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gimp_plugin" / "stylefill"))
import client as sf  # noqa: E402  (the plug-in's own HTTP client, unchanged)

RAY_BUDGET_S = 300  # the whole module, Ray's and Serve's start included; a hang past it ends the run
START_S = 180
LONG = {"kind": "visualize", "params": {"class": "ladybug", "iters": 20_000, "size": 64}}
SMALL = [{"kind": "visualize", "params": {"class": "goldfish", "iters": 6, "size": 64, "seed": s}}
         for s in (0, 1, 0, 1)]
FINISHED = {"done", "failed", "cancelled"}

@pytest.fixture(scope="module")
def ray_engine(tmp_path_factory) -> Iterator[Engine]:
    """`python -m stylefill serve --ray local --replicas 2 --port 0` with a fresh config dir
    (token) and models dir; one torch thread a replica; stopped with SIGTERM, as a service."""
    faulthandler.dump_traceback_later(RAY_BUDGET_S, exit=True)
    config, log = tmp_path_factory.mktemp("config"), tmp_path_factory.mktemp("engine") / "engine.log"
    env = {**os.environ, "STYLEFILL_CONFIG": str(config), "STYLEFILL_BACKGROUND_STYLES": "0",
           "STYLEFILL_MODELS": str(isolated_models(tmp_path_factory.mktemp("models"))),
           "STYLEFILL_FOLDERS": str(tmp_path_factory.getbasetemp()), "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "stylefill", "serve", "--ray", "local",
                                 "--replicas", "2", "--port", "0"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        port = _port(proc, log)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 30, alive=lambda: proc.poll() is None)
        yield Engine(url, (config / "token").read_text().strip(), config, log, None, proc.pid)
    finally:
        proc.terminate()  # the engine shuts its Ray instance down
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        faulthandler.cancel_dump_traceback_later()


def _port(proc: subprocess.Popen, log) -> int:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and proc.poll() is None:
        found = ENGINE_LINE.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"the engine did not start:\n{log.read_text(errors='replace')}")


def _status(engine: Engine, job_id: str) -> dict:
    """A job's status through a new connection (Serve's proxy picks an HTTP replica each time)."""
    with engine.client() as c:
        r = c.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _wait(engine: Engine, job_id: str, until, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while not until(status := _status(engine, job_id)):
        assert time.monotonic() < deadline, f"job {job_id} stuck at {status}"
        time.sleep(0.05)
    return status


def _submit(engine: Engine, body: dict) -> dict:
    with engine.client() as c:
        r = c.post("/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    return r.json()


@needs_ray
def test_health_token_and_host_as_the_plain_engine(ray_engine):
    r = httpx.get(f"{ray_engine.url}/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "name": "stylefill", "version": __version__, "api": 1}
    for token, phrase in ((None, "missing token"), ("wrong", "wrong token")):
        with ray_engine.client(token) as c:
            r = c.get("/v1/backbones")
        assert r.status_code == 401 and phrase in r.json()["detail"], r.text
        assert r.headers["www-authenticate"] == "Bearer"
    with ray_engine.client() as c:
        assert c.get("/v1/backbones").status_code == 200
        r = c.get("/v1/backbones", headers={"Host": "rebound.example"})
        assert r.status_code == 421, r.text
        assert c.get("/v1/jobs/0123456789abcdef").status_code == 404


@needs_ray
def test_jobs_run_on_two_replicas_and_a_running_one_is_cancelled(ray_engine):
    """A long job runs on one job replica; four small ones submitted at once all finish beside
    it, on the other; then the long one is cancelled (it stops in its replica) and the small
    ones' results are fetched. Every request opens its own connection."""
    long = _submit(ray_engine, LONG)["id"]
    _wait(ray_engine, long, lambda s: s["stage"].startswith("optimising ") or s["state"] in FINISHED)
    with ThreadPoolExecutor(len(SMALL)) as pool:
        small = [j["id"] for j in pool.map(lambda body: _submit(ray_engine, body), SMALL)]
    assert len(set(small)) == len(SMALL)
    first = _wait(ray_engine, small[0], lambda s: s["state"] in FINISHED, 90)
    assert first["state"] == "done", first
    assert _status(ray_engine, long)["state"] == "running"  # two jobs computed at once
    with ray_engine.client() as c:
        preview = c.get(f"/v1/jobs/{long}/preview.png")
        assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).size == (64, 64)
        cancelled = c.post(f"/v1/jobs/{long}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] in ("running", "cancelled")
    t0 = time.monotonic()
    ended = _wait(ray_engine, long, lambda s: s["state"] in FINISHED, 30)
    assert ended["state"] == "cancelled" and "cancelled" in ended["message"], ended
    assert time.monotonic() - t0 < 10
    pngs = [_result(ray_engine, job_id) for job_id in small]
    assert pngs[0] == pngs[2] and pngs[1] == pngs[3] and pngs[0] != pngs[1]  # same seed, same picture
    with ray_engine.client() as c:
        assert c.get(f"/v1/jobs/{long}/result").status_code == 409


@needs_ray
def test_the_plug_in_client_works_unchanged_and_suggest_stays_immediate(ray_engine):
    """The plug-in's client: suggest answers while both job replicas compute and a job waits;
    a waiting job is cancelled in the queue; a job runs to its result once a replica is free."""
    plugin = sf.Client(sf.Config({"url": ray_engine.url, "token_file": str(ray_engine.config / "token")}))
    assert plugin.health()["name"] == "stylefill"
    busy = [plugin.create_job(LONG["kind"], LONG["params"])["id"] for _ in range(2)]
    for job_id in busy:
        _wait(ray_engine, job_id, lambda s: s["stage"].startswith("optimising ") or s["state"] in FINISHED)
    waiting = plugin.create_job(SMALL[0]["kind"], SMALL[0]["params"])
    dropped = plugin.create_job(SMALL[1]["kind"], SMALL[1]["params"])
    assert waiting["state"] == dropped["state"] == "queued" and dropped["position"] == 2
    assert plugin.cancel_and_wait(dropped["id"]) == "cancelled"
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    suggestions = plugin.suggest(buf.getvalue(), rect=(32, 24, 48, 40), top=3)
    assert len(suggestions) == 3 and all("class" in s for s in suggestions), suggestions
    assert plugin.job(waiting["id"])["state"] == "queued"  # suggest did not wait behind it
    assert [plugin.cancel_and_wait(job_id) for job_id in busy] == ["cancelled", "cancelled"]
    result = plugin.wait(waiting["id"])
    assert sf.png_size(base64.b64decode(result["png"])) == (64, 64)


def _result(engine: Engine, job_id: str) -> bytes:
    status = _wait(engine, job_id, lambda s: s["state"] in FINISHED)
    assert status["state"] == "done" and status["progress"] == 100, status
    with engine.client() as c:
        r = c.get(f"/v1/jobs/{job_id}/result")
    assert r.status_code == 200, r.text
    res = r.json()
    png = base64.b64decode(res["png"])
    img = Image.open(io.BytesIO(png))
    assert img.mode == "RGBA" and img.size == (64, 64) and res["size"] == [64, 64]
    assert res["offset"] == [0, 0] and res["metrics"]["class"] == "goldfish"
    return png


# The registry's bookkeeping, in this process (the actor is this class).

def test_the_registry_uses_the_protocol_states():
    assert (reg.QUEUED, reg.RUNNING, reg.DONE, reg.FAILED, reg.CANCELLED) == (
        jobs.QUEUED, jobs.RUNNING, jobs.DONE, jobs.FAILED, jobs.CANCELLED)
    assert set(reg.FINISHED) == set(jobs.FINISHED)


def test_the_registry_bounds_the_queue_and_cancels_waiting_and_running_jobs():
    r = reg.JobRegistry(max_queued=2, keep_finished=2)
    a, b = r.add("visualize")["id"], r.add("insert")["id"]
    assert r.add("visualize") == 2  # two waiting: the third is refused (429)
    assert (r.status(a)["position"], r.status(b)["position"]) == (1, 2)
    assert r.start(a) and r.status(a)["position"] is None and r.status(b)["position"] == 1
    assert r.cancel(b)["state"] == "cancelled" and not r.start(b)  # never runs
    assert r.update(a, 40, "optimising 4/10", b"png") is False
    assert r.preview(a) == (True, b"png") and r.status(a)["progress"] == 40
    assert r.cancel(a)["stage"] == "cancelling"
    assert r.update(a, 50, "optimising 5/10", None) is True and r.status(a)["stage"] == "cancelling"
    r.finish(a, {"state": "cancelled", "stage": "cancelled", "message": "cancelled at step 5"}, None)
    assert r.status(a)["state"] == "cancelled" and r.result(a) is None
    c = r.add("visualize")["id"]
    r.start(c)
    r.finish(c, {"state": "done", "stage": "done", "progress": 100, "message": None}, {"png": b"x"})
    assert r.result(c) == {"png": b"x"}
    r.lost(c, "gone")  # a finished job stays as it ended
    assert r.status(c)["state"] == "done"
    assert r.status(b) is None and r.preview(b) == (False, None)  # only the last 2 finished are kept
    d = r.add("visualize")["id"]
    r.lost(d, "the replica running it stopped")
    assert r.status(d)["state"] == "failed" and "stopped" in r.status(d)["message"]


def test_without_the_extra_serve_ray_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    assert main(["serve", "--ray", "local", "--replicas", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "install/install.sh --with-ray" in err[0], err


@needs_ray
def test_a_busy_port_is_one_line_before_ray_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLEFILL_CONFIG", str(tmp_path))
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", "--ray", "local", "--replicas", "1", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1 port {port}" in err[0], err


def test_replicas_go_with_ray(capsys):
    assert main(["serve", "--replicas", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ray ADDRESS" in err[0], err
