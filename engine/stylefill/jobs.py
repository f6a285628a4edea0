"""Compute jobs: a device's worker thread runs them one at a time from a bounded FIFO queue.

An optimisation takes seconds to minutes, longer than an HTTP request should; so the server
queues it here and answers at once. A job reports progress (0-100), a stage text and a small
preview while it runs, and a cancelled job stops at the solver's next step. The queue is
bounded so a client in a loop cannot pile up work (and decoded photos) without limit.
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from PIL import Image

from .errors import Cancelled, StylefillError
from .images import to_pil
from .openmp import release_team
from .operations import Outcome
from .progress import Cancel, Progress
from .style_learning import LEARNER

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
PREVIEW_SIDE = 256        # previews are for a progress dialog, not for judging the result
PREVIEW_INTERVAL = 0.25   # s; a preview per solver step would cost more than the step


log = logging.getLogger(__name__)


Run = Callable[[Progress, Cancel], Outcome]


class QueueFull(StylefillError):
    """The device's queue holds as many waiting jobs as allowed."""


class UnknownJob(StylefillError):
    """No job with this id (never made, or finished long enough ago to be forgotten)."""


class Job:
    """One unit of work and what clients may see of it; fields change only under `_lock`."""

    def __init__(self, kind: str, run: Run, job_id: str | None = None):
        self.id = job_id or secrets.token_hex(8)
        self.kind = kind
        self.state = QUEUED
        self.progress = 0
        self.stage = "waiting in the queue"
        self.message: str | None = None
        self.outcome: Outcome | None = None
        self.cancel_event = threading.Event()
        self._run = run
        self._lock = threading.Lock()
        self._preview: Image.Image | None = None  # made in the worker: no torch in requests
        self._preview_png: bytes | None = None
        self._preview_at = 0.0
        self._png: bytes | None = None

    def report(self, fraction: float, stage: str, preview: torch.Tensor | None = None) -> None:
        """The `progress` callback handed to the API: fraction 0..1, stage text, 1x3xHxW image."""
        small = None
        now = time.monotonic()
        if preview is not None and now - self._preview_at >= PREVIEW_INTERVAL:
            small = to_pil(_shrink(preview))
            self._preview_at = now
        with self._lock:
            self.progress = max(0, min(100, int(fraction * 100)))
            self.stage = "cancelling" if self.cancel_event.is_set() else stage
            if small is not None:
                self._preview, self._preview_png = small, None

    def result_png(self) -> tuple[Image.Image | None, bytes | None]:
        """What the result shows (an edit's layer, else its image) and that as an RGBA PNG."""
        with self._lock:
            shown = self.outcome.layer if self.outcome.layer is not None else self.outcome.image
            return shown, self._png

    def result(self) -> dict[str, Any]:
        """A done job's answer: the shown image's offset and size (None when it makes no
        image), its metrics and its PNG bytes."""
        shown, png = self.result_png()
        return {"offset": tuple(self.outcome.offset) if shown is not None else None,
                "size": tuple(shown.size) if shown is not None else None,
                "metrics": self.outcome.metrics, "png": png}

    def preview_png(self) -> bytes | None:
        """The latest preview as PNG (encoded on first request), None before the first."""
        with self._lock:
            if self._preview is not None and self._preview_png is None:
                self._preview_png = _png(self._preview)
            return self._preview_png

    def _set(self, **fields: object) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self, name, value)


class JobStore(Protocol):
    """What the server's job routes need of a job store: this module's JobQueue (one device,
    one process), or cluster.serve's (jobs spread over Ray Serve replicas). `get`, `submit` and
    `cancel` answer objects with an `id`, `preview_png()` and `result()` (as Job's)."""

    def start(self) -> None: ...

    def close(self) -> None: ...

    def submit(self, kind: str, run: Run) -> Any: ...

    def get(self, job_id: str) -> Any: ...

    def cancel(self, job_id: str) -> Any: ...

    def status(self, job: Any) -> dict: ...


