"""Image parameterisations and the random view transforms of the render loop."""

from __future__ import annotations

import pytest
import torch

from stylefill.optvis import transforms as tf
from stylefill.optvis.param import (
    FourierParam,
    LightMatched,
    MagnitudeParam,
    MaskedParam,
    Overlay,
    PixelParam,
    amplitude_of,
    luminance,
    make_param,
    photo_amplitude,
    start_noise,
)
from stylefill.photo_stats import spectrum_stats


@pytest.mark.parametrize("shape", [(224, 224), (64, 48), (33, 47)])
def test_fourier_param_starts_at_its_init(photo, shape):
    """The k-NN init must survive the change of basis (even and odd sizes)."""
    init = torch.nn.functional.interpolate(photo, size=shape, mode="area").clamp(0.01, 0.99)
    param = FourierParam(init)
    image = param.image().detach()
    assert image.shape == init.shape
    assert float((image - init).abs().max()) < 1e-4
    assert param.parameters()[0].requires_grad


def test_fourier_param_is_differentiable(photo):
    param = FourierParam(torch.nn.functional.interpolate(photo, size=32, mode="area"))
    param.image().mean().backward()
    grad = param.parameters()[0].grad
    assert grad is not None and float(grad.abs().sum()) > 0


def test_pixel_param_project_clamps_into_range():
    init = torch.linspace(-0.5, 1.5, 3 * 4 * 5).reshape(1, 3, 4, 5)
    param = PixelParam(init)
    start = param.image().detach()
    assert float(start.min()) == 0.0 and float(start.max()) == 1.0
    with torch.no_grad():
        param.x.add_(torch.linspace(-2, 2, 60).reshape(1, 3, 4, 5))
    assert float(param.x.detach().min()) < 0.0 < 1.0 < float(param.x.detach().max())
    param.project()
    x = param.image()
    assert x.requires_grad and param.parameters()[0] is x
    assert float(x.detach().min()) >= 0.0 and float(x.detach().max()) <= 1.0


def test_make_param_kinds():
    init = torch.full((1, 3, 8, 8), 0.5)
    assert isinstance(make_param("pixel", init), PixelParam)
    assert isinstance(make_param("fourier", init), FourierParam)
    assert isinstance(make_param("maco", init), MagnitudeParam)
    with pytest.raises(ValueError, match="pixel, fourier, maco"):
        make_param("wavelet", init)


def _stats(image: torch.Tensor):
    return spectrum_stats(image[0].permute(1, 2, 0).detach().numpy())


def test_the_photos_mean_spectrum_makes_a_photo_like_image_from_any_phase():
    """MACO's magnitude, from the packaged photos: whatever the phase, the image measures as
    photos do (share above 0.25 cycles/px 0.2-0.5, slope 1.0-2.0), where the Fourier basis's
    noise start is almost flat; no grid of axis lines from the photos' edges either."""
    amplitude = photo_amplitude(224)
    assert amplitude.shape == (3, 224, 113) and float(amplitude[:, 0, 0].abs().max()) == 0.0
    for seed in range(3):
        stats = _stats(MagnitudeParam(start_noise((1, 3, 224, 224), seed, 0.01)).image())
        assert 0.2 <= stats.high_frequency_share <= 0.5 and 1.0 <= stats.slope <= 2.0, stats
    noise = _stats(FourierParam(start_noise((1, 3, 224, 224), 0, 0.01)).image())
    assert noise.slope < 0.5
    axis = amplitude[:, 1:20, 0].mean() / amplitude[:, 1:20, 1:3].mean()
    assert float(axis) < 1.5


def test_maco_keeps_its_amplitude_while_the_phase_changes(photo):
    """Only phase and mean colour are free: after any change of phase the spectrum is the
    given one (exactly, before the sigmoid), and gradients reach the phase."""
    amplitude = amplitude_of(photo)
    param = MagnitudeParam(torch.full((1, 3, 224, 224), 0.5), amplitude)
    param.image().std().backward()
    assert float(param.phase.grad.abs().sum()) > 0
    with torch.no_grad():
        param.phase.add_(torch.randn(param.phase.shape, generator=_gen(1)))
    spectrum = torch.polar(param.amplitude.expand_as(param.phase), param.phase)
    z = torch.fft.irfft2(spectrum, s=(224, 224), norm="ortho")
    got = torch.fft.rfft2(z, norm="ortho").abs()[0]
    inner = (slice(None), slice(1, -1), slice(1, -1))  # Hermitian edge bins are folded by irfft
    torch.testing.assert_close(got[inner], amplitude[inner], atol=1e-4, rtol=1e-3)


def test_maco_fill_is_placed_in_its_box_and_needs_a_square_without_amplitude(photo):
    back = torch.zeros(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:30, 20:44] = 1
    inner = MagnitudeParam(torch.rand(1, 3, 20, 24, generator=_gen(0)),
                           amplitude_of(torch.rand(2, 3, 20, 24, generator=_gen(1))))
    image = MaskedParam(inner, back, mask, offset=(10, 20)).image()
    torch.testing.assert_close(image[..., 10:30, 20:44], inner.image())
    assert float(image[..., :10, :].abs().max()) == 0.0 and float(image[..., :, 44:].abs().max()) == 0.0
    with pytest.raises(ValueError, match="square"):
        MagnitudeParam(torch.rand(1, 3, 20, 24))


