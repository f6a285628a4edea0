"""The job registry of `serve --ray` (cluster/serve.py): every job's state, for every replica.

One Ray actor holds it; its methods run one at a time, so adding, starting and cancelling a
job are atomic. It is plain Python with no import beyond the standard library, so the actor's
process stays small (it never loads torch or the web stack). The states are the protocol's
(jobs.py's; tests/test_cluster_serve.py checks that they agree).
"""

from __future__ import annotations

import secrets
from collections import deque

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
MAX_QUEUED = 4       # jobs waiting for a replica, over all replicas (the plain engine's default)
KEEP_FINISHED = 32   # finished jobs whose status and result stay readable


class JobRegistry:
    """Every job's state, for every replica (a Ray actor: its methods run one at a time)."""

    def __init__(self, max_queued: int = MAX_QUEUED, keep_finished: int = KEEP_FINISHED):
        self.max_queued, self.keep_finished = max_queued, keep_finished
        self._jobs: dict[str, dict] = {}  # in submission order: the queue's order
        self._previews: dict[str, bytes] = {}
        self._results: dict[str, dict] = {}
        self._cancel: set[str] = set()
        self._finished: deque[str] = deque()

    def add(self, kind: str) -> dict | int:
        """A new queued job's status; the number of jobs waiting when as many as allowed are."""
        waiting = sum(1 for j in self._jobs.values() if j["state"] == QUEUED)
        if waiting >= self.max_queued:
            return waiting
        job_id = secrets.token_hex(8)
        self._jobs[job_id] = {"id": job_id, "kind": kind, "state": QUEUED, "progress": 0,
                              "stage": "waiting in the queue", "message": None}
        return self.status(job_id)

    def status(self, job_id: str) -> dict | None:
        """The job as the protocol's JSON object (`position` 1 runs next); None if unknown."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        position = None
        if job["state"] == QUEUED:
            queued = [j for j in self._jobs if self._jobs[j]["state"] == QUEUED]
            position = queued.index(job_id) + 1
        return {**job, "position": position}

    def start(self, job_id: str) -> bool:
        """A worker takes the job: False when it was cancelled (or forgotten) meanwhile."""
        job = self._jobs.get(job_id)
        if job is None or job["state"] != QUEUED:
            return False
        job.update(state=RUNNING, stage="starting")
        return True

    def update(self, job_id: str, progress: int, stage: str, preview: bytes | None) -> bool:
        """A running job's progress (and a new preview); True when it is to stop."""
        job = self._jobs.get(job_id)
        if job is None or job["state"] != RUNNING:
            return True
        stop = job_id in self._cancel
        job.update(progress=progress, stage="cancelling" if stop else stage)
        if preview is not None:
            self._previews[job_id] = preview
        return stop

    def finish(self, job_id: str, fields: dict, result: dict | None) -> None:
        """A job ended (done, failed or cancelled), with its result when done."""
        job = self._jobs.get(job_id)
        if job is None or job["state"] in FINISHED:
            return
        job.update(fields)
        if result is not None:
            self._results[job_id] = result
        self._retire(job_id)

    def lost(self, job_id: str, why: str) -> None:
        """The replica running (or about to run) the job is gone: it failed, unless it ended."""
        job = self._jobs.get(job_id)
        if job is not None and job["state"] not in FINISHED:
            self.finish(job_id, {"state": FAILED, "stage": "failed", "message": why}, None)

    def cancel(self, job_id: str) -> dict | None:
        """A waiting job is cancelled at once; a running one stops at its next step."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job["state"] == QUEUED:
            job.update(state=CANCELLED, stage="cancelled", message="cancelled in the queue")
            self._retire(job_id)
        elif job["state"] == RUNNING:
            self._cancel.add(job_id)
            job["stage"] = "cancelling"
        return self.status(job_id)

    def preview(self, job_id: str) -> tuple[bool, bytes | None]:
        """(whether the job is known, its latest preview PNG or None)."""
        return job_id in self._jobs, self._previews.get(job_id)

    def result(self, job_id: str) -> dict | None:
        return self._results.get(job_id)

    def _retire(self, job_id: str) -> None:
        self._cancel.discard(job_id)
        self._finished.append(job_id)
        while len(self._finished) > self.keep_finished:
            old = self._finished.popleft()
            for store in (self._jobs, self._previews, self._results):
                store.pop(old, None)
