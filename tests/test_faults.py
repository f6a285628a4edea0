"""Fault injection in real processes: a writer killed (SIGKILL) at every write step of styles
learning and of patch database building, a disk that refuses a write; then a restart.

Each writer runs as `python -c ...` with $STYLEFILL_FAULT_AT naming the step where it kills
itself (`atomic.fault_point`). After each kill, what a restart does is done (`atomic.clean`,
which every writer runs first), and the set must be the complete previous one (killed before
the switch) or the complete new one (after it), with nothing else left in its folder. The
figures (kill points survived, data lost) go to docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from harness import isolated_models

from stylefill import atomic, patchdb, styles
from stylefill.sample_photos import packaged_photos

TIMEOUT = 300  # s: a guard against a hung writer, never what a test measures
STYLE_STEPS = ["begun", "arrays", "images", "written", "pointed", "switched", "cleaning"]
DB_STEPS = ["begun", "rows", "index", "written", "pointed", "switched", "cleaning"]
BEFORE_SWITCH = {"begun", "arrays", "images", "rows", "index", "written", "pointed"}
TINY = ("data_free_settings=styles.DataFreeSettings(samples=2, size=64, iters=2), "
        "preview_settings=styles.PreviewSettings(iters=2), topics=2")
LEARN = f"""
import sys
from stylefill import styles
from stylefill.backbones import load_backbone
from stylefill.errors import StylefillError
# limit
try:
    styles.learn("ladybug", load_backbone(), data_free=True, seed=int(sys.argv[1]), {TINY})
except StylefillError as exc:
    sys.exit(f"error: {{exc}}")
"""
BUILD = """
import sys
from stylefill import patchdb
from stylefill.backbones import load_backbone
from stylefill.errors import StylefillError
# limit
try:
    patchdb.build([sys.argv[1]], load_backbone(), "faulty", scales=(1.0,), flips=False)
except StylefillError as exc:
    sys.exit(f"error: {exc}")
"""
# A file-size limit makes the kernel refuse the write that would pass it (EFBIG), as a full
# disk refuses it (ENOSPC); SIGXFSZ ignored, the writer sees the error instead of dying.
FILE_LIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({size}, {size}))
"""


