"""A shared engine on Ray Serve (`stylefill serve --ray ADDRESS --replicas N`; docs/scale.md).

The same /v1 protocol, token and limits as `stylefill serve`: every HTTP replica runs the app
of server.create_app (its gate for Host, token and body size, its slots for immediate routes),
with one difference, the job store. Instead of a queue in its own process, each HTTP replica
uses `RayJobs`:

- **`JobRegistry`** (registry.py), one Ray actor, holds every job's state (status, progress,
  stage, latest preview, result, a cancel request). Its methods run one at a time, so adding,
  starting and cancelling a job are atomic. Any HTTP replica answers status, preview, result
  and cancel of any job from it. It bounds the jobs waiting (429 beyond `max_queued`, as the
  plain engine does).
- **`Worker`**, a Serve deployment of N replicas with `max_ongoing_requests=1`: a job is a
  request to it. Serve's router keeps the requests no replica can take yet and hands each to
  the first free one; nothing here schedules. A worker runs the job with jobs.execute (the
  code of the plain engine's queue), reports to the registry every UPDATE_S seconds and hears
  a cancel there, which it passes to the job's cancel event: the running solver stops at its
  next step, on whichever replica it runs.
- Immediate routes (suggest, classify) run in the HTTP replica that receives them, in its
  slots, never behind a job.

Ray imports happen only here and only when serving on Ray; the classes below are plain Python
until `application` makes them a Ray actor and Serve deployments.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch

from .. import jobs
from .. import server as engine
from ..config import DEFAULT_HOST, DEFAULT_PORT, allowed_folders, ensure_token, token_path
from ..errors import InputError, StylefillError
from ..jobs import CANCELLED, DONE, RUNNING, Job, QueueFull, Run, UnknownJob
from ..paths import models_dir
from . import LOCAL, connected, require_ray, workers
from .registry import KEEP_FINISHED, MAX_QUEUED, JobRegistry

APP = "stylefill"
UPDATE_S = 0.2       # a running job's progress, preview and cancel travel this often
CALL_S = 30.0        # the longest a registry call may take before the request fails
HTTP_CONCURRENCY = 64  # requests one HTTP replica takes at once (its slots bound the computing)

log = logging.getLogger(__name__)


class RemoteJob:
    """A job as an HTTP replica sees it: a snapshot of its status, the rest on request."""

    def __init__(self, jobs: RayJobs, status: dict):
        self.id, self.status, self._jobs = status["id"], status, jobs

    def preview_png(self) -> bytes | None:
        known, png = self._jobs.call("preview", self.id)
        if not known:
            raise self._jobs.unknown(self.id)
        return png

    def result(self) -> dict[str, Any]:
        result = self._jobs.call("result", self.id)
        if result is None:
            raise self._jobs.unknown(self.id)
        return result


class RayJobs:
    """The job store of an HTTP replica (jobs.JobStore): state in the registry actor, work
    sent to the Worker deployment, whose router queues it for the first free replica."""

    def __init__(self, registry: Any, worker: Any):
        self.registry, self.worker = registry, worker
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sent: set[asyncio.Future] = set()

    def start(self) -> None:
        """Called in the app's startup, on the replica's event loop (where jobs are sent from)."""
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        """Jobs belong to the cluster, not to this replica: they go on (the command that
        started the engine ends them by deleting the application)."""

    def call(self, method: str, *args: Any) -> Any:
        ray = require_ray()
        return ray.get(getattr(self.registry, method).remote(*args), timeout=CALL_S)

    def unknown(self, job_id: str) -> UnknownJob:
        return UnknownJob(f"no job '{job_id}' (finished jobs are kept for the last "
                          f"{KEEP_FINISHED} only)")

    def submit(self, kind: str, run: Run) -> RemoteJob:
        status = self.call("add", kind)
        if isinstance(status, int):
            raise QueueFull(f"the engine is busy: {status} jobs are already waiting; try again "
                            "when one has finished")
        future = asyncio.run_coroutine_threadsafe(self._send(status["id"], kind, run), self._loop)
        self._sent.add(future)
        future.add_done_callback(self._sent.discard)
        return RemoteJob(self, status)

    async def _send(self, job_id: str, kind: str, run: Run) -> None:
        """The job as a request to the workers; a failed request (its replica died) fails it."""
        try:
            await self.worker.run.remote(job_id, kind, run)
        except Exception as exc:  # noqa: BLE001 - Ray's and Serve's errors alike
            log.warning("job %s: its worker request failed: %r", job_id, exc)
            self.registry.lost.remote(job_id, f"the replica running it stopped ({type(exc).__name__}); "
                                      "submit it again")

    def get(self, job_id: str) -> RemoteJob:
        status = self.call("status", job_id)
        if status is None:
            raise self.unknown(job_id)
        return RemoteJob(self, status)

    def cancel(self, job_id: str) -> RemoteJob:
        status = self.call("cancel", job_id)
        if status is None:
            raise self.unknown(job_id)
        return RemoteJob(self, status)

    def status(self, job: RemoteJob) -> dict:
        return job.status


class Worker:
    """A job replica (Serve deployment, `max_ongoing_requests=1`): runs one job at a time on
    `threads` torch threads, reporting to the registry and hearing a cancel from it."""

    def __init__(self, registry: Any, models: str, threads: int):
        os.environ["STYLEFILL_MODELS"] = models
        self.registry, self.threads = registry, threads

    def run(self, job_id: str, kind: str, run: Run) -> str:
        ray = require_ray()
        if not ray.get(self.registry.start.remote(job_id)):
            return CANCELLED  # cancelled while it waited for a replica
        torch.set_num_threads(self.threads)
        job = Job(kind, run, job_id)
        job._set(state=RUNNING, stage="starting")
        ended = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(ray, job, ended), daemon=True,
                                   name=f"stylefill-job-{job_id}")
        watcher.start()
        try:
            jobs.execute(job)
        finally:
            ended.set()
            watcher.join()
        with job._lock:
            fields = {k: getattr(job, k) for k in ("state", "stage", "message", "progress")}
        ray.get(self.registry.finish.remote(job_id, fields, job.result() if job.state == DONE else None))
        return job.state

    def _watch(self, ray: ModuleType, job: Job, ended: threading.Event) -> None:
        """Every UPDATE_S: progress, stage and a new preview to the registry; a cancel back."""
        sent = None
        while not ended.wait(UPDATE_S):
            png = job.preview_png()
            with job._lock:
                progress, stage = job.progress, job.stage
            try:
                stop = ray.get(self.registry.update.remote(job.id, progress, stage,
                                                           png if png is not sent else None),
                               timeout=CALL_S)
            except Exception as exc:  # noqa: BLE001 - the registry is gone: stop the job
                log.warning("job %s: the registry does not answer (%r): stopping it", job.id, exc)
                stop = True
            sent = png
            if stop:
                job.cancel_event.set()


class Ingress:
    """An HTTP replica (Serve ingress): server.create_app with the shared job store."""

    def __init__(self, settings: dict, registry: Any, worker: Any):
        os.environ["STYLEFILL_MODELS"] = settings["models"]
        self.settings, self.jobs = settings, RayJobs(registry, worker)

    def __serve_build_asgi_app__(self) -> Any:
        s = self.settings
        return engine.create_app(s["token"], host=s["host"], folders=s["folders"],
                                 max_body=s["max_body"], background_styles=s["background_styles"],
                                 jobs=self.jobs)


def application(ray: ModuleType, settings: dict, replicas: int, threads: int,
                max_queued: int = MAX_QUEUED) -> Any:
    """The Serve application: N HTTP replicas (no CPU reserved: they answer and decode) and N
    job replicas of `threads` CPUs each, sharing one registry actor."""
    from ray import serve

    registry = ray.remote(JobRegistry).options(num_cpus=0).remote(max_queued)
    worker = serve.deployment(Worker, name="stylefill-jobs", num_replicas=replicas,
                              max_ongoing_requests=1, ray_actor_options={"num_cpus": threads})
    http = serve.deployment(serve.ingress()(Ingress), name="stylefill-http", num_replicas=replicas,
                            max_ongoing_requests=HTTP_CONCURRENCY, ray_actor_options={"num_cpus": 0})
    return http.bind(settings, registry, worker.bind(registry, settings["models"], threads))


def serve(address: str, replicas: int | None = None, host: str | None = None,
          port: int = DEFAULT_PORT, folders: Sequence[str] | None = None, threads: int = 1) -> None:
    """Run the engine on Ray Serve until interrupted (Ctrl-C, SIGTERM): `replicas` job replicas
    (default: one per `threads` CPUs of the cluster), as many HTTP replicas, behind Serve's
    proxy on host:port (loopback unless `host` says otherwise, with the plain engine's warning).
    With a local instance the port is checked first (busy: one line, as the plain engine's);
    `--port 0` (a local instance only) takes a free port, printed when the engine is ready."""
    if replicas is not None and replicas < 1:
        raise InputError("--replicas: give 1 or more")
    require_ray()
    bind = host or DEFAULT_HOST
    engine.warn_if_open(host)
    folders = allowed_folders(bind, folders)
    if address == LOCAL:  # the proxy listens here: a busy port is the plain engine's one line
        with engine.listen(bind, port) as sock:
            port = sock.getsockname()[1]  # --port 0: a free one
    elif port == 0:
        raise InputError("--port 0 works with --ray local only: give the port the cluster's "
                         "proxy is to listen on")
    settings = {"token": ensure_token(), "host": bind, "folders": list(folders),
                "max_body": engine.MAX_BODY, "models": str(models_dir().resolve()),
                "background_styles": os.environ.get("STYLEFILL_BACKGROUND_STYLES", "1") != "0"}
    with connected(address) as ray, _terminated_as_interrupt():
        from ray import serve as ray_serve

        logging.getLogger("ray.serve").setLevel(logging.WARNING)
        replicas = replicas or workers(ray, threads)
        _check_room(ray, address, replicas, threads)
        t0 = time.perf_counter()
        ray_serve.start(proxy_location="HeadOnly", http_options={"host": bind, "port": port})
        try:
            ray_serve.run(application(ray, settings, replicas, threads), name=APP, route_prefix="/")
            print(f"stylefill engine on {bind} port {port}; token in {token_path()}; Ray Serve on "
                  f"{address}: {replicas} job replica(s), ready in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
            engine.announce_folders(folders)
            _wait_for_interrupt()
        finally:
            if address != LOCAL:  # a local instance ends with the command, Serve and all
                ray_serve.delete(APP)


def _check_room(ray: ModuleType, address: str, replicas: int, threads: int) -> None:
    """Serve would wait for ever for CPUs a cluster does not have: say so at once."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if replicas * threads > cpus:
        raise StylefillError(f"--replicas {replicas} needs {replicas * threads} CPUs for its job "
                             f"replicas; the Ray cluster at {address} has {cpus}")


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stylefill: stopping the engine", file=sys.stderr, flush=True)


@contextmanager
def _terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, a test stopping the engine) ends the run like Ctrl-C, so a
    local Ray instance is shut down rather than left running without its driver."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
