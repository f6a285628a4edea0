"""Image parameterisations: what the optimiser actually changes, and how it becomes an image.

`pixel` is the paper's choice (pixels, kept in range after each step). `fourier` is Lucid's
decorrelated-colour Fourier basis with a 1/f spectrum scale, which makes plain gradient steps
favour natural, low-frequency images. Both can start from a given image (e.g. the k-NN init).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

# Lucid's colour correlation (square root of the ImageNet RGB covariance), normalised.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class ImageParam(ABC):
    """Tensors to optimise plus the function that builds the (1, 3, H, W) image in [0, 1]."""

    @abstractmethod
    def parameters(self) -> list[torch.Tensor]:
        """The leaf tensors the optimiser updates."""

    @abstractmethod
    def image(self) -> torch.Tensor:
        """The current image, differentiable w.r.t. `parameters()`."""

    def project(self) -> None:
        """Called after each optimiser step to keep the parameters valid (nothing by default)."""
        return None


class PixelParam(ImageParam):
    def __init__(self, init: torch.Tensor):
        self.x = init.detach().clone().clamp(0, 1).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.x]

    def image(self) -> torch.Tensor:
        return self.x

    def project(self) -> None:
        with torch.no_grad():
            self.x.clamp_(0, 1)


class FourierParam(ImageParam):
    def __init__(self, init: torch.Tensor, decay_power: float = 1.0):
        _, _, h, w = init.shape
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = (fx * fx + fy * fy).sqrt()
        self.scale = (1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power).to(init)
        self.size = (h, w)
        # Exact inverse of `image()`: logit -> undo colour mixing -> spectrum / scale.
        z = torch.logit(init.detach().clamp(1e-3, 1 - 1e-3))
        z = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_COLOR).to(init), z)
        spectrum = torch.fft.rfft2(z * 4.0, norm="ortho") / self.scale
        self.spectrum = torch.view_as_real(spectrum).contiguous().requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def image(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        z = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0
        z = torch.einsum("ij,bjhw->bihw", _COLOR.to(z), z)
        return torch.sigmoid(z)


PARAMETERISATIONS = {"pixel": PixelParam, "fourier": FourierParam}


def make_param(kind: str, init: torch.Tensor) -> ImageParam:
    if kind not in PARAMETERISATIONS:
        raise ValueError(f"unknown parameterisation '{kind}'; choose {', '.join(PARAMETERISATIONS)}")
    return PARAMETERISATIONS[kind](init)


def start_noise(shape: tuple[int, ...], seed: int, std: float) -> torch.Tensor:
    """A start image: mid-grey plus Gaussian noise of `std`, drawn from its own seeded generator."""
    gen = torch.Generator().manual_seed(int(seed))
    return (0.5 + std * torch.randn(shape, generator=gen)).clamp(0, 1)


class MaskedParam(ImageParam):
    """Only the pixels under `mask` come from `inner`; the rest is the fixed `background`.

    The network sees the whole composite (the object in its context) while gradients reach
    the selection only, whatever the inner parameterisation (pixel or Fourier).
    """

    def __init__(self, inner: ImageParam, background: torch.Tensor, mask: torch.Tensor):
        self.inner = inner
        self.background = background.detach()
        self.mask = mask.detach().to(background)

    def parameters(self) -> list[torch.Tensor]:
        return self.inner.parameters()

    def image(self) -> torch.Tensor:
        return self.background * (1 - self.mask) + self.inner.image() * self.mask

    def project(self) -> None:
        self.inner.project()
