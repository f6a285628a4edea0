"""A patch database built from photo shards, each shard one Ray task (`stylefill patchdb build
FOLDER... --ray ADDRESS [--shards N]`).

- The photos (sorted, as a single-machine build takes them) are cut into `shards` contiguous
  runs; default: one per worker. A task extracts its run's cell features, centre patches and
  crop statistics with `patchdb.extract`, the function a single-machine build calls, on the same
  crops, scales, flips, batches and order, and writes them as a shard folder.
- Shards are written inside the new version of the database's folder (`atomic.replacing`):
  first into a hidden temporary folder, renamed to its shard number when complete. The driver
  merges them in photo order (`patchdb.merge`: the same arrays a single build writes, crop
  numbers shifted), then writes the colour statistics, the index (flat, or IVF-PQ trained and
  filled from the memory-mapped features in a child process, as a single build does) and
  meta.json, and switches to the version in one step. A cancel, an interrupt, a failed shard
  or a killed driver leaves the previous database as it was; the half-written version
  (shards included) is removed by the next writer.
- A task whose worker dies is run again by Ray, from the start of its shard (`MAX_RETRIES`);
  the dead attempt's temporary folder goes with the version's shards folder. A shard that fails
  on its own (an unreadable photo) fails the build, with its reason.
- The merged pairs are those of a single build on the same torch thread count (each task runs
  `threads` torch threads, 1 by default): bit for bit (tests/test_cluster_patchdb.py), so
  recall is the same by construction.
- Speed: pairs per second and the tasks' CPU seconds are always reported; with `compare` the
  first shard is extracted here, in this process, on the same thread count, before the others
  go to Ray, and Ray's pairs per second on the rest are set against it (nothing is computed
  twice: the shard is the database's).

Photos are read by the workers at the driver's absolute paths, and shards are written into the
driver's models dir: on a real cluster both are on a filesystem every node mounts at the same
path (docs/scale.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from .. import atomic, patchdb
from ..backbones import Backbone, load_backbone
from ..errors import InputError, StylefillError
from ..operations.database import BuildPatchDBRequest, request_photos
from ..progress import Cancel, check
from . import connected, workers

MAX_RETRIES = 3  # runs of a shard's task after its worker died (Ray's max_retries)
SHARDS = "shards"  # the folder of shard folders inside the version being written
POLL_S = 0.5  # s between progress updates (and cancel checks) while shards are extracted
CANCEL_WAIT_S = 10  # s given to cancelled tasks to end before their version is removed

Extract = Callable[..., patchdb.Moments]  # patchdb.extract, or a test's wrapper of it
Done = Callable[[float, int], None]  # photos extracted so far (fractions of shards), of how many


@dataclass(frozen=True)
class ShardJob:
    """One shard: its photos (absolute paths), the build's settings, where its folder goes."""

    shard: int
    photos: tuple[str, ...]
    folder: str
    backbone: str
    scales: tuple[float, ...]
    flips: bool
    patch_px: int | None
    threads: int = 1


def split(photos: Sequence[Path], shards: int) -> list[list[Path]]:
    """`shards` contiguous runs of the photos, their sizes differing by one at most (none
    empty: never more shards than photos)."""
    shards = max(1, min(shards, len(photos)))
    size, extra = divmod(len(photos), shards)
    runs, start = [], 0
    for i in range(shards):
        end = start + size + (1 if i < extra else 0)
        runs.append(list(photos[start:end]))
        start = end
    return runs


class Tally:
    """Each shard's progress (a fraction of its crops), kept by a small Ray actor; a retried
    shard starts again from 0."""

    def __init__(self) -> None:
        self.done: dict[int, float] = {}

    def set(self, shard: int, fraction: float) -> None:
        self.done[shard] = fraction

    def get(self) -> dict[int, float]:
        return dict(self.done)


def extract_shard(job: ShardJob, extract: Extract = patchdb.extract, tally: object = None) -> dict:
    """Extract one shard into `job.folder`/NNNNN on `job.threads` torch threads: a Ray task's
    body, and what the driver calls for the shard it extracts itself. `tally` (an actor handle)
    hears of its progress."""
    before = torch.get_num_threads()
    torch.set_num_threads(job.threads)
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        net = load_backbone(job.backbone)
        photos = [Path(p) for p in job.photos]
        crops = patchdb.count_crops(photos, net.input_size, job.scales, job.flips)
        final = Path(job.folder) / f"{job.shard:05d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=job.folder))

        def progress(fraction: float, _stage: str, _preview: object = None) -> None:
            if tally is not None:
                tally.set.remote(job.shard, fraction)

        moments = extract(photos, net, tmp, crops, job.scales, job.flips,
                          job.patch_px or net.cell_patch, progress=progress)
        moments.save(tmp / patchdb.MOMENTS)
        _publish(tmp, final)
    finally:
        torch.set_num_threads(before)
    m = net.map_size(net.input_size)
    return {"shard": job.shard, "folder": str(final), "photos": len(photos), "crops": crops,
            "pairs": crops * m * m, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0, "node": socket.gethostname(),
            "pid": os.getpid()}


