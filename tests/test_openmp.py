"""A thread hands its OpenMP helper threads back (stylefill.openmp), and the engine's threads
that compute do so when done: the job worker between jobs, a request's slot, and background
learning while a job computes. A thread under test gets an OS name of its own, which the helper
threads it starts inherit, and the threads of that name are counted in /proc (Linux, torch's
libgomp: what the engine runs on; other threads of the test process come and go meanwhile)."""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from stylefill.jobs import JobQueue
from stylefill.openmp import release_team, releasing
from stylefill.operations import Outcome
from stylefill.server import _Slots
from stylefill.style_learning import Foreground

WAIT = 60  # s: a guard against hanging, never what a test measures


PR_SET_NAME = 15  # prctl: the calling thread's name


def name_this_thread() -> str:
    """A name for the calling thread that no other thread has (at most 15 bytes)."""
    name = f"omp-{threading.get_native_id()}"[:15]
    ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode(), 0, 0, 0)
    return name


def named(name: str) -> int:
    """How many of this process's threads bear `name` (the thread and its helpers)."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            count += (task / "comm").read_text().strip() == name
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            continue
    return count


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
        me = name_this_thread()
        parallel_work()
        computed = named(me)
        released = release_team()
        after = named(me)
        parallel_work()  # a new team, as before
        return computed, int(released), after, named(me)

    assert in_a_thread(work) == (2, 1, 1, 2)


def test_releasing_hands_the_team_back_when_the_work_raises():
    def failing() -> None:
        parallel_work()
        raise ValueError("bad input")

    def work() -> tuple[int, ...]:
        me = name_this_thread()
        with pytest.raises(ValueError, match="bad input"):
            releasing(failing)()
        return (named(me),)

    assert in_a_thread(work) == (1,)


def test_releasing_returns_the_works_answer():
    assert releasing(lambda a, b: a + b)(2, b=3) == 5


def test_the_job_worker_hands_back_its_helpers_between_jobs():
    counts: list[int] = []
    worker: list[str] = []
    second_ran = threading.Event()

    def first(_progress, _cancel) -> Outcome:
        worker.append(name_this_thread())
        parallel_work()
        counts.append(named(worker[0]))
        return Outcome({})

    def second(_progress, _cancel) -> Outcome:
        counts.append(named(worker[0]))
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
    assert counts == [2, 1]  # computing: the worker and its helper; the next job: the worker


def test_a_request_slot_hands_back_its_helpers():
    slots = _Slots(1, wait=WAIT)
    slot: list[str] = []

    def computed() -> int:
        slot.append(name_this_thread())
        parallel_work()
        return named(slot[0])

    async def two_requests() -> tuple[int, int]:
        return await slots.run(computed), await slots.run(lambda: named(slot[0]))

    try:
        assert asyncio.run(two_requests()) == (2, 1)
    finally:
        slots.close()


def test_background_learning_gives_way_to_a_job_without_its_helpers():
    foreground, stop = Foreground(), threading.Event()
    stop.set()  # wait_idle returns at once; what matters is what it did first

    def learning() -> tuple[int, int]:
        me = name_this_thread()
        parallel_work()
        computed = named(me)
        foreground.wait_idle(stop)
        return computed, named(me)

    with foreground.busy():
        assert in_a_thread(learning) == (2, 1)
