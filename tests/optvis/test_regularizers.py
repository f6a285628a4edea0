"""Regularisers: exact gradients, the values they promise, and the colour whitening."""

from __future__ import annotations

import pytest
import torch

from stylefill.optvis import regularizers
from stylefill.optvis.regularizers import Whitening


def _small_image(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 6, 7, generator=gen, dtype=torch.float64).requires_grad_(True)


@pytest.mark.parametrize("alpha", [2.0, 6.0])
def test_alpha_norm_gradcheck(alpha):
    assert torch.autograd.gradcheck(lambda x: regularizers.alpha_norm(x, alpha), (_small_image(),))


@pytest.mark.parametrize("beta", [2.0, 1.5])
def test_total_variation_gradcheck(beta):
    assert torch.autograd.gradcheck(
        lambda x: regularizers.total_variation(x, beta), (_small_image(1),)
    )


@pytest.mark.parametrize("beta", [2.0, 1.5, 1.0])
def test_total_variation_of_a_constant_image_is_zero(beta):
    """Zero up to the (1e-8)^(beta/2) smoothing floor, and no gradient at all."""
    flat = torch.full((1, 3, 6, 7), 0.3, requires_grad=True)
    tv = regularizers.total_variation(flat, beta)
    assert 0.0 <= float(tv.detach()) <= 1.01 * 1e-8 ** (beta / 2)
    tv.backward()
    assert (flat.grad == 0).all()


def test_total_variation_values():
    """beta=2 is the mean of dx^2 + dy^2 over the pixels that have both neighbours."""
    ramp = torch.arange(7.0).expand(1, 3, 6, 7) * 0.1  # dx = 0.1, dy = 0
    assert float(regularizers.total_variation(ramp, 2.0)) == pytest.approx(0.01)
    assert float(regularizers.total_variation(ramp, 1.0)) == pytest.approx(0.1, rel=1e-4)
    assert float(regularizers.total_variation(ramp.transpose(-1, -2), 2.0)) == pytest.approx(0.01)


def test_alpha_norm_is_shift_invariant_and_scales_as_a_power():
    """Centred per channel: a brightness shift costs nothing, contrast costs |k|^alpha."""
    x = _small_image().detach()
    base = float(regularizers.alpha_norm(x, 6.0))
    assert float(regularizers.alpha_norm(x + 0.2, 6.0)) == pytest.approx(base, rel=1e-9)
    assert float(regularizers.alpha_norm(0.5 * x, 6.0)) == pytest.approx(base / 64, rel=1e-9)
    assert float(regularizers.alpha_norm(torch.full((1, 3, 4, 4), 0.7), 6.0)) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def pixels(photo) -> torch.Tensor:
    """(N, 3) float64 RGB pixels of a real photo."""
    return photo[0].permute(1, 2, 0).reshape(-1, 3).double()


def test_whitening_makes_pixel_covariance_isotropic(pixels):
    """ZCA with eigenvalues equalised to their mean: whitened covariance ~ mean(eig) * I."""
    cov = torch.cov(pixels.T)
    w = Whitening.fit(pixels)
    white = w(pixels.T.reshape(1, 3, -1, 1).float()).reshape(3, -1).double()
    evals = torch.linalg.eigvalsh(torch.cov(white))
    target = torch.linalg.eigvalsh(cov).mean()
    torch.testing.assert_close(evals, target.expand(3), rtol=0.01, atol=0)


def test_whitening_keeps_the_mean_and_is_symmetric(pixels):
    w = Whitening.fit(pixels)
    torch.testing.assert_close(w.mean.flatten().double(), pixels.mean(0), rtol=0, atol=1e-6)
    torch.testing.assert_close(w.matrix, w.matrix.T)
    grey = w.mean.expand(1, 3, 2, 2)
    torch.testing.assert_close(w(grey), grey)


def test_whitening_from_moments_equals_fit(pixels):
    fitted = Whitening.fit(pixels)
    moments = Whitening.from_moments(pixels.mean(0), torch.cov(pixels.T))
    torch.testing.assert_close(moments.matrix, fitted.matrix)
    torch.testing.assert_close(moments.mean, fitted.mean)
    x = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(moments(x), fitted(x))


def test_colour_statistics_gradcheck_and_zero_at_target():
    x = _small_image()
    mean = torch.tensor([[0.2, 0.5, 0.7]], dtype=torch.float64)
    std = torch.tensor([[0.1, 0.3, 0.05]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda i: regularizers.colour_statistics(i, mean, std), (x,))
    assert float(regularizers.colour_statistics(x, mean, std)) > 0.01
    y = x.detach()
    y = (y - y.mean((2, 3), keepdim=True)) / y.std((2, 3), keepdim=True)
    assert float(regularizers.colour_statistics(y * std[..., None, None] + mean[..., None, None],
                                                mean, std)) < 1e-20
