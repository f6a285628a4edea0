"""`patchdb build ... --ray`: a patch database from photo shards, each a task on a real local Ray
instance (started here on 127.0.0.1 with 2 CPUs, bounded in time), against the same photos
built by one process on the same torch thread count. Six small real photos at one scale (24
crops, 1176 pairs) keep a build to seconds; what is compared is the code path, which is the
same at any size."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from harness import local_ray, needs_ray

from stylefill import atomic, patchdb
from stylefill.backbones import load_backbone
from stylefill.cli import main
from stylefill.cluster import patchdb as shard_runs
from stylefill.errors import Cancelled
from stylefill.operations.database import BuildPatchDBRequest
from stylefill.sample_photos import packaged_photos

PHOTOS = ("skimage:chelsea", "skimage:coffee", "skimage:astronaut", "skimage:rocket",
          "sklearn:china.jpg", "sklearn:flower.jpg")
RAY_BUDGET_S = 300  # the whole module, Ray's start included; a hang past it ends the test run
BACKBONE = "efficientnet-lite0"


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (harness.local_ray)."""
    with local_ray(RAY_BUDGET_S) as ray:
        yield ray


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The photos as files (workers read them by path), sorted as a build takes them."""
    out = tmp_path_factory.mktemp("photos")
    found = packaged_photos()
    for i, name in enumerate(PHOTOS):
        found[name].save(out / f"{i}-{name.split(':')[1].split('.')[0]}.png")
    return out


def _one_process(folder: Path, name: str) -> patchdb.PatchDB:
    """The database one process builds from the folder, on one torch thread (as a task runs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return patchdb.build([folder], load_backbone(BACKBONE), name, scales=(1.0,))
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(models, folder) -> patchdb.PatchDB:
    return _one_process(folder, "reference")


def _same_database(db: patchdb.PatchDB, ref: patchdb.PatchDB) -> None:
    """The same pairs, bit for bit, in the same order; the same meta but for name and date;
    the same neighbours (recall@10 against the single build's)."""
    assert len(db) == len(ref) == ref.meta["count"]
    for key in ("features", "patches", "sources", "stats"):
        assert np.array_equal(getattr(db, key), getattr(ref, key)), key
    with np.load(db.path / "colour.npz") as a, np.load(ref.path / "colour.npz") as b:
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-12)
        np.testing.assert_allclose(a["cov"], b["cov"], rtol=1e-9, atol=1e-15)
    skip = {"name", "created"}
    assert {k: v for k, v in db.meta.items() if k not in skip} == {
        k: v for k, v in ref.meta.items() if k not in skip}
    queries = np.asarray(ref.features[::7], np.float32) + 0.01
    found, expected = db.search(queries, 10), ref.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, expected, strict=True)])
    assert recall >= 0.99


def _one_complete_version(folder: Path) -> None:
    """The database folder holds its lock, its pointer and the version it names, and that
    version holds a database's files only: no shard, no temporary folder."""
    version = atomic.current(folder)
    assert version is not None and version.parent == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted([atomic.LOCK, atomic.POINTER, version.name])
    assert sorted(p.name for p in version.iterdir()) == sorted(
        ["colour.npz", "features.npy", "index.faiss", "meta.json", "patches.npy", "sources.npy",
         "stats.npy"])