class JobQueue:
    """One device: a worker thread running one job at a time, and up to `max_queued` waiting.

    Finished jobs stay readable until `keep_finished` newer ones have finished, so results
    (full-size PNGs) do not accumulate in a long-running engine.
    """

    def __init__(self, max_queued: int = 4, keep_finished: int = 32):
        self.max_queued = max_queued
        self.keep_finished = keep_finished
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="stylefill-jobs", daemon=True)

    def start(self) -> None:
        """Start the worker (the server does so when it starts serving)."""
        self._worker.start()

    def submit(self, kind: str, run: Run) -> Job:
        """Queue a job; QueueFull when `max_queued` jobs are already waiting."""
        job = Job(kind, run)
        with self._cond:
            if len(self._waiting) >= self.max_queued:
                raise QueueFull(f"the engine is busy: {len(self._waiting)} jobs are already "
                                "waiting; try again when one has finished")
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._cond.notify()
        return job

    def get(self, job_id: str) -> Job:
        with self._cond:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(f"no job '{job_id}' (finished jobs are kept for the last "
                             f"{self.keep_finished} only)")
        return job

    def cancel(self, job_id: str) -> Job:
        """A waiting job is cancelled at once; a running one stops at its next step."""
        job = self.get(job_id)
        with self._cond:
            if job in self._waiting:
                self._waiting.remove(job)
                job._set(state=CANCELLED, stage="cancelled", message="cancelled in the queue")
                self._retire(job)
                return job
        if job.state == RUNNING:
            job.cancel_event.set()
            job._set(stage="cancelling")
        return job

    def status(self, job: Job) -> dict:
        """The job as the protocol's JSON object; `position` 1 is the next job to run."""
        with self._cond:
            position = self._waiting.index(job) + 1 if job in self._waiting else None
        with job._lock:
            return {"id": job.id, "kind": job.kind, "state": job.state, "progress": job.progress,
                    "stage": job.stage, "message": job.message, "position": position}

    def close(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the worker (engine shutdown)."""
        with self._cond:
            self._closed = True
            for job in self._waiting:
                job._set(state=CANCELLED, stage="cancelled", message="the engine shut down")
            self._waiting.clear()
            for job in self._jobs.values():
                job.cancel_event.set()
            self._cond.notify_all()
        self._worker.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                job._set(state=RUNNING, stage="starting")
            execute(job)
            with self._cond:
                self._retire(job)

    def _retire(self, job: Job) -> None:
        """Called with `_cond` held when a job has finished; forgets the oldest finished ones."""
        self._finished.append(job.id)
        while len(self._finished) > self.keep_finished:
            self._jobs.pop(self._finished.popleft(), None)


def execute(job: Job) -> None:
    """Run a job to its end in this thread: DONE with its outcome and PNG, or CANCELLED or
    FAILED with a message (a bug is logged and reported, never raised). The thread then hands
    back its OpenMP helpers (openmp): what computes next, in this thread or another, has the
    CPUs to itself."""
    try:
        with LEARNER.foreground.busy():  # background style learning waits meanwhile
            outcome = job._run(job.report, job.cancel_event)
        shown = outcome.layer if outcome.layer is not None else outcome.image
        png = None
        if shown is not None:
            job._set(stage="encoding the result")
            png = _png(shown.convert("RGBA"))
    except Cancelled as exc:
        job._set(state=CANCELLED, stage="cancelled", message=str(exc))
    except StylefillError as exc:
        job._set(state=FAILED, stage="failed", message=str(exc))
    except Exception as exc:  # a bug: keep serving, tell the client, log the traceback
        log.exception("job %s (%s) crashed", job.id, job.kind)
        job._set(state=FAILED, stage="failed",
                 message=f"internal error ({type(exc).__name__}: {exc}); see the engine's log")
    else:
        job._set(state=DONE, stage="done", progress=100, outcome=outcome, _png=png)
    finally:
        release_team()


def _shrink(image: torch.Tensor) -> torch.Tensor:
    """A private copy at most PREVIEW_SIDE px (the solver goes on changing its own tensor)."""
    image = image.detach().float().cpu()
    side = max(image.shape[-2:])
    if side <= PREVIEW_SIDE:
        return image.clone()
    h, w = (max(1, round(s * PREVIEW_SIDE / side)) for s in image.shape[-2:])
    return F.interpolate(image, size=(h, w), mode="area")


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