def _publish(tmp: Path, final: Path) -> None:
    """The complete shard under its number; when another attempt got there first (a task Ray
    ran twice), that one is kept."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / patchdb.MOMENTS).is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Run:
    """What a sharded build did, and how fast: the JSON of `--json` and the lines it prints."""

    address: str
    threads: int
    name: str = ""
    path: str = ""
    photos: int = 0
    pairs: int = 0
    index: str = ""
    workers: int = 0
    ray_start: float = 0.0     # connecting (or starting a local instance), not counted
    here: dict | None = None   # the shard extracted in this process (compare)
    tasks: list[dict] = field(default_factory=list)  # extract_shard results of Ray's shards
    ray_seconds: float = 0.0   # first task submitted to last result
    merge_seconds: float = 0.0
    index_seconds: float = 0.0
    seconds: float = 0.0       # the whole build, Ray's start excluded

    def ray_rate(self) -> float | None:
        pairs = sum(t["pairs"] for t in self.tasks)
        return pairs / self.ray_seconds if pairs and self.ray_seconds else None

    def here_rate(self) -> float | None:
        return self.here["pairs"] / self.here["seconds"] if self.here else None

    def speedup(self) -> float | None:
        ray, here = self.ray_rate(), self.here_rate()
        return ray / here if ray and here else None

    def metrics(self) -> dict:
        shards = ([self.here] if self.here else []) + self.tasks
        cpu = sum(s["cpu_seconds"] for s in shards)
        keys = ("shard", "photos", "pairs", "seconds", "cpu_seconds")
        return {
            "name": self.name, "path": self.path, "photos": self.photos, "pairs": self.pairs,
            "index": self.index, "shards": len(shards),
            "one_process": self.here and {k: self.here[k] for k in keys},
            "ray": {"address": self.address, "workers": self.workers, "shards": len(self.tasks),
                    "seconds": self.ray_seconds, "start_seconds": self.ray_start,
                    "pairs_per_second": self.ray_rate(),
                    "tasks": [{k: t[k] for k in keys} for t in self.tasks],
                    "nodes": sorted({t["node"] for t in self.tasks})},
            "extract_cpu_seconds": cpu, "pairs_per_cpu_second": self.pairs / cpu if cpu else None,
            "merge_seconds": self.merge_seconds, "index_seconds": self.index_seconds,
            "seconds": self.seconds, "threads_per_shard": self.threads, "speedup": self.speedup(),
        }

    def summary(self) -> str:
        m = self.metrics()
        lines = [f"{self.path}: {self.pairs} pairs from {self.photos} photos in {m['shards']} "
                 f"shard(s) ({self.index})"]
        if self.here:
            lines.append(f"one process (this one): shard 0, {self.here['pairs']} pairs in "
                         f"{self.here['seconds']:.1f} s, {self.here_rate():.0f} pairs/s")
        if self.tasks:
            lines.append(f"Ray ({self.workers} workers): {len(self.tasks)} shard(s), "
                         f"{sum(t['pairs'] for t in self.tasks)} pairs in {self.ray_seconds:.1f} "
                         f"s, {self.ray_rate() or 0:.0f} pairs/s "
                         f"(Ray's start, {self.ray_start:.0f} s, not counted)")
        lines.append(f"extraction: {m['extract_cpu_seconds']:.1f} CPU-s, "
                     f"{m['pairs_per_cpu_second'] or 0:.0f} pairs per CPU-s; merge "
                     f"{self.merge_seconds:.1f} s, index {self.index_seconds:.1f} s; "
                     f"{self.seconds:.1f} s in all")
        x = self.speedup()
        lines.append(f"speed-up over one process: {x:.2f}x (same settings, {self.threads} torch "
                     f"thread(s) a shard)" if x else
                     "speed-up over one process: not measured (--compare measures it)")
        return "\n".join(lines)


def _nothing(_done: float, _total: int) -> None:
    pass


def build(request: BuildPatchDBRequest, address: str, shards: int | None = None, *,
          compare: bool = False, threads: int = 1, num_cpus: int | None = None,
          extract: Extract = patchdb.extract, done: Done = _nothing,
          cancel: Cancel | None = None) -> Run:
    """Build the request's database from shards extracted as Ray tasks on the cluster at
    `address` (`local`: a new instance on this machine with `num_cpus` CPUs, default all).
    `shards` defaults to one per worker (plus the one extracted here with `compare`). `done`
    hears of the photos extracted so far (a progress bar)."""
    if shards is not None and shards < 1:
        raise InputError("--shards must be at least 1")
    photos, _ = request_photos(request, None)
    paths = patchdb.collect_images(photos, cancel)
    run = Run(address, threads, name=request.name, photos=len(paths))
    t0 = time.perf_counter()
    with connected(address, num_cpus) as ray:
        run.ray_start, run.workers = time.perf_counter() - t0, workers(ray, threads)
        t0 = time.perf_counter()
        runs = split(paths, shards or run.workers + (1 if compare else 0))
        net = load_backbone(request.backbone)
        with atomic.replacing(patchdb.db_root(net.name) / request.name, "patchdb", cancel) as version:
            (version / SHARDS).mkdir()
            jobs = [ShardJob(i, tuple(str(p.resolve()) for p in run_), str(version / SHARDS),
                             net.name, tuple(request.scales), request.flips, request.patch_px,
                             threads) for i, run_ in enumerate(runs)]
            results = _extract_all(ray, jobs, compare, extract, run, done, cancel)
            _finish(version, results, net, request, [str(p) for p in paths], run, cancel)
    run.seconds = time.perf_counter() - t0
    run.path = str(patchdb.load(net.name, request.name).path)
    return run


def _extract_all(ray: ModuleType, jobs: list[ShardJob], compare: bool, extract: Extract,
                 run: Run, done: Done, cancel: Cancel | None) -> list[dict]:
    """Every shard's result, in shard order: the first extracted here with `compare` (when
    there are two shards or more), the others on Ray."""
    sizes = [len(j.photos) for j in jobs]
    here = compare and len(jobs) > 1
    if here:
        def progress(fraction: float, _stage: str, _preview: object = None) -> None:
            check(cancel, "while extracting the first shard")
            done(fraction * sizes[0], sum(sizes))

        run.here = extract_shard(jobs[0], _with_progress(extract, progress))
    _on_ray(ray, jobs[1:] if here else jobs, extract, run,
            lambda tally: done(sum(f * sizes[s] for s, f in tally.items()), sum(sizes)), cancel)
    return ([run.here] if run.here else []) + sorted(run.tasks, key=lambda r: r["shard"])


def _with_progress(extract: Extract, progress: Callable) -> Extract:
    def extract_here(*args, **kwargs):
        return extract(*args, **{**kwargs, "progress": progress})

    return extract_here


def _on_ray(ray: ModuleType, jobs: Sequence[ShardJob], extract: Extract, run: Run,
            tallied: Callable[[dict], None], cancel: Cancel | None) -> None:
    """Every job as a task of `threads` CPUs, its progress polled from a Tally actor; on the way
    out (an interrupt, a cancel, a failed shard) the tasks not finished are cancelled."""
    task = ray.remote(extract_shard).options(num_cpus=run.threads, max_retries=MAX_RETRIES,
                                             retry_exceptions=False)
    tally = ray.remote(Tally).options(num_cpus=0).remote()
    before = {s["shard"]: 1.0 for s in ([run.here] if run.here else [])}
    t0 = time.perf_counter()
    refs = {task.remote(job, extract, tally): job for job in jobs}
    waiting = list(refs)
    try:
        while waiting:
            check(cancel, "while extracting the shards")
            ready, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=POLL_S)
            run.tasks += [_result(ray, ref, refs[ref]) for ref in ready]
            tallied({**before, **ray.get(tally.get.remote()),
                     **{t["shard"]: 1.0 for t in run.tasks}})
    finally:
        for ref in waiting:
            ray.cancel(ref, force=True)
        if waiting:
            ray.wait(waiting, num_returns=len(waiting), timeout=CANCEL_WAIT_S)
        ray.kill(tally)
    run.ray_seconds = time.perf_counter() - t0


def _result(ray: ModuleType, ref: object, job: ShardJob) -> dict:
    which = f"shard {job.shard} ({len(job.photos)} photos from {Path(job.photos[0]).name})"
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the shard's own error, raised in its task
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        why = str(cause).strip().splitlines()[-1] if str(cause).strip() else repr(cause)
        raise StylefillError(f"{which} failed: {why}; the database was not written") from None
    except ray.exceptions.RayError as exc:  # its worker died MAX_RETRIES + 1 times, or its node
        raise StylefillError(f"{which} failed: {type(exc).__name__} (its worker died "
                             f"{MAX_RETRIES + 1} times); the database was not written") from None


def _finish(version: Path, results: list[dict], net: Backbone, request: BuildPatchDBRequest,
            names: list[str], run: Run, cancel: Cancel | None) -> None:
    """Merge the shards, write the colour statistics, the index and meta.json."""
    t0 = time.perf_counter()
    crops, moments = patchdb.merge([Path(r["folder"]) for r in results], version, cancel)
    shutil.rmtree(version / SHARDS)  # and any dead attempt's temporary folder
    run.merge_seconds, t0 = time.perf_counter() - t0, time.perf_counter()
    run.index = patchdb.seal(version, moments, cancel)
    run.index_seconds = time.perf_counter() - t0
    atomic.fault_point("patchdb:index")
    patch_px = request.patch_px or net.cell_patch
    patchdb.write_meta(version, request.name, net, names, crops, request.scales, request.flips,
                       patch_px, run.index)
    m = net.map_size(net.input_size)
    run.pairs = crops * m * m