def test_amplitude_of_strips_one_to_three_pixels_high_is_finite():
    """A selection 1-3 px high at the network's scale (a thin strip) gives a canvas that thin:
    a Hann window of 2 samples is all zeros, so the window is flat there, never NaN."""
    for h in (1, 2, 3):
        amplitude = amplitude_of(torch.rand(2, 3, h, 40, generator=_gen(h)))
        assert amplitude.shape == (3, h, 21) and bool(torch.isfinite(amplitude).all())
        assert float(amplitude.sum()) > 0


def test_degrade_blurs_or_resamples_some_views(photo):
    """A photo's losses among the views: some pass untouched, the others lose fine detail,
    and each is differentiable and of the input's size."""
    x = photo.clone().requires_grad_(True)
    degrade = tf.degrade()
    views = [degrade(x, _gen(seed)) for seed in range(12)]
    untouched = sum(bool(torch.equal(v, x)) for v in views)
    assert 0 < untouched < 12
    changed = [v for v in views if not torch.equal(v, x)]
    assert all(v.shape == x.shape for v in views)
    assert all(_stats(v).high_frequency_share < _stats(photo).high_frequency_share for v in changed)
    changed[0].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


RANDOM_TRANSFORMS = {
    "jitter": tf.jitter(8),
    "random_scale": tf.random_scale([0.9, 0.95, 1.05, 1.1]),
    "random_rotate": tf.random_rotate(list(range(-10, 11))),
    "robust": tf.compose(tf.robust()),
    "degraded robust": tf.compose(tf.robust(degraded=True)),
}


@pytest.mark.parametrize("name", sorted(RANDOM_TRANSFORMS))
def test_random_transforms_follow_the_seed(photo, name):
    """Same seed, same view (reproducible runs); different seeds, different views."""
    t = RANDOM_TRANSFORMS[name]
    torch.testing.assert_close(t(photo, _gen(5)), t(photo, _gen(5)), rtol=0, atol=0)
    views = [t(photo, _gen(seed)) for seed in range(6)]
    distinct = {(v.shape, round(float(v.sum()), 3)) for v in views}
    assert len(distinct) > 1


def test_pad_and_compose(photo):
    padded = tf.pad(3, value=0.25)(photo, _gen(0))
    assert padded.shape == (1, 3, 230, 230)
    assert bool((padded[..., :3, :] == 0.25).all()) and bool((padded[..., -3:] == 0.25).all())
    torch.testing.assert_close(padded[..., 3:-3, 3:-3], photo)
    both = tf.compose([tf.pad(4), tf.jitter(9)])
    out = both(photo, _gen(1))
    assert out.shape == (1, 3, 224, 224)
    assert tf.compose([])(photo, _gen(0)) is photo


def test_jitter_is_a_shifted_crop(photo):
    out = tf.jitter(5)(photo, _gen(2))
    assert out.shape == (1, 3, 220, 220)
    shifts = [(dy, dx) for dy in range(5) for dx in range(5)
              if torch.equal(photo[..., dy : dy + 220, dx : dx + 220], out)]
    assert len(shifts) == 1


def test_rotate_by_zero_is_identity(photo):
    torch.testing.assert_close(tf.random_rotate([0])(photo, _gen(0)), photo, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size, scale", [(224, 1.0), (448, 2.0), (112, 0.5)])
def test_robust_views_keep_the_image_whole(size, scale):
    """Every robust view is a 3-channel square close to the input size, values in [0, 1]."""
    x = torch.rand(2, 3, size, size, generator=_gen(0))
    view = tf.compose(tf.robust(scale))
    for seed in range(4):
        out = view(x, _gen(seed))
        assert out.shape[:2] == (2, 3) and out.shape[-1] == out.shape[-2]
        assert 0.85 * size <= out.shape[-1] <= 1.2 * size
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_masked_param_mirrors_its_bands_from_the_composite():
    """A context crop that leaves the photo: its bands show the composite reflected (as the
    photo's crop will, once the fill is in), so the fill cannot hide an object there."""
    back = torch.rand(1, 3, 32, 32, generator=_gen(2))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 16:24, 8:20] = 1
    inner = PixelParam(torch.rand(1, 3, 32, 32, generator=_gen(3)))
    image = MaskedParam(inner, back, mask, mirror=(0, 6, 4, 0)).image()
    kept = image[..., :26, 4:]
    torch.testing.assert_close(image[..., 26:, 4:], kept.flip(-2)[..., 1:7, :])
    torch.testing.assert_close(image[..., :26, :4], kept.flip(-1)[..., -5:-1])
    torch.testing.assert_close(kept[..., 16:24, 4:16], inner.image()[..., 16:24, 8:20])
    image[..., 26:, :].sum().backward()  # a band's pixels are the fill's reflection
    grad = inner.parameters()[0].grad
    assert grad[..., 19:24, 8:20].abs().min() > 0 and grad[..., 24:, :].abs().sum() == 0


