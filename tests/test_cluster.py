"""`styles learn ... --ray`: data-free styles of many classes, each class a task on a real local
Ray instance (started here on 127.0.0.1 with 2 CPUs, bounded in time), against the same classes
learned sequentially in this process. Sampling is tiny (4 pathways of 8 steps at 64 px, previews
of 4 steps, 2 topics) so a class takes seconds; what is compared is the code path, which is the
same at any size."""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from harness import local_ray, needs_ray

from stylefill import atomic, styles
from stylefill.classes import resolve_class
from stylefill.cli import main
from stylefill.cluster import learn as class_runs
from stylefill.operations.styling import LearnStylesRequest

CLASSES = ["tench", "goldfish", "great white shark"]
TINY = partial(styles.learn, data_free_settings=styles.DataFreeSettings(samples=4, size=64, iters=8),
               preview_settings=styles.PreviewSettings(iters=4))
RAY_BUDGET_S = 420  # the whole module, Ray's start included; a hang past it ends the test run


def _jobs(classes: list[str], root: Path) -> list[class_runs.ClassJob]:
    return class_runs.jobs_for([LearnStylesRequest(cls=c, data_free=True, topics=2, seed=3)
                                for c in classes], root=root)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (harness.local_ray)."""
    with local_ray(RAY_BUDGET_S) as ray:
        yield ray


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> Path:
    """The three classes learned one after another in this process (the reference)."""
    root = tmp_path_factory.mktemp("sequential")
    for job in _jobs(CLASSES, root):
        class_runs.learn_class(job, TINY)
    return root


def _same_styles(a: Path, b: Path, cls: str) -> None:
    """Bit-identical sets: arrays, every PNG, styles.json but for the run's duration."""
    sa, sb = styles.load(cls, root=a), styles.load(cls, root=b)
    for key in styles.ARRAYS:
        assert np.array_equal(getattr(sa, key), getattr(sb, key)), (cls, key)
    ja, jb = (json.loads((s.root / "styles.json").read_text()) for s in (sa, sb))
    assert {**ja, "seconds": 0} == {**jb, "seconds": 0}, cls
    pngs = sorted(p.name for p in sa.root.glob("*.png"))
    assert pngs == sorted(p.name for p in sb.root.glob("*.png")) and len(pngs) == 4 + 2
    for name in pngs:
        assert (sa.root / name).read_bytes() == (sb.root / name).read_bytes(), (cls, name)


def _one_complete_version(folder: Path) -> None:
    """A class folder holds its lock, its pointer and the version it names: nothing half-written."""
    version = atomic.current(folder)
    assert version is not None and version.parent == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted([atomic.LOCK, atomic.POINTER, version.name])


@needs_ray
def test_three_classes_on_two_workers_equal_sequential(ray_local, sequential, tmp_path):
    finished = []
    run = class_runs.learn_styles(_jobs(CLASSES, tmp_path), "local", compare=False, learn=TINY,
                                  done=lambda name, ok: finished.append((name, ok)))
    assert not run.failed and run.workers == 2 and run.ray_classes == 3
    assert sorted(finished) == sorted((c, True) for c in CLASSES)  # the bar moved once a class
    assert len({r["pid"] for r in run.learned}) == 2 and os.getpid() not in {r["pid"] for r in run.learned}
    for cls in CLASSES:
        _same_styles(sequential, tmp_path, cls)
        _one_complete_version(styles.class_dir(*resolve_class(cls), styles.DEFAULT_BACKBONE, tmp_path))
    assert "not measured (--no-compare)" in run.summary()


@needs_ray
def test_a_killed_worker_is_retried_and_leaves_no_partial_files(ray_local, sequential, tmp_path):
    """The Ray class's first run is killed (SIGKILL) after writing its files and before switching
    to them; Ray runs it again in a new worker. The first class is learned here (the comparison)."""
    attempts = tmp_path / "attempts"
    attempts.touch()
    driver, target = os.getpid(), resolve_class("goldfish")[0]

    def killed_once(index, *args, **kwargs):
        first = f"{index} " not in attempts.read_text()
        with open(attempts, "a") as out:
            out.write(f"{index} {os.getpid()}\n")
        if index == target and first and os.getpid() != driver:
            os.environ[atomic.FAULT_ENV] = "styles:written"  # this worker dies mid-write
        else:
            os.environ.pop(atomic.FAULT_ENV, None)
        return TINY(index, *args, **kwargs)

    root = tmp_path / "models"
    run = class_runs.learn_styles(_jobs(CLASSES[:2], root), "local", compare=True, learn=killed_once)
    assert not run.failed, run.failed
    tries = attempts.read_text().split("\n")[:-1]
    assert tries[0].split()[0] != str(target)  # the class learned here, first
    ray_tries = [t.split()[1] for t in tries[1:]]
    assert len(ray_tries) == 2 and ray_tries[0] != ray_tries[1]  # killed once, run again elsewhere
    assert run.one_process["pid"] == driver and run.speedup() and "speed-up over one process" in run.summary()
    for cls in CLASSES[:2]:
        _one_complete_version(styles.class_dir(*resolve_class(cls), styles.DEFAULT_BACKBONE, root))
        _same_styles(sequential, root, cls)


@needs_ray
def test_the_command_skips_classes_that_have_styles(sequential, tmp_path, monkeypatch, capsys):
    """Resumable: classes with styles are skipped (and Ray is not even started for none)."""
    monkeypatch.setenv("STYLEFILL_MODELS", str(sequential))
    listing = tmp_path / "classes.txt"
    listing.write_text("# fish\ngoldfish\n0   # tench again, by index\n\n")
    out = tmp_path / "run.json"
    assert main(["styles", "learn", "tench", "--classes", str(listing), "--data-free", "--topics", "2",
                 "--seed", "3", "--ray", "local", "--json", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    assert data["skipped"] == ["tench", "goldfish"] and data["learned"] == []
    assert "2 of 2 classes have styles already" in capsys.readouterr().out


@needs_ray
def test_an_address_where_nothing_answers_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))
    assert main(["styles", "learn", "tench", "--data-free", "--ray", "127.0.0.1:1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Ray cluster answers there" in err[0], err


def test_without_the_extra_ray_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    assert main(["styles", "learn", "tench", "goldfish", "--data-free", "--ray", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "install/install.sh --with-ray" in err[0], err


@pytest.mark.parametrize("argv", [["tench", "goldfish"], ["--all"], ["tench", "--force"]])
def test_many_classes_go_with_ray(argv, capsys):
    assert main(["styles", "learn", *argv, "--data-free"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ray ADDRESS" in err[0], err
