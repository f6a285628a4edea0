"""A bounded load on the real engine on 127.0.0.1: 20 clients for 20 s (60 s with
STYLEFILL_LONG_LOAD=1) sending health checks, small suggests, small jobs and large bodies without
the token, all at once. It holds when nothing but 401 (no token) and 429 (busy) is refused,
nothing fails, and the engine's memory stays under a ceiling. p95 latencies, throughput and the
memory peak go to the log and to load.json in pytest's temporary folder."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from harness import Engine
from test_server import FINISHED, b64_png, noise

MiB = 2**20
LONG = os.environ.get("STYLEFILL_LONG_LOAD") == "1"
SECONDS = 60 if LONG else 20
CLIENTS = {"health": 6, "suggest": 6, "job": 4, "no token, 16 MiB body": 4}
CEILING = 512 * MiB  # above the engine's resident memory once warm


def rss(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


class Load:
    """What the clients saw: answers by kind and status, latencies of successful answers."""

    def __init__(self, engine: Engine, until: float):
        self.engine, self.until = engine, until
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []

    def timed(self, kind: str, call: Callable[[], httpx.Response], ok: set[int]) -> httpx.Response:
        start = time.monotonic()
        try:
            r = call()
        except httpx.HTTPError as exc:
            with self.lock:
                self.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
            raise
        with self.lock:
            self.statuses[f"{kind} {r.status_code}"] += 1
            if r.status_code in ok:
                self.seconds[kind].append(time.monotonic() - start)
            if r.status_code not in ok | {429}:
                self.failures.append(f"{kind}: {r.status_code} {r.text[:200]}")
        return r

    def run(self, kind: str) -> None:
        photo, body = b64_png(noise(64, 64)), b"x" * (16 * MiB)
        token = None if kind.startswith("no token") else "default"
        with self.engine.client(token) as c:
            while time.monotonic() < self.until:
                try:
                    if kind == "health":
                        self.timed(kind, lambda: c.get("/v1/health"), {200})
                    elif kind == "suggest":
                        self.timed(kind, lambda: c.post("/v1/suggest", json={
                            "image": photo, "rect": [16, 16, 24, 24], "top": 3}), {200})
                    elif kind == "job":
                        self.job(c)
                    else:
                        self.timed(kind, lambda: c.post("/v1/jobs", content=body), {401})
                except httpx.HTTPError:
                    time.sleep(0.1)

    def job(self, c: httpx.Client) -> None:
        """A small visualize job, followed until it is done (or the load is over)."""
        r = self.timed("job", lambda: c.post("/v1/jobs", json={
            "kind": "visualize", "params": {"class": "goldfish", "iters": 3, "size": 32}}), {202})
        if r.status_code != 202:
            time.sleep(0.2)  # the queue is full: come back later
            return
        while True:
            state = c.get(f"/v1/jobs/{r.json()['id']}").json()["state"]
            if state in FINISHED or time.monotonic() > self.until:
                with self.lock:
                    self.statuses[f"job {state}"] += 1
                return
            time.sleep(0.1)


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def warm_up(engine: Engine) -> None:
    """One suggest and one job first: the network and the solver are loaded once, not under load."""
    with engine.client() as c:
        assert c.post("/v1/suggest", json={"image": b64_png(noise(64, 64)),
                                           "rect": [16, 16, 24, 24]}).status_code == 200
        job = c.post("/v1/jobs", json={"kind": "visualize", "params": {
            "class": "goldfish", "iters": 3, "size": 32}}).json()
        while c.get(f"/v1/jobs/{job['id']}").json()["state"] not in FINISHED:
            time.sleep(0.1)


def test_the_engine_holds_a_bounded_load(engine: Engine, capsys, tmp_path_factory):
    warm_up(engine)
    start_rss = rss(engine.pid)
    load = Load(engine, time.monotonic() + SECONDS)
    threads = [threading.Thread(target=load.run, args=(kind,))
               for kind, count in CLIENTS.items() for _ in range(count)]
    peak = start_rss
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss(engine.pid))
        time.sleep(0.1)
    figures = {
        "clients": sum(CLIENTS.values()), "seconds": SECONDS, "answers": dict(load.statuses),
        "p95_s": {kind: round(p95(v), 3) for kind, v in load.seconds.items()},
        "median_s": {kind: round(float(np.median(v)), 3) for kind, v in load.seconds.items()},
        "engine_rss_mib": {"start": start_rss // MiB, "peak": peak // MiB},
        "failures": load.failures[:20]}
    (tmp_path_factory.getbasetemp() / "load.json").write_text(json.dumps(figures, indent=2))
    with capsys.disabled():
        print(f"\nload: {json.dumps(figures)}")
    assert load.failures == []
    assert load.statuses["health 200"] > 0 and load.statuses["suggest 200"] > 0
    assert load.statuses["job done"] > 0 and load.statuses["no token, 16 MiB body 401"] > 0
    assert peak - start_rss < CEILING, figures["engine_rss_mib"]
    with engine.client() as c:
        assert c.get("/v1/backbones").status_code == 200  # and it still answers