def test_masked_param_says_which_pixels_it_can_change():
    """`changing()`: the mask and the mirror bands, which reflect it; exactly the pixels whose
    value moves when the parameters do."""
    back = torch.rand(1, 3, 32, 32, generator=_gen(4))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 16:24, 8:20] = 1
    inner = PixelParam(torch.rand(1, 3, 32, 32, generator=_gen(5)))
    param = MaskedParam(inner, back, mask, mirror=(0, 6, 4, 0))
    changing = param.changing()[0, 0]
    assert changing.dtype == torch.bool and changing.shape == (32, 32)
    expected = torch.zeros(32, 32, dtype=torch.bool)
    expected[16:24, 8:20] = expected[26:, :] = expected[:, :4] = True
    assert torch.equal(changing, expected)
    before = param.image().detach()
    with torch.no_grad():
        inner.parameters()[0].add_(0.5)
    moved = (param.image().detach() != before).any(1)[0]
    assert not (moved & ~changing).any()
    assert torch.equal(MaskedParam(inner, back, mask).changing()[0, 0], mask[0, 0] > 0)


def _steps_towards(param, target: torch.Tensor, iters: int, stop: int) -> None:
    """`stop` of `iters` Adam steps of `param` towards `target`, following the render loop."""
    opt = torch.optim.Adam(param.parameters(), lr=0.1)
    for step in range(stop):
        param.at_step(step, iters)
        opt.zero_grad()
        (param.image() - target).pow(2).mean().backward()
        opt.step()


def test_a_coarse_to_fine_fourier_param_changes_only_coarse_detail_first(photo):
    """Early steps may move frequencies up to the cutoff only (of the signal under the
    sigmoid, which is linear in the spectrum); after the ramp every one is free."""
    init = torch.nn.functional.interpolate(photo, size=64, mode="area").clamp(0.01, 0.99)
    target = start_noise((1, 3, 64, 64), 0, 0.3)

    def change(param: FourierParam) -> torch.Tensor:
        signal = torch.logit(param.image().detach()) - torch.logit(init)
        return torch.fft.rfft2(signal).abs().mean(dim=(0, 1))

    coarse = FourierParam(init, coarse=0.5, coarse_start=1 / 16)
    freqs = coarse.freqs
    _steps_towards(coarse, target, iters=40, stop=5)
    cutoff = (1 / 16) * 8 ** (4 / 20)   # the cutoff of step 4 of a 20-step ramp
    assert float(change(coarse)[freqs > cutoff * 1.01].max()) < 1e-2
    assert float(change(coarse)[freqs <= cutoff].mean()) > 1.0
    _steps_towards(coarse, target, iters=40, stop=40)
    coarse.at_step(40, 40)
    assert float(change(coarse)[freqs > 0.4].mean()) > 1.0
    plain = FourierParam(init)
    _steps_towards(plain, target, iters=40, stop=5)
    assert float(change(plain)[freqs > 0.4].mean()) > 1.0


def test_a_light_matched_param_takes_the_target_luminance_under_its_weight(photo):
    init = torch.nn.functional.interpolate(photo, size=32, mode="area") * 0.5 + 0.1
    weight = torch.zeros(1, 1, 32, 32)
    weight[..., 8:24, 8:24] = 1.0

    def mean_luma(image: torch.Tensor) -> float:
        return float((luminance(image) * weight).sum() / weight.sum())

    before = mean_luma(init)
    full = LightMatched(FourierParam(init), weight, before + 0.2, 1.0)
    assert mean_luma(full.image().detach()) == pytest.approx(before + 0.2, abs=1e-3)
    half = LightMatched(FourierParam(init), weight, before + 0.2, 0.5)
    assert mean_luma(half.image().detach()) == pytest.approx(before + 0.1, abs=1e-3)
    half.image().sum().backward()
    assert float(half.parameters()[0].grad.abs().sum()) > 0


def test_overlay_draws_over_its_backdrop_through_a_smooth_alpha_of_its_own():
    """Distill's RGBA: alpha * inner + (1 - alpha) * backdrop, the alpha a centred blob at the
    start (the object in the middle, the backdrop at the corners) and optimised with the image;
    the backdrop never moves."""
    backdrop = torch.rand(1, 3, 40, 56, generator=_gen(0))
    inner = PixelParam(torch.full((1, 3, 40, 56), 0.5))
    param = Overlay(inner, backdrop, cell=8)
    alpha = param.alpha().detach()
    assert alpha.shape == (1, 1, 40, 56)
    assert float(alpha[0, 0, 20, 28]) > 0.9 and float(alpha[0, 0, 0, 0]) < 0.2
    torch.testing.assert_close(param.image(), alpha * 0.5 + (1 - alpha) * backdrop)
    assert param.logits.shape == (1, 1, 5, 7) and len(param.parameters()) == 2
    param.image().mean().backward()
    assert all(float(t.grad.abs().sum()) > 0 for t in param.parameters())
    assert backdrop.grad is None
