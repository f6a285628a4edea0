"""The paper's recipes on real photos with real weights: feature inversion (Eq. 1) and Table 1's
order, class visualisation (Eq. 2) judged the way a person would (recognisable, not noise)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from stylefill import patchdb
from stylefill.classification import robustness
from stylefill.errors import Cancelled, InputError
from stylefill.optvis import recipes


@pytest.fixture(scope="module")
def db(backbone):
    """The embedded default database (built from packaged photos on first use)."""
    return patchdb.default_db(backbone)


def test_inversion_drives_feature_error_down(backbone, db, photo):
    with torch.no_grad():
        target = backbone(photo).pool5
    res = recipes.invert(backbone, photo, prior="tv", init="patchdb", db=db, seed=1)
    with torch.no_grad():
        start_error = float((backbone(res.init).pool5 - target).pow(2).sum() / target.pow(2).sum())
    print("feature error", start_error, "->", res.feature_error)
    assert res.feature_error < 0.6 * start_error, (start_error, res.feature_error)


def test_whitened_global_prior_and_sgd_variants_run(backbone, db, photo):
    short = replace(recipes.InversionSettings(), iters=12)
    res = recipes.invert(backbone, photo, whiten=True, settings=short, db=db)
    glob = recipes.invert(backbone, photo, settings=replace(short, patch_mode="global"), db=db)
    sgd = recipes.invert(backbone, photo, settings=replace(short, optimizer="sgd", param="pixel"),
                     db=db)
    for r in (res, glob, sgd):
        assert torch.isfinite(r.image).all() and 0 < r.relative_l2 < 1.5


def test_same_seed_same_result_and_cancel(backbone, db, photo):
    short = replace(recipes.InversionSettings(), iters=5)
    a = recipes.invert(backbone, photo, init="rand", settings=short, db=db, seed=7)
    b = recipes.invert(backbone, photo, init="rand", settings=short, db=db, seed=7)
    assert torch.equal(a.image, b.image)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        recipes.invert(backbone, photo, settings=short, db=db, cancel=stop)


def test_bad_choices_are_input_errors(backbone, photo):
    with pytest.raises(InputError, match="prior"):
        recipes.invert(backbone, photo, prior="fancy")
    with pytest.raises(InputError, match="init"):
        recipes.invert(backbone, photo, init="zeros")


# ------------------------------------------------------------------ class visualisation

LADYBUG = 301


def test_ladybug_is_recognised_and_survives_blur_and_resampling(backbone):
    """Every loss a photo goes through (blur, three resampling filters, JPEG) keeps it."""
    res = recipes.visualize(backbone, LADYBUG, seed=0)
    assert res.top1 == "ladybug"
    assert res.prob >= 0.9
    probs = robustness(backbone, res.image, res.index)
    assert min(probs.values()) >= 0.5, probs


def test_plain_pixel_ascent_is_adversarial_and_fails_the_robustness_check(backbone):
    """The check above can fail: unregularised pixel ascent fools the net but not a blur."""
    noisy = replace(recipes.VisualizationSettings(), param="pixel", robust=False, iters=40, lr=0.02)
    res = recipes.visualize(backbone, LADYBUG, settings=noisy, seed=0)
    assert res.prob >= 0.9
    probs = robustness(backbone, res.image, res.index)
    assert min(probs["blur 1px"], probs["2x bicubic"]) < 0.5, probs


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


def test_masked_visualisation_weighs_the_whole_head_only_through_a_style_pathway(backbone, photo):
    """`whole` adds the class under the network's head without the style's m7 (the m5 cells
    kept): through a pathway it raises that score; with no pathway it is the class score
    already there, so it changes nothing."""
    from stylefill.backbones import Masks
    from stylefill.masks import cells_under

    selection = torch.zeros(1, 1, 224, 224)
    selection[..., 56:168, 56:168] = 1
    m5 = cells_under(selection[0, 0].numpy(), backbone.map_size(224), 1)
    with torch.no_grad():
        units = backbone(photo).fc7.shape[-1]
    m7 = (torch.rand(units, generator=torch.Generator().manual_seed(0)) < 0.2).float() / 0.8

    def fill(masks: Masks, whole: float) -> torch.Tensor:
        return recipes.visualize_masked(backbone, 301, photo, selection, photo, masks=masks,
                                        regularisation=recipes.Regularisation(), prior_sources=None,
                                        iters=12, lr=0.05, seed=0, whole=whole)

    def whole_score(image: torch.Tensor) -> float:
        with torch.no_grad():
            return float(backbone(image, Masks(m5=m5)).logits[0, 301])

    plain = Masks(m5=m5)
    assert torch.equal(fill(plain, 0.0), fill(plain, 1.0))
    styled = Masks(m5=m5, m7=m7)
    without, with_whole = whole_score(fill(styled, 0.0)), whole_score(fill(styled, 1.0))
    print("the class under the whole head, without / with `whole`:", without, with_whole)
    assert with_whole > without, (without, with_whole)


def test_an_object_drawn_on_its_own_canvas_has_the_spectrum_it_is_given(backbone, photo):
    """`visualize_object`: the class on a canvas of its own, any height and width, its Fourier
    amplitude fixed at the one given (insert gives the photo's around the selection): the
    network reads the class, the canvas keeps the given photo's high-frequency share and
    slope (within 0.03 and 0.15), and a seed gives the same picture."""
    from stylefill.optvis.param import amplitude_of
    from stylefill.photo_stats import spectrum_stats

    height, width = 72, 120
    crop = photo[..., 40:40 + height, 20:20 + width]
    amplitude = amplitude_of(crop)

    def draw(seed: int) -> torch.Tensor:
        drawn = recipes.visualize_object(backbone, LADYBUG, (height, width), amplitude, masks=None,
                                         iters=40, lr=0.05, seed=seed, max_gain=2.5)
        assert drawn.alpha is None  # no backdrop, no alpha: the canvas is the object's own
        return drawn.image

    drawn = draw(0)
    assert drawn.shape == (1, 3, height, width)
    with torch.no_grad():
        assert backbone(drawn).logits.softmax(-1)[0, LADYBUG] >= 0.5
    given, got = (spectrum_stats(x[0].permute(1, 2, 0).numpy()) for x in (crop, drawn))
    assert abs(got.high_frequency_share - given.high_frequency_share) < 0.03, (got, given)
    assert abs(got.slope - given.slope) < 0.15, (got, given)
    assert torch.equal(drawn, draw(0)) and not torch.equal(drawn, draw(1))
    with pytest.raises(ValueError, match="does not fit"):
        recipes.visualize_object(backbone, LADYBUG, (width, height), amplitude, masks=None,
                                 iters=1, lr=0.05, seed=0, max_gain=2.5)


def test_an_object_drawn_from_a_start_image_keeps_its_layout(backbone, photo):
    """`visualize_object` from a `start` image (a style's own, in insert): the canvas takes the
    start's phase and mean colour, resized to the canvas, so after the steps that draw the class
    it still follows the start's layout (its grey levels correlate with the start's, more than a
    canvas drawn from noise does) and the network reads the class."""
    from stylefill.optvis.param import amplitude_of

    height, width = 96, 128
    amplitude = amplitude_of(photo[..., :height, :width])
    start = photo[..., 20:188, :]  # 168 x 224: 1.75x the canvas, resized to it (100 steps: a
    # real photo's phase takes longer to become the class than noise does)

    def grey(x: torch.Tensor) -> torch.Tensor:
        g = x.mean(1).flatten()
        return (g - g.mean()) / g.std()

    def draw(first: torch.Tensor | None) -> torch.Tensor:
        return recipes.visualize_object(backbone, LADYBUG, (height, width), amplitude, masks=None,
                                        iters=100, lr=0.05, seed=0, max_gain=2.5, start=first).image

    small = torch.nn.functional.interpolate(start, size=(height, width), mode="bilinear",
                                            antialias=True)
    from_start, from_noise = draw(start), draw(None)
    along = float((grey(from_start) * grey(small)).mean())
    apart = float((grey(from_noise) * grey(small)).mean())
    assert along > 0.3 and along > apart + 0.2, (along, apart)
    with torch.no_grad():
        assert backbone(from_start).logits.softmax(-1)[0, LADYBUG] >= 0.5


def test_an_object_cut_out_of_its_canvas_keeps_more_of_its_class_than_a_blob(backbone, photo):
    """`cut_out`: a ladybug drawn on a canvas of its own, placed on the cat where insert would
    put it (the selection half the crop, the class read under its m5 cells), is cut out by an
    alpha learned alone. The alpha gives part of the canvas back to the photo (its mean falls
    from the start to about `share`), the result is exactly the canvas over the photo through
    it, the class keeps more evidence than under a centred blob of the same area, and a seed
    gives the same outline."""
    from stylefill.backbones import Masks
    from stylefill.masks import cells_under
    from stylefill.optvis.param import Overlay, Still, amplitude_of

    size, (y, x) = 112, (56, 56)
    crop = photo[..., y:y + size, x:x + size]
    drawn = recipes.visualize_object(backbone, LADYBUG, (size, size), amplitude_of(crop), masks=None,
                                     iters=60, lr=0.05, seed=0, max_gain=2.5).image
    selection = torch.zeros(1, 1, 224, 224)
    selection[..., y:y + size, x:x + size] = 1
    masks = Masks(m5=cells_under(selection[0, 0].numpy(), backbone.map_size(224), 1))

    def cut(seed: int) -> recipes.DrawnObject:
        return recipes.cut_out(backbone, LADYBUG, drawn, photo, selection, (y, x), masks=masks,
                               share=0.5, iters=40, seed=seed)

    def log_p(box: torch.Tensor) -> float:
        placed = photo.clone()
        placed[..., y:y + size, x:x + size] = box
        with torch.no_grad():
            return float(backbone(placed, masks).logits.log_softmax(-1)[0, LADYBUG])

    res = cut(0)
    with torch.no_grad():
        start = float(Overlay(Still(drawn), crop, radius=1.0).alpha().mean())
        blobs = [Overlay(Still(drawn), crop, radius=r / 100) for r in range(40, 120)]
        blob = min(blobs, key=lambda b: abs(float(b.alpha().mean()) - float(res.alpha.mean())))
        cut_p, blob_p = log_p(res.image), log_p(blob.image())
    mean = float(res.alpha.mean())
    print("alpha mean", start, "->", mean, "log p: cut", cut_p, "blob", blob_p)
    assert res.image.shape == drawn.shape and res.alpha.shape == (1, 1, size, size)
    assert abs(mean - 0.5) < 0.1 and mean < start - 0.1, (start, mean)
    assert torch.allclose(res.image, res.alpha * drawn + (1 - res.alpha) * crop, atol=1e-6)
    assert cut_p > blob_p + 0.5, (cut_p, blob_p)
    assert torch.equal(res.alpha, cut(0).alpha)
