"""Data-free styles are learned once per class, for the class, not for the job that asked.

Learning a class's data-free styles costs about a hundred network passes per sample (minutes on
a CPU). A job that needs them waits for the one learning run of that class, seeing its stage
and an estimate of the time left; when that job is cancelled, the run goes on and its styles are
cached for the next job. The engine's server also starts runs in the background: for the class
of an insert that had no styles yet, and for the classes a client asks it to prefetch (the
suggestions shown in the Insert dialog). Background runs pause while another job computes
(`Foreground`), so they never slow down what the user is waiting for.

One daemon thread learns one class at a time, in the order asked; the styles are written
atomically by `styles.learn`, so a run stopped by the engine's shutdown leaves nothing behind.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import styles
from .backbones import Backbone
from .errors import Cancelled, StylefillError
from .openmp import release_team
from .paths import models_dir
from .progress import Cancel, Progress, report, scaled

WAITING, LEARNING, LEARNED, FAILED = "waiting", "learning", "learned", "failed"
OFF = "off"  # an engine that learns nothing in the background (its prefetch answer)
ONE_TIME = "one-time, cached"


class Foreground:
    """How many jobs are computing in the foreground; background learning waits for none."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    @contextmanager
    def busy(self) -> Iterator[None]:
        with self._idle:
            self._count += 1
        try:
            yield
        finally:
            with self._idle:
                self._count -= 1
                self._idle.notify_all()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A foreground job that waits for a learning run is not computing meanwhile."""
        with self._idle:
            self._count -= 1
            self._idle.notify_all()
        try:
            yield
        finally:
            with self._idle:
                self._count += 1

    def wait_idle(self, stop: threading.Event) -> None:
        """Wait while jobs compute, their OpenMP teams the only ones meanwhile (openmp)."""
        with self._idle:
            if self._count > 0:
                release_team()
            while self._count > 0 and not stop.is_set():
                self._idle.wait(0.5)


@dataclass
class Learning:
    """One class's learning run and what waiting jobs and clients may see of it."""

    cls: str
    index: int
    backbone: str
    root: Path                 # the models dir the styles go to (fixed when asked)
    state: str = WAITING
    fraction: float = 0.0
    stage: str = "waiting for the class before it"
    message: str | None = None
    started: float | None = None
    waiters: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def seconds_left(self) -> float | None:
        """Elapsed time / share done x share left; None until a few percent are done."""
        if self.started is None or self.fraction < 0.03:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.fraction * (1.0 - self.fraction)

    def describe(self) -> str:
        """'learning the styles of ladybug (one-time, cached): sampling pathways 3/12, about 40 s left'."""
        left = self.seconds_left()
        eta = f", about {left:.0f} s left" if left is not None else ""
        return f"learning the styles of {self.cls} ({ONE_TIME}): {self.stage}{eta}"

    def status(self) -> dict:
        left = self.seconds_left()
        stage = self.describe() if self.state == LEARNING else self.stage
        return {"class": self.cls, "index": self.index, "backbone": self.backbone,
                "state": self.state, "progress": int(self.fraction * 100), "stage": stage,
                "message": self.message, "seconds_left": None if left is None else round(left, 1)}


class StyleLearner:
    """The process's learning runs: one thread, one class at a time, each class once."""

    def __init__(self, foreground: Foreground | None = None):
        self.foreground = foreground or Foreground()
        self._lock = threading.Lock()
        self._runs: dict[tuple[int, str, str], Learning] = {}
        self._order: deque[tuple[Learning, Backbone]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # None when there is nothing to learn

    def ensure(self, index: int, net: Backbone) -> Learning:
        """The learning run of the class (started when it has no sound styles: none yet, or
        ones damaged since they were learned)."""
        root = models_dir()
        key = (index, net.name, str(root))
        with self._lock:
            run = self._runs.get(key)
            if run is not None and run.state not in (FAILED, LEARNED):
                return run
            run = Learning(net.categories[index], index, net.name, root)
            if styles.is_learned(index, net.name, root):
                run.state, run.fraction, run.stage = LEARNED, 1.0, "learned"
                run.done.set()
                return run
            self._runs[key] = run
            self._order.append((run, net))
            if self._thread is None:
                self._stop.clear()  # a new engine in this process (tests) may learn again
                self._thread = threading.Thread(target=self._work, name="stylefill-styles",
                                                daemon=True)
                self._thread.start()
            return run

    def first(self, run: Learning) -> None:
        """Learn `run` next (a class a user is waiting for, before prefetched ones)."""
        with self._lock:
            for i, (queued, net) in enumerate(self._order):
                if queued is run:
                    del self._order[i]
                    self._order.appendleft((queued, net))
                    return

    def wait(self, run: Learning, progress: Progress | None, cancel: Cancel | None) -> None:
        """Block until `run` has finished, reporting its progress as the caller's. A cancel
        stops the waiting, not the run."""
        self.first(run)
        with self._lock:
            run.waiters += 1
        try:
            with self.foreground.waiting():
                while not run.done.wait(0.25):
                    report(progress, run.fraction, run.describe())
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(f"cancelled; the styles of {run.cls} go on being learned "
                                        f"in the background ({ONE_TIME})")
        finally:
            with self._lock:
                run.waiters -= 1
        if run.state == FAILED:
            raise StylefillError(f"learning the styles of {run.cls} failed: {run.message}")

    def close(self) -> None:
        """Stop the current run at its next step (the engine is shutting down)."""
        self._stop.set()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._order or self._stop.is_set():
                    self._thread = None
                    return
                run, net = self._order.popleft()
                run.state, run.started, run.stage = LEARNING, time.monotonic(), "starting"
            self._learn(run, net)

    def _learn(self, run: Learning, net: Backbone) -> None:
        def progress(fraction: float, stage: str, _preview=None) -> None:
            run.fraction, run.stage = fraction, stage
            if not run.waiters:  # nobody waits for it: give way to the jobs that compute
                self.foreground.wait_idle(self._stop)

        try:
            styles.learn(run.index, net, data_free=True, root=run.root, progress=progress,
                         cancel=self._stop)
        except Cancelled:
            run.state, run.message = FAILED, "the engine shut down"
        except Exception as exc:  # reported to every waiter; the next ensure() tries again
            run.state, run.message = FAILED, f"{type(exc).__name__}: {exc}"
        else:
            run.state, run.fraction, run.stage = LEARNED, 1.0, "learned"
        run.done.set()


LEARNER = StyleLearner()


def style_pathway(index: int, net: Backbone, style: int, size: int, progress: Progress | None = None,
                  cancel: Cancel | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, Progress | None, styles.StyleSet]:
    """A learned style's m7 mask and its images (for the patch prior), the progress left for
    the caller, and the style set they came from (one load: insert's `style_start` takes the
    style's top image from it too). A class without styles has its data-free styles learned
    first (the class's one run, `LEARNER`), in the first half of `progress`, so the caller's
    work fills the second."""
    rest = progress
    if not styles.is_learned(index, net.name):
        run = LEARNER.ensure(index, net)
        LEARNER.wait(run, scaled(progress, 0.0, 0.5), cancel)
        rest = scaled(progress, 0.5, 1.0)
    ss = styles.load(index, net.name)
    return ss.m7(style), styles.images_tensor(ss.image_paths(style, 8), size), rest, ss
