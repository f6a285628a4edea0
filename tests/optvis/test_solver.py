"""The render loop on the real network: it minimises, it runs the priors the objective carries
at their pace, it reports one progress signature, it stops on cancel, it repeats with a seed."""

from __future__ import annotations

import threading

import pytest
import torch

from stylefill.errors import Cancelled
from stylefill.optvis import objectives as obj
from stylefill.optvis import transforms as tf
from stylefill.optvis.param import PixelParam, make_param, start_noise
from stylefill.optvis.patch_prior import PatchPrior
from stylefill.optvis.solver import _lr_factor, render

SIZE = 64


def _inversion(backbone, photo):
    small = torch.nn.functional.interpolate(photo, size=SIZE, mode="area")
    with torch.no_grad():
        target = backbone(small).pool5
    return small, obj.feature_inversion(target)


def test_render_lowers_the_objective(backbone, photo):
    _, loss = _inversion(backbone, photo)
    res = render(backbone, loss, make_param("fourier", start_noise((1, 3, SIZE, SIZE), 0, 0.1)),
                 iters=30, lr=0.05)
    assert len(res.losses) == 30 and res.image.shape == (1, 3, SIZE, SIZE)
    assert res.losses[-1] < 0.7 * res.losses[0], res.losses[::5]
    assert float(res.image.min()) >= 0 and float(res.image.max()) <= 1


class CountingPrior(PatchPrior):
    """A real patch prior that counts its matching steps."""

    updates = 0

    def update(self, image):
        self.updates += 1
        super().update(image)


def test_priors_carried_by_the_objective_get_their_matching_step(backbone, photo):
    small, loss = _inversion(backbone, photo)
    prior = CountingPrior.from_images(small, every=5)
    total = loss + 0.1 * prior.objective() + 2.0 * prior.objective()  # carried once, not twice
    assert total.priors == (prior,)
    render(backbone, total, PixelParam(start_noise((1, 3, SIZE, SIZE), 0, 0.1)), iters=12)
    assert prior.updates == 3  # steps 0, 5 and 10
    assert (loss * 2).priors == () and (-(1.0 * prior.objective())).priors == (prior,)


def test_progress_reports_every_step_with_a_preview_and_cancel_stops(backbone, photo):
    _, loss = _inversion(backbone, photo)
    stop = threading.Event()
    seen = []

    def progress(fraction, stage, preview):
        seen.append((fraction, stage, tuple(preview.shape)))
        if len(seen) == 4:
            stop.set()

    with pytest.raises(Cancelled, match="at step 4 of 10"):
        render(backbone, loss, make_param("pixel", start_noise((2, 3, SIZE, SIZE), 0, 0.1)),
               iters=10, progress=progress, stage="testing", cancel=stop)
    assert seen == [(i / 10, f"testing {i}/10", (1, 3, SIZE, SIZE)) for i in range(1, 5)]


def test_same_seed_same_image_with_random_views(backbone, photo):
    _, loss = _inversion(backbone, photo)

    def once(seed):
        return render(backbone, loss, make_param("fourier", start_noise((1, 3, SIZE, SIZE), 1, 0.1)),
                      iters=5, transforms=tf.robust(SIZE / 224), seed=seed).image

    assert torch.equal(once(7), once(7))
    assert not torch.equal(once(7), once(8))


def test_learning_rate_holds_then_decays_to_a_tenth():
    assert [_lr_factor(i, 100) for i in (0, 49)] == [1.0, 1.0]
    assert _lr_factor(50, 100) == pytest.approx(1.0)
    assert _lr_factor(99, 100) == pytest.approx(0.1, abs=0.01)
    assert all(_lr_factor(i, 100) >= _lr_factor(i + 1, 100) for i in range(99))
