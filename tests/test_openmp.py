"""A thread hands its OpenMP helper threads back (stylefill.openmp), and the engine's threads
that compute do so when done: the job worker between jobs, a request's slot, and background
learning while a job computes. Counted as the process's OS threads in /proc (Linux, torch's
libgomp: what the engine runs on)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator

import pytest
import torch

from stylefill.jobs import JobQueue
from stylefill.openmp import release_team, releasing
from stylefill.operations import Outcome
from stylefill.server import _Slots
from stylefill.style_learning import Foreground

WAIT = 60  # s: a guard against hanging, never what a test measures


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def parallel_work() -> None:
    """An elementwise op large enough for torch to run it as an OpenMP parallel region."""
    (torch.rand(1, 96, 112, 112) * 1.5).relu_()


@pytest.fixture(autouse=True)
def two_threads() -> Iterator[None]:
    """Teams of two, whatever the machine's CPU count (one helper per team)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def in_a_thread(work: Callable[[], tuple[int, ...]]) -> tuple[int, ...]:
    out: list[tuple[int, ...]] = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


def test_a_thread_that_computed_keeps_a_helper_until_it_releases_its_team():
    def work() -> tuple[int, ...]:
        alone = os_threads()
        parallel_work()
        computed = os_threads()
        released = release_team()
        after = os_threads()
        parallel_work()  # a new team, as before
        return alone, computed, int(released), after, os_threads()

    alone, computed, released, after, again = in_a_thread(work)
    assert released
    assert computed == alone + 1
    assert after == alone
    assert again == alone + 1


def test_releasing_hands_the_team_back_when_the_work_raises():
    def failing() -> None:
        parallel_work()
        raise ValueError("bad input")

    def work() -> tuple[int, ...]:
        alone = os_threads()
        with pytest.raises(ValueError, match="bad input"):
            releasing(failing)()
        return alone, os_threads()

    alone, after = in_a_thread(work)
    assert after == alone


def test_releasing_returns_the_works_answer():
    assert releasing(lambda a, b: a + b)(2, b=3) == 5


def test_the_job_worker_hands_back_its_helpers_between_jobs():
    counts: list[int] = []
    second_ran = threading.Event()

    def first(_progress, _cancel) -> Outcome:
        counts.append(os_threads())
        parallel_work()
        counts.append(os_threads())
        return Outcome({})

    def second(_progress, _cancel) -> Outcome:
        counts.append(os_threads())
        second_ran.set()
        return Outcome({})

    queue = JobQueue()
    queue.start()
    try:
        queue.submit("first", first)
        queue.submit("second", second)
        assert second_ran.wait(WAIT)
    finally:
        queue.close()
    started, computing, next_job = counts
    assert computing == started + 1
    assert next_job == started


def test_a_request_slot_hands_back_its_helpers():
    slots = _Slots(1, wait=WAIT)

    def computed() -> tuple[int, int]:
        alone = os_threads()
        parallel_work()
        return alone, os_threads()

    async def two_requests() -> tuple[tuple[int, int], int]:
        return await slots.run(computed), await slots.run(os_threads)

    try:
        (alone, computing), next_request = asyncio.run(two_requests())
    finally:
        slots.close()
    assert computing == alone + 1
    assert next_request == alone


def test_background_learning_gives_way_to_a_job_without_its_helpers():
    foreground, stop = Foreground(), threading.Event()
    stop.set()  # wait_idle returns at once; what matters is what it did first

    def learning() -> tuple[int, int]:
        parallel_work()
        computed = os_threads()
        foreground.wait_idle(stop)
        return computed, os_threads()

    with foreground.busy():
        computed, waiting = in_a_thread(learning)
    assert waiting == computed - 1
