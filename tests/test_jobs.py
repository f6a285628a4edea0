"""The job queue on its own: one worker, FIFO order, bounded waiting, progress, previews,
cancellation and failures, with fake jobs and event-based waits (no timing assumptions)."""

from __future__ import annotations

import io
import threading

import pytest
import torch
from PIL import Image

from stylefill.errors import Cancelled, InputError
from stylefill.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobQueue, QueueFull, UnknownJob
from stylefill.operations import Outcome

WAIT = 60  # s: a guard against hanging, never what a test measures


@pytest.fixture
def queue():
    q = JobQueue(max_queued=2, keep_finished=3)
    q.start()
    yield q
    q.close()


def blocking(started: threading.Event, release: threading.Event, result: Outcome | None = None):
    """A job that reports, then waits until released or cancelled."""

    def run(progress, cancel):
        progress(0.25, "working", torch.rand(1, 3, 600, 300))
        started.set()
        while not release.wait(0.01):
            if cancel.is_set():
                raise Cancelled("cancelled at step 1 of 4")
        return result or Outcome({"answer": 42}, Image.new("RGB", (8, 6), "red"))

    return run


def finished(queue: JobQueue, job) -> dict:
    done = threading.Event()

    def watch():
        while queue.status(job)["state"] in (QUEUED, RUNNING):
            threading.Event().wait(0.005)
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    assert done.wait(WAIT), queue.status(job)
    return queue.status(job)


def test_a_job_reports_progress_and_preview_then_its_result(queue):
    started, release = threading.Event(), threading.Event()
    job = queue.submit("test", blocking(started, release))
    assert started.wait(WAIT)
    status = queue.status(job)
    assert (status["state"], status["progress"], status["stage"]) == (RUNNING, 25, "working")
    preview = Image.open(io.BytesIO(job.preview_png()))
    assert max(preview.size) == 256  # shrunk for a progress dialog
    release.set()
    final = finished(queue, job)
    assert final["state"] == DONE and final["progress"] == 100 and final["message"] is None
    shown, png = job.result_png()
    assert shown.size == (8, 6) and png.startswith(b"\x89PNG") and job.outcome.metrics == {"answer": 42}


def test_fifo_order_bounded_queue_and_cancel_of_waiting_and_running_jobs(queue):
    started, release = threading.Event(), threading.Event()
    running = queue.submit("a", blocking(started, release))
    assert started.wait(WAIT)
    order = []
    waiting = [queue.submit(n, lambda p, c, n=n: order.append(n) or Outcome({})) for n in "bc"]
    assert [queue.status(j)["position"] for j in waiting] == [1, 2]
    with pytest.raises(QueueFull, match="busy"):
        queue.submit("d", lambda p, c: Outcome({}))
    queue.cancel(waiting[0].id)
    assert queue.status(waiting[0])["state"] == CANCELLED
    assert queue.status(waiting[1])["position"] == 1
    queue.cancel(running.id)
    final = finished(queue, running)
    assert final["state"] == CANCELLED and final["message"] == "cancelled at step 1 of 4"
    assert finished(queue, waiting[1])["state"] == DONE and order == ["c"]


def test_failures_are_reported_and_the_worker_keeps_serving(queue):
    bad = queue.submit("bad", lambda p, c: (_ for _ in ()).throw(InputError("no such file")))
    bug = queue.submit("bug", lambda p, c: 1 / 0)
    assert finished(queue, bad) == {**queue.status(bad), "state": FAILED, "message": "no such file"}
    status = finished(queue, bug)
    assert status["state"] == FAILED and "internal error (ZeroDivisionError" in status["message"]
    ok = queue.submit("ok", lambda p, c: Outcome({"fine": True}))
    assert finished(queue, ok)["state"] == DONE


def test_only_the_last_finished_jobs_are_kept(queue):
    jobs = []
    for i in range(5):
        jobs.append(queue.submit(str(i), lambda p, c: Outcome({})))
        finished(queue, jobs[-1])
    with pytest.raises(UnknownJob, match="last 3"):
        queue.get(jobs[0].id)
    assert queue.get(jobs[-1].id) is jobs[-1]


def test_close_cancels_waiting_jobs_and_stops_the_running_one():
    q = JobQueue(max_queued=2)
    q.start()
    started, release = threading.Event(), threading.Event()
    running = q.submit("a", blocking(started, release))
    assert started.wait(WAIT)
    waiting = q.submit("b", lambda p, c: Outcome({}))
    q.close(timeout=WAIT)
    assert q.status(waiting)["state"] == CANCELLED
    assert q.status(running)["state"] == CANCELLED
