"""Image parameterisations and the random view transforms of the render loop."""

from __future__ import annotations

import pytest
import torch

from stylefill.optvis import transforms as tf
from stylefill.optvis.param import FourierParam, PixelParam, make_param


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
    with pytest.raises(ValueError, match="pixel, fourier"):
        make_param("wavelet", init)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


RANDOM_TRANSFORMS = {
    "jitter": tf.jitter(8),
    "random_scale": tf.random_scale([0.9, 0.95, 1.05, 1.1]),
    "random_rotate": tf.random_rotate(list(range(-10, 11))),
    "robust": tf.compose(tf.robust()),
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