@needs_ray
def test_the_command_builds_the_database_one_process_builds(ray_local, folder, models, tmp_path,
                                                            monkeypatch):
    """With the IVF-PQ index (its threshold lowered for 1176 pairs): trained on the same
    features, it is the same index, byte for byte."""
    monkeypatch.setattr(patchdb, "IVFPQ_THRESHOLD", 100)
    reference = _one_process(folder, "reference-pq")
    out = tmp_path / "run.json"
    assert main(["patchdb", "build", str(folder), "--name", "sharded", "--scales", "1", "--ray",
                 "local", "--shards", "3", "--json", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    assert data["pairs"] == len(reference) and data["shards"] == 3 and data["ray"]["workers"] == 2
    assert [t["photos"] for t in data["ray"]["tasks"]] == [2, 2, 2] and data["speedup"] is None
    assert data["ray"]["pairs_per_second"] > 0 and data["extract_cpu_seconds"] > 0
    db = patchdb.load(BACKBONE, "sharded")
    _same_database(db, reference)
    assert data["index"] == reference.meta["index"] == "IndexIVFPQ"
    assert (db.path / "index.faiss").read_bytes() == (reference.path / "index.faiss").read_bytes()
    _one_complete_version(db.path.parent)


@needs_ray
def test_a_killed_worker_is_retried_and_leaves_no_partial_files(ray_local, reference, folder,
                                                                models, tmp_path):
    """Shard 1's first run is killed (SIGKILL) after writing its first rows; Ray runs it again in
    a new worker. Shard 0 is extracted here first (the comparison)."""
    attempts = tmp_path / "attempts"
    attempts.touch()
    driver = os.getpid()

    def killed_once(photos, *args, **kwargs):
        first = f"{photos[0].name} " not in attempts.read_text()
        with open(attempts, "a") as out:
            out.write(f"{photos[0].name} {os.getpid()}\n")
        if photos[0].name.startswith("2-") and first and os.getpid() != driver:
            os.environ[atomic.FAULT_ENV] = "patchdb:rows"  # this worker dies mid-shard
        else:
            os.environ.pop(atomic.FAULT_ENV, None)
        return patchdb.extract(photos, *args, **kwargs)

    seen = []
    request = BuildPatchDBRequest(photos=[str(folder)], name="retried", scales=[1.0])
    run = shard_runs.build(request, "local", compare=True, extract=killed_once,
                           done=lambda n, total: seen.append((n, total)))
    tries = [line.split() for line in attempts.read_text().splitlines()]
    assert tries[0] == ["0-chelsea.png", str(driver)] and run.here["pid"] == driver
    retried = [pid for name, pid in tries if name.startswith("2-")]
    assert len(retried) == 2 and retried[0] != retried[1]  # killed once, run again elsewhere
    assert run.speedup() and "speed-up over one process" in run.summary()
    assert seen[-1] == (6, 6) and all(b[0] >= 0 for b in seen)
    db = patchdb.load(BACKBONE, "retried")
    _same_database(db, reference)
    _one_complete_version(db.path.parent)


@needs_ray
def test_a_cancelled_build_leaves_no_database(ray_local, folder, models):
    cancel = threading.Event()

    def done(n: float, _total: int) -> None:
        if n > 0:
            cancel.set()

    request = BuildPatchDBRequest(photos=[str(folder)], name="cancelled", scales=[1.0])
    with pytest.raises(Cancelled):
        shard_runs.build(request, "local", shards=2, done=done, cancel=cancel)
    target = patchdb.db_root(BACKBONE) / "cancelled"
    assert [p.name for p in target.iterdir()] == [atomic.LOCK]  # no pointer, no version


def test_without_the_extra_ray_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    assert main(["patchdb", "build", str(tmp_path), "--name", "x", "--ray", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "install/install.sh --with-ray" in err[0], err


@pytest.mark.parametrize("argv", [["--shards", "2"], ["--compare"]])
def test_shards_go_with_ray(argv, capsys, tmp_path):
    assert main(["patchdb", "build", str(tmp_path), "--name", "x", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ray ADDRESS" in err[0], err


def test_shards_are_contiguous_runs_in_photo_order():
    photos = [Path(f"{i}.png") for i in range(7)]
    runs = shard_runs.split(photos, 3)
    assert [len(r) for r in runs] == [3, 2, 2] and sum(runs, []) == photos
    assert shard_runs.split(photos[:2], 5) == [[photos[0]], [photos[1]]]


def test_crop_count_is_that_of_the_crops(folder):
    found = packaged_photos()
    for name in PHOTOS:
        for scales, flips in (((1.0,), True), ((1.0, 1.5, 2.0), False)):
            crops = patchdb.network_crops(found[name], 224, scales, flips)
            assert patchdb.crop_count(found[name].size, 224, scales, flips) == len(crops)
