"""Data-free styles of many classes, each class one Ray task (`stylefill styles learn CLASS... |
--all | --classes FILE --data-free --ray ADDRESS`).

- Resumable: classes whose styles load are skipped (`pending`) unless `force`.
- Each class is written by `styles.learn`, whose save switches the class's folder to the new
  version in one step: a worker killed at any point leaves the previous styles (or none), and
  its half-written version is removed by the next writer of a class.
- A task whose worker dies is run again by Ray, from the start (`MAX_RETRIES`); a class that
  fails on its own (bad settings, a full disk) is reported, not retried, and the others go on.
- The styles are those of a sequential run with the same seed: a task is `learn_class`, the
  function a sequential run of this module calls, on the same number of torch threads
  (`ClassJob.threads`, 1 by default). torch's CPU results depend on its thread count, so the
  thread count is part of "the same run" (docs/scale.md).
- The speed-up over one process is measured in the same run (`compare`): the first class is
  learned here, in this process, on the same thread count, before the others go to Ray, and
  Ray's throughput on the rest is set against it. Ray's start is timed apart and not counted.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from .. import styles
from ..classes import imagenet_classes
from ..errors import InputError, StylefillError
from ..operations.styling import LearnStylesRequest
from ..paths import models_dir
from . import connected, workers

MAX_RETRIES = 3  # runs of a class's task after its worker died (Ray's max_retries)

Learn = Callable[..., styles.StyleSet]  # styles.learn, or one with other sampling settings
Done = Callable[[str, bool], None]      # a class finished (its name, learned or failed)


@dataclass(frozen=True)
class ClassJob:
    """One class to learn: what `styles.learn` takes, and the models dir (shared by every node)."""

    index: int
    name: str
    backbone: str
    topics: int | None
    samples: int | None
    seed: int
    root: str
    threads: int = 1


def read_classes(path: str | Path) -> list[str]:
    """The classes a file lists, one a line (names or indices; blank lines and # comments
    are skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise InputError(f"--classes {path}: cannot read it ({why})") from None
    return [c for c in (line.split("#", 1)[0].strip() for line in lines) if c]


def all_classes() -> list[str]:
    """Every ImageNet class, by index (--all)."""
    return [str(i) for i in range(len(imagenet_classes()))]


def jobs_for(requests: Sequence[LearnStylesRequest], root: Path | None = None,
             threads: int = 1) -> list[ClassJob]:
    """One job per class of the requests (a class named twice is learned once)."""
    folder = str(Path(root or models_dir()).resolve())
    names = imagenet_classes()
    jobs: dict[int, ClassJob] = {}
    for r in requests:
        jobs.setdefault(r.index, ClassJob(r.index, names[r.index], r.backbone, r.topics, r.samples,
                                          r.seed, folder, threads))
    return list(jobs.values())


def pending(jobs: Sequence[ClassJob], force: bool = False) -> tuple[list[ClassJob], list[ClassJob]]:
    """(the jobs to run, the ones skipped because their class has styles already)."""
    if force:
        return list(jobs), []
    done = [styles.is_learned(j.index, j.backbone, Path(j.root)) for j in jobs]
    return ([j for j, d in zip(jobs, done, strict=True) if not d],
            [j for j, d in zip(jobs, done, strict=True) if d])


def learn_class(job: ClassJob, learn: Learn = styles.learn) -> dict:
    """Learn and store one class's data-free styles on `job.threads` torch threads: a Ray
    task's body, and what a sequential run calls for each class."""
    before = torch.get_num_threads()
    torch.set_num_threads(job.threads)
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        ss = learn(job.index, job.backbone, data_free=True, topics=job.topics, samples=job.samples,
                   seed=job.seed, root=Path(job.root))
    finally:
        torch.set_num_threads(before)
    return {"class": ss.cls, "index": ss.index, "styles": str(ss.root),
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0,
            "node": socket.gethostname(), "pid": os.getpid()}


@dataclass
class Run:
    """What a run did, and how fast: the JSON of `--json` and the lines it prints."""

    address: str
    threads: int
    learned: list[dict] = field(default_factory=list)  # learn_class results, in finishing order
    failed: dict[str, str] = field(default_factory=dict)  # class -> why
    one_process: dict | None = None  # the class learned here first, for the comparison
    compare_note: str = ""
    ray_classes: int = 0
    ray_seconds: float = 0.0   # first task submitted to last result
    ray_start: float = 0.0     # connecting (or starting a local instance), not counted
    workers: int = 0

    def speedup(self) -> float | None:
        if not (self.one_process and self.ray_classes and self.ray_seconds):
            return None
        return self.one_process["seconds"] * self.ray_classes / self.ray_seconds

    def metrics(self) -> dict:
        on_ray = [r for r in self.learned if r is not self.one_process]
        return {
            "learned": [r["class"] for r in self.learned], "failed": self.failed,
            "one_process": self.one_process and {k: self.one_process[k]
                                                 for k in ("class", "seconds", "cpu_seconds")},
            "ray": {"address": self.address, "workers": self.workers, "classes": self.ray_classes,
                    "seconds": self.ray_seconds, "start_seconds": self.ray_start,
                    "seconds_per_class": self.ray_seconds / self.ray_classes if self.ray_classes else None,
                    "task_seconds": [r["seconds"] for r in on_ray],
                    "task_cpu_seconds": [r["cpu_seconds"] for r in on_ray],
                    "nodes": sorted({r["node"] for r in on_ray})},
            "threads_per_class": self.threads, "speedup": self.speedup(),
        }

    def summary(self) -> str:
        if not (self.learned or self.failed):
            return "nothing to learn"
        threads = f"{self.threads} torch thread{'s' if self.threads > 1 else ''} a class"
        lines = [f"learned the styles of {len(self.learned)} class(es)"
                 + (f"; {len(self.failed)} failed" if self.failed else "")]
        if self.one_process:
            lines.append(f"one process (this one): {self.one_process['class']} in "
                         f"{self.one_process['seconds']:.1f} s")
        if self.ray_classes:
            tasks = [r["seconds"] for r in self.learned if r is not self.one_process]
            mean = f", a task {sum(tasks) / len(tasks):.1f} s on average" if tasks else ""
            lines.append(f"Ray ({self.workers} workers): {self.ray_classes} class(es) in "
                         f"{self.ray_seconds:.1f} s, {self.ray_seconds / self.ray_classes:.1f} s a "
                         f"class{mean} (Ray's start, {self.ray_start:.0f} s, not counted)")
        x = self.speedup()
        lines.append(f"speed-up over one process: {x:.2f}x (same settings, {threads}){self._idle()}"
                     if x else f"speed-up over one process: not measured ({self.compare_note})")
        lines += [f"failed: {name}: {why}" for name, why in self.failed.items()]
        return "\n".join(lines)


    def _idle(self) -> str:
        """A note when Ray had fewer classes than workers: this run could not use them all."""
        if self.ray_classes >= self.workers:
            return ""
        idle = self.workers - self.ray_classes
        return (f"; Ray had {self.ray_classes} class(es) for {self.workers} workers, so {idle} "
                f"worker(s) sat idle: a run of more classes keeps them all busy")


def _nothing(_name: str, _ok: bool) -> None:
    pass


def learn_styles(jobs: Sequence[ClassJob], address: str, *, compare: bool = True,
                 learn: Learn = styles.learn, num_cpus: int | None = None,
                 done: Done = _nothing) -> Run:
    """Learn every job's class, each as a Ray task on the cluster at `address` (`local`: a new
    instance on this machine with `num_cpus` CPUs, default all); with `compare` (and two
    classes or more) the first is learned in this process first, to measure the speed-up.
    `done` hears of each class as it finishes (a progress bar)."""
    threads = jobs[0].threads if jobs else 1
    run = Run(address, threads)
    if not jobs:
        run.compare_note = "nothing to learn"
        return run
    t0 = time.perf_counter()
    with connected(address, num_cpus) as ray:
        run.ray_start, run.workers = time.perf_counter() - t0, workers(ray, threads)
        here = compare and len(jobs) > 1
        run.compare_note = ("--no-compare" if not compare else
                            "it needs two classes to learn: one here, the others on Ray")
        if here:
            _learn_here(jobs[0], learn, run, done)
        _learn_on_ray(ray, jobs[1:] if here else jobs, learn, run, done)
    return run


def _learn_here(job: ClassJob, learn: Learn, run: Run, done: Done) -> None:
    try:
        result = learn_class(job, learn)
    except StylefillError as exc:
        run.failed[job.name] = str(exc)
        run.compare_note = "the class learned here failed"
    else:
        run.learned.append(result)
        run.one_process = result
    done(job.name, job.name not in run.failed)


def _learn_on_ray(ray: ModuleType, jobs: Sequence[ClassJob], learn: Learn, run: Run,
                  done: Done) -> None:
    """Every job as a task of `threads` CPUs; results collected as they come; on the way out
    (an interrupt) the tasks not finished are cancelled."""
    task = ray.remote(learn_class).options(num_cpus=run.threads, max_retries=MAX_RETRIES,
                                           retry_exceptions=False)
    t0 = time.perf_counter()
    refs = {task.remote(job, learn): job for job in jobs}
    waiting = list(refs)
    try:
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                _collect(ray, ref, refs[ref], run, done)
    finally:
        for ref in waiting:
            ray.cancel(ref, force=True)
    run.ray_seconds = time.perf_counter() - t0
    run.ray_classes = sum(1 for job in jobs if job.name not in run.failed)


def _collect(ray: ModuleType, ref: object, job: ClassJob, run: Run, done: Done) -> None:
    try:
        run.learned.append(ray.get(ref))
    except ray.exceptions.RayTaskError as exc:  # the class's own error, raised in its task
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        run.failed[job.name] = str(cause).strip().splitlines()[-1] if str(cause).strip() else repr(cause)
    except ray.exceptions.RayError as exc:  # its worker died MAX_RETRIES + 1 times, or its node
        run.failed[job.name] = f"{type(exc).__name__} (its worker died {MAX_RETRIES + 1} times)"
    done(job.name, job.name not in run.failed)
