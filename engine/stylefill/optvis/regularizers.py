"""Image priors as plain differentiable functions; per-pixel means so weights do not depend on size."""

from __future__ import annotations

import torch


def alpha_norm(x: torch.Tensor, alpha: float = 6.0) -> torch.Tensor:
    """Mean |x - channel mean|^alpha of an image in [0, 1] (paper: Ra * ||I||_a^a)."""
    centred = (x - x.mean(dim=(-2, -1), keepdim=True)) * 2.0
    return centred.abs().pow(alpha).mean()


def squared_gradient(x: torch.Tensor) -> torch.Tensor:
    """dx^2 + dy^2 per pixel with forward differences, (..., H - 1, W - 1): what TV averages."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return dx.pow(2) + dy.pow(2)


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Mean (dx^2 + dy^2)^(beta/2) over pixels, with forward differences (paper: Rb * TV(I))."""
    sq = squared_gradient(x)
    if beta == 2.0:
        return sq.mean()
    return (sq + 1e-8).pow(beta / 2.0).mean()


def colour_statistics(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Squared distance of each image's per-channel mean and std to (B, 3) targets."""
    got_mean, got_std = x.mean(dim=(-2, -1)), x.std(dim=(-2, -1))
    return (got_mean - mean.to(x)).pow(2).sum() + (got_std - std.to(x)).pow(2).sum()


class Whitening:
    """A per-pixel 3x3 colour ZCA (paper Sec. 5's whitening), scale-preserving.

    Eigenvalues are equalised to their mean rather than to 1, so the regulariser weights
    tuned without whitening stay in the same range with it.
    """

    def __init__(self, mean: torch.Tensor, matrix: torch.Tensor):
        self.mean = mean.reshape(1, 3, 1, 1).float()
        self.matrix = matrix.reshape(3, 3).float()

    @classmethod
    def from_moments(cls, mean: torch.Tensor, cov: torch.Tensor, eps: float = 1e-4) -> Whitening:
        """From the RGB mean (3,) and covariance (3, 3) of pixels in [0, 1]."""
        evals, evecs = torch.linalg.eigh(cov.double())
        scale = (evals.mean() / evals.clamp_min(eps * float(evals.max()))).sqrt()
        return cls(mean, evecs @ torch.diag(scale) @ evecs.T)

    @classmethod
    def fit(cls, pixels: torch.Tensor) -> Whitening:
        """Fit on an (N, 3) array of RGB pixels in [0, 1]."""
        pixels = pixels.double()
        return cls.from_moments(pixels.mean(0), torch.cov(pixels.T))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - self.mean.to(x)
        return torch.einsum("ij,bjhw->bihw", self.matrix.to(x), centred) + self.mean.to(x)
