"""Class visualisation (paper Eq. 2) judged the way a person would: recognisable, not noise."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from stylefill.classification import robustness
from stylefill.errors import Cancelled, InputError
from stylefill.operations import VisualizeRequest
from stylefill.optvis import recipes

LADYBUG = 301


def test_ladybug_is_recognised_and_survives_blur_and_resampling(backbone):
    res = recipes.visualize(backbone, LADYBUG, seed=0)
    assert res.top1 == "ladybug"
    assert res.prob >= 0.9
    probs = robustness(backbone, res.image, res.index)
    assert probs["blur"] >= 0.5, probs
    assert probs["resample"] >= 0.5, probs


def test_plain_pixel_ascent_is_adversarial_and_fails_the_robustness_check(backbone):
    """The check above can fail: unregularised pixel ascent fools the net but not a blur."""
    noisy = replace(recipes.VisualizationSettings(), param="pixel", robust=False, iters=40, lr=0.02)
    res = recipes.visualize(backbone, LADYBUG, settings=noisy, seed=0)
    assert res.prob >= 0.9
    probs = robustness(backbone, res.image, res.index)
    assert min(probs["blur"], probs["resample"]) < 0.5, probs


def test_same_seed_same_image_and_progress_reported(backbone):
    short = replace(recipes.VisualizationSettings(), iters=6)
    seen: list[tuple[float, str]] = []
    a = recipes.visualize(backbone, LADYBUG, settings=short, seed=3,
                          progress=lambda f, stage, img: seen.append((f, stage)))
    b = recipes.visualize(backbone, LADYBUG, settings=short, seed=3)
    c = recipes.visualize(backbone, LADYBUG, settings=short, seed=4)
    assert [stage for _, stage in seen] == [f"optimising {i}/6" for i in range(1, 7)]
    assert seen[-1][0] == 1.0
    assert torch.equal(a.image, b.image)
    assert not torch.equal(a.image, c.image)


def test_cancel_stops_between_steps(backbone):
    stop = threading.Event()
    seen: list[str] = []

    def progress(fraction, stage, img):
        seen.append(stage)
        if len(seen) == 3:
            stop.set()

    with pytest.raises(Cancelled):
        recipes.visualize(backbone, LADYBUG, progress=progress, cancel=stop)
    assert seen == ["optimising 1/256", "optimising 2/256", "optimising 3/256"]


def test_class_names_and_indices_resolve_once_in_the_request():
    assert VisualizeRequest(cls="LADYBUG").index == LADYBUG
    assert VisualizeRequest(cls=301).index == VisualizeRequest(cls="301").index == LADYBUG
    with pytest.raises(InputError, match="ladybug"):
        VisualizeRequest(cls="ladybird")
