"""Torch's OpenMP helper threads, handed back by the engine's threads that compute now and then.

libgomp (the OpenMP runtime of torch's Linux wheels) gives every thread that runs a parallel
region its own team of helper threads and keeps it for that thread's life. Once the helpers of
all teams outnumber the CPUs, libgomp stops letting idle helpers spin, and every parallel region
pays for waking them up. On a 2-CPU machine a job then ran EfficientNet-Lite0's passes 1.7x
slower in the engine's job thread after one suggest had run in a request thread (the same passes
alone: full speed). A thread that has finished its share of work (a suggest, a preview, a
learning run that gives way to a job) hands its team back, so whoever computes next has the
CPUs to itself. Where torch uses another OpenMP runtime, this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import torch

OMP_PAUSE_SOFT = 1  # omp_pause_resource_t: free the threads, keep what a restart needs

P = ParamSpec("P")
T = TypeVar("T")


@functools.cache
def _libgomp() -> ctypes.CDLL | None:
    """torch's own libgomp (already loaded with torch, so this is the same instance), or None."""
    for path in sorted((Path(torch.__file__).parent / "lib").glob("libgomp*.so*")):
        lib = ctypes.CDLL(str(path))
        if hasattr(lib, "omp_pause_resource_all"):
            return lib
    return None


def release_team() -> bool:
    """Hand back the calling thread's OpenMP helper threads (the next parallel region of this
    thread starts a new team). False where the runtime cannot: not libgomp, or called inside a
    parallel region."""
    lib = _libgomp()
    return lib is not None and lib.omp_pause_resource_all(OMP_PAUSE_SOFT) == 0


def releasing(work: Callable[P, T]) -> Callable[P, T]:
    """`work` that hands back its thread's team when it returns or raises."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(*args, **kwargs)
        finally:
            release_team()

    return run