def _run(script: str, arg: str, models: Path, fault: str | None = None,
         file_limit: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != atomic.FAULT_ENV}
    env.update(STYLEFILL_MODELS=str(models), OMP_NUM_THREADS="1")  # 4x faster on a shared CPU
    if fault:
        env[atomic.FAULT_ENV] = fault
    limit = FILE_LIMIT.format(size=file_limit) if file_limit else ""
    return subprocess.run([sys.executable, "-c", script.replace("# limit", limit), arg], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def _orphans(folder: Path) -> list[str]:
    """Entries of a set's folder that are neither its lock, its pointer nor its version (or,
    for a set from before versions, a version or pointer left by a writer)."""
    version = atomic.current(folder)
    if (folder / atomic.POINTER).exists():
        keep = {atomic.LOCK, atomic.POINTER, version.name}
        return sorted(p.name for p in folder.iterdir() if p.name not in keep)
    return sorted(p.name for p in folder.iterdir()
                  if atomic.VERSION.fullmatch(p.name) or p.name.startswith(".current."))


@pytest.fixture
def style_models(tmp_path, backbone) -> tuple[Path, Path, np.ndarray]:
    """A models dir whose ladybug styles (seed 0) are in the layout from before versions
    (files directly in the class folder); returns it, that folder and their directions."""
    models = isolated_models(tmp_path / "models")
    learned = styles.learn("ladybug", backbone, data_free=True, seed=0, root=tmp_path / "first",
                           data_free_settings=styles.DataFreeSettings(samples=2, size=64, iters=2),
                           preview_settings=styles.PreviewSettings(iters=2), topics=2)
    folder = styles.class_dir(301, "ladybug", backbone.name, models)
    folder.parent.mkdir(parents=True)
    os.rename(learned.root, folder)  # one version folder, moved: the old layout
    return models, folder, learned.directions


def test_styles_learning_killed_at_every_write_step(style_models, capsys):
    models, folder, old = style_models
    seen = []
    for seed, step in enumerate(STYLE_STEPS, start=1):
        run = _run(LEARN, str(seed), models, fault=f"styles:{step}")
        assert run.returncode == -signal.SIGKILL, (step, run.stderr[-2000:])
        atomic.clean(folder.parent)  # the restart: the next writer's first step
        loaded = styles.load("ladybug", root=models)  # complete, or this raises
        if step in BEFORE_SWITCH:
            assert np.array_equal(loaded.directions, old), step  # the previous set, intact
        else:
            assert loaded.meta["seed"] == seed, step  # the new set, complete
            old = loaded.directions
        assert _orphans(folder) == [], (step, _orphans(folder))
        seen.append(step)
    final = _run(LEARN, "99", models)
    assert final.returncode == 0, final.stderr[-2000:]
    assert styles.load("ladybug", root=models).meta["seed"] == 99 and _orphans(folder) == []
    with capsys.disabled():
        print(f"\nstyles: killed at {len(seen)} write steps ({', '.join(seen)}), "
              "survived all, 0 sets lost")


@pytest.fixture
def db_models(tmp_path, backbone, monkeypatch) -> tuple[Path, list[Path]]:
    """A models dir of its own (weights shared) holding database 'faulty' built from photo 0
    of two; returns it and the photos."""
    from stylefill.paths import models_dir

    models = tmp_path / "models"
    models.mkdir()
    (models / "weights").symlink_to(models_dir() / "weights", target_is_directory=True)
    photos = []
    for name in ("chelsea", "coffee"):
        photos.append(tmp_path / f"{name}.png")
        packaged_photos()[f"skimage:{name}"].save(photos[-1])
    monkeypatch.setenv("STYLEFILL_MODELS", str(models))
    patchdb.build([photos[0]], backbone, "faulty", scales=(1.0,), flips=False)
    return models, photos


def test_patch_database_building_killed_at_every_write_step(db_models, backbone, capsys):
    models, photos = db_models
    folder = patchdb.db_root(backbone.name) / "faulty"
    seen = []
    for step in DB_STEPS:
        before = patchdb.load(backbone.name, "faulty").meta["images"]
        other = str(photos[1] if before == [str(photos[0])] else photos[0])
        run = _run(BUILD, other, models, fault=f"patchdb:{step}")
        assert run.returncode == -signal.SIGKILL, (step, run.stderr[-2000:])
        atomic.clean(folder.parent)
        db = patchdb.load(backbone.name, "faulty")  # complete, or this raises
        assert db.meta["images"] == (before if step in BEFORE_SWITCH else [other]), step
        assert len(db.patches) == db.index.ntotal == db.meta["count"]
        assert _orphans(folder) == [], (step, _orphans(folder))
        seen.append(step)
    final = _run(BUILD, str(photos[0]), models)
    assert final.returncode == 0, final.stderr[-2000:]
    assert patchdb.load(backbone.name, "faulty").meta["images"] == [str(photos[0])]
    assert _orphans(folder) == []
    with capsys.disabled():
        print(f"\npatch database: killed at {len(seen)} write steps ({', '.join(seen)}), "
              "survived all, 0 databases lost")


def test_a_disk_that_refuses_the_styles_keeps_the_old_ones(style_models):
    """The arrays fit under the limit, a preview does not: the write fails half-way."""
    models, folder, old = style_models
    run = _run(LEARN, "5", models, file_limit=40_000)
    assert run.returncode == 1
    assert "could not write" in run.stderr and "File too large" in run.stderr
    assert "previous version is kept" in run.stderr
    assert np.array_equal(styles.load("ladybug", root=models).directions, old)
    assert _orphans(folder) == []


def test_a_disk_that_refuses_the_database_keeps_the_old_one(db_models, backbone):
    models, photos = db_models
    run = _run(BUILD, str(photos[1]), models, file_limit=200_000)
    assert run.returncode == 1
    assert "could not write" in run.stderr and "previous version is kept" in run.stderr
    assert patchdb.load(backbone.name, "faulty").meta["images"] == [str(photos[0])]
    assert _orphans(patchdb.db_root(backbone.name) / "faulty") == []
