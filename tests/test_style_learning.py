"""A class's data-free styles are learned once, for the class: waiting jobs see its stage and
time left, a cancelled waiter leaves the run going, and a background run gives way to jobs that
compute. Learning is cut down (4 samples at 64 px) so a run takes seconds, on the real network."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest
from harness import held_at_sampling

from stylefill import styles
from stylefill.errors import Cancelled
from stylefill.style_learning import LEARNED, LEARNING, Foreground, StyleLearner, style_pathway


@pytest.fixture
def quick_learning(monkeypatch, tmp_path):
    """Styles into a fresh models dir, learned in a few seconds; yields the calls made."""
    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))
    calls = []
    real = partial(styles.learn, data_free_settings=styles.DataFreeSettings(samples=4, size=64, iters=8),
                   preview_settings=styles.PreviewSettings(iters=3))

    def learn(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(styles, "learn", learn)
    return calls


def test_a_class_is_learned_once_and_a_cancelled_waiter_does_not_stop_it(backbone, quick_learning,
                                                                       monkeypatch):
    """The run is held at its sampling stage until the waiter has left, so a quick run cannot
    end between the waiter's cancel and its next look at the run."""
    waiter_left = threading.Event()
    monkeypatch.setattr(styles, "learn", held_at_sampling(styles.learn, waiter_left))
    learner = StyleLearner()
    index = backbone.categories.index("goldfish")
    run = learner.ensure(index, backbone)
    assert learner.ensure(index, backbone) is run  # a second asker joins the same run
    cancel, seen = threading.Event(), []

    def progress(fraction, stage, _preview=None):
        seen.append(stage)
        if "sampling pathways" in stage:
            cancel.set()

    with pytest.raises(Cancelled, match="go on being learned in the background"):
        learner.wait(run, progress, cancel)
    assert not run.done.is_set()  # the waiter left; the run did not stop
    waiter_left.set()
    assert all(s.startswith("learning the styles of goldfish (one-time, cached): ") for s in seen)
    assert run.done.wait(120) and run.state == LEARNED
    assert styles.is_learned(index, backbone.name) and quick_learning == [index]
    assert learner.ensure(index, backbone).state == LEARNED  # nothing is learned twice
    assert quick_learning == [index]
    status = run.status()
    assert status["state"] == "learned" and status["progress"] == 100


def test_a_job_needing_a_style_waits_for_the_run_with_an_estimate(backbone, quick_learning):
    index = backbone.categories.index("tench")
    seen = []
    m7, images, rest, learned = style_pathway(index, backbone, 1, 64,
                                              lambda f, s, p=None: seen.append((f, s)))
    assert m7.shape == (backbone.units("fc7"),) and images.shape[-2:] == (64, 64)
    assert learned.index == index and (learned.m7(1) == m7).all()  # the set they came from
    assert seen and all(f <= 0.5 for f, _ in seen) and rest is not None
    assert any(" s left" in s for _, s in seen), seen[-3:]


def test_a_background_run_pauses_while_a_job_computes(backbone, quick_learning):
    foreground = Foreground()
    learner = StyleLearner(foreground)
    with foreground.busy():
        run = learner.ensure(backbone.categories.index("hay"), backbone)
        time.sleep(3.0)
        assert run.fraction < 0.05 and not run.done.is_set()  # held at its first step
    assert run.done.wait(120) and run.state == LEARNED


def test_a_class_someone_waits_for_is_learned_before_prefetched_ones(backbone, quick_learning):
    foreground = Foreground()
    learner = StyleLearner(foreground)
    ids = [backbone.categories.index(c) for c in ("tench", "goldfish", "hay")]
    with foreground.busy():  # holds the first run at its first step
        runs = [learner.ensure(i, backbone) for i in ids]
        deadline = time.monotonic() + 30
        while runs[0].state != LEARNING and time.monotonic() < deadline:
            time.sleep(0.05)
        learner.first(runs[2])
    assert all(r.done.wait(120) for r in runs)
    assert quick_learning == [ids[0], ids[2], ids[1]]
