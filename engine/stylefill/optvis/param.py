"""Image parameterisations: what the optimiser actually changes, and how it becomes an image.

`pixel` is the paper's choice (pixels, kept in range after each step). `fourier` is Lucid's
decorrelated-colour Fourier basis with a 1/f^p spectrum scale, which makes plain gradient steps
favour natural, low-frequency images. `maco` (Fel et al., 2023) fixes the amplitude spectrum at
real photos' and optimises the phase only. All can start from a given image (e.g. the k-NN
init).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..photo_stats import LUMA
from ..sample_photos import packaged_photos

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

    def at_step(self, step: int, iters: int) -> None:
        """Called before each step of `iters`: a parameterisation that changes over the run
        (coarse to fine) follows it here (nothing by default)."""
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
    """Lucid's Fourier basis. With `coarse` > 0 it changes the image coarse to fine: over the
    first `coarse` share of the run, only frequencies up to a cutoff may differ from the start
    image's, the cutoff growing geometrically from `coarse_start` cycles/px to Nyquist, so the
    object's layout is drawn before its texture. The cutoff is a hard ring: a frequency is
    either frozen at the start's value or free, never shown scaled (which would jump when the
    ring passes it)."""

    def __init__(self, init: torch.Tensor, decay_power: float = 1.0, coarse: float = 0.0,
                 coarse_start: float = 1 / 32):
        _, _, h, w = init.shape
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        self.freqs = (fx * fx + fy * fy).sqrt().to(init)
        self.scale = 1.0 / self.freqs.clamp_min(1.0 / max(h, w)) ** decay_power
        self.size = (h, w)
        # Exact inverse of `image()`: logit -> undo colour mixing -> spectrum / scale.
        z = torch.logit(init.detach().clamp(1e-3, 1 - 1e-3))
        z = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_COLOR).to(init), z)
        spectrum = torch.fft.rfft2(z * 4.0, norm="ortho") / self.scale
        self.spectrum = torch.view_as_real(spectrum).contiguous().requires_grad_(True)
        self.coarse, self.coarse_start = coarse, coarse_start
        self.start = self.spectrum.detach().clone() if coarse else None  # what frozen ones show
        self.free: torch.Tensor | None = None  # (H, W // 2 + 1, 1) bool while coarse

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def at_step(self, step: int, iters: int) -> None:
        ramp = self.coarse * iters
        if step >= ramp:
            self.free = None
            return
        cutoff = self.coarse_start * (0.5 / self.coarse_start) ** (step / ramp)
        self.free = (self.freqs <= cutoff)[..., None]

    def image(self) -> torch.Tensor:
        spectrum = self.spectrum if self.free is None else torch.where(self.free, self.spectrum, self.start)
        spectrum = torch.view_as_complex(spectrum.contiguous()) * self.scale
        z = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0
        z = torch.einsum("ij,bjhw->bihw", _COLOR.to(z), z)
        return torch.sigmoid(z)


def _hann(n: int) -> torch.Tensor:
    """A symmetric Hann window of `n` samples; flat below 3, where Hann's would be all zeros
    (a selection 2 px high at the network's scale)."""
    return torch.hann_window(n, periodic=False) if n > 2 else torch.ones(n)


def amplitude_of(images: torch.Tensor) -> torch.Tensor:
    """The mean Fourier amplitude of (N, 3, H, W) images in [0, 1], in the decorrelated colour
    space, (3, H, W // 2 + 1), DC zeroed. Each image is Hann-windowed first: unwindowed, its
    edges add a cross of energy on the axes that a phase-only optimiser turns into a grid of
    lines; dividing by the window's RMS keeps the images' contrast."""
    h, w = images.shape[-2:]
    window = torch.outer(_hann(h), _hann(w))
    window = (window / window.pow(2).mean().sqrt()).to(images)
    centred = images - images.mean(dim=(-2, -1), keepdim=True)
    z = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_COLOR).to(images), centred) * window
    amplitude = torch.fft.rfft2(z, norm="ortho").abs().mean(dim=0)
    amplitude[:, 0, 0] = 0.0
    return amplitude


@lru_cache(maxsize=4)
def photo_amplitude(size: int) -> torch.Tensor:
    """Real photos' mean amplitude (`amplitude_of`) at `size` px: MACO's fixed magnitude. From
    the packaged photos (the embedded database's), each as a whole centre square and as its
    four half-size corner squares, so that both scales of detail count."""
    squares = []
    for photo in packaged_photos().values():
        x = torch.from_numpy(np.array(photo.convert("RGB"))).permute(2, 0, 1).float()[None] / 255.0
        h, w = x.shape[-2:]
        side = min(h, w)
        half = side // 2
        squares.append(x[..., (h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2])
        squares += [x[..., y:y + half, c:c + half] for y in (0, h - half) for c in (0, w - half)]
    return amplitude_of(torch.cat([F.interpolate(q, size=(size, size), mode="area") for q in squares]))


class MagnitudeParam(ImageParam):
    """MACO (Fel et al., 2023): the Fourier amplitude stays fixed, at real photos' mean spectrum
    (`photo_amplitude`) or a given one (e.g. the photo around a selection), and only the phase,
    plus the mean colour, is optimised. Whatever the objective asks, the image keeps a photo's
    balance of coarse and fine detail, so class evidence cannot hide in high-frequency texture.

    Pixels are sigmoid(4 * colour-mixed signal), which is 0.5 + the signal for a photo's usual
    contrast; a start image's phase and mean colour are kept (its amplitude is not)."""

    def __init__(self, init: torch.Tensor, amplitude: torch.Tensor | None = None,
                 max_gain: float = 1.0):
        _, _, h, w = init.shape
        if amplitude is None:
            if h != w:
                raise ValueError(f"the photos' mean spectrum is square, the image is {w}x{h}")
            amplitude = photo_amplitude(h)
        elif amplitude.shape[-2:] != (h, w // 2 + 1):
            raise ValueError(f"amplitude {tuple(amplitude.shape)} does not fit a {w}x{h} image")
        self.amplitude = amplitude.to(init)
        self.size = (h, w)
        z = torch.logit(init.detach().clamp(1e-3, 1 - 1e-3)) / 4.0
        z = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_COLOR).to(init), z)
        mean = z.mean(dim=(-2, -1), keepdim=True)
        self.phase = torch.fft.rfft2(z - mean, norm="ortho").angle().contiguous().requires_grad_(True)
        self.mean = mean.contiguous().requires_grad_(True)
        # Each colour channel's amplitude may grow up to `max_gain` times: the spectrum's shape
        # (and so the photo statistics) stays, its contrast may not (an object is often
        # bolder than what lies around it).
        self.max_log_gain = float(torch.log(torch.tensor(max_gain)))
        self.log_gain = torch.zeros(init.shape[0], 3, 1, 1).to(init).requires_grad_(max_gain > 1.0)

    def parameters(self) -> list[torch.Tensor]:
        return [self.phase, self.mean] + ([self.log_gain] if self.max_log_gain > 0 else [])

    def project(self) -> None:
        with torch.no_grad():
            self.log_gain.clamp_(0.0, self.max_log_gain)

    def image(self) -> torch.Tensor:
        amplitude = self.amplitude * self.log_gain.exp()
        spectrum = torch.polar(amplitude.expand_as(self.phase), self.phase)
        z = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") + self.mean
        return torch.sigmoid(4.0 * torch.einsum("ij,bjhw->bihw", _COLOR.to(z), z))


PARAMETERISATIONS = {"pixel": PixelParam, "fourier": FourierParam, "maco": MagnitudeParam}


def make_param(kind: str, init: torch.Tensor, decay_power: float = 1.0,
               max_gain: float = 1.0) -> ImageParam:
    """A parameterisation by name; `decay_power` sets the Fourier basis's 1/f^p scale,
    `max_gain` how far MACO's contrast may grow."""
    if kind not in PARAMETERISATIONS:
        raise ValueError(f"unknown parameterisation '{kind}'; choose {', '.join(PARAMETERISATIONS)}")
    if kind == "fourier":
        return FourierParam(init, decay_power)
    if kind == "maco":
        return MagnitudeParam(init, max_gain=max_gain)
    return PARAMETERISATIONS[kind](init)


def start_noise(shape: tuple[int, ...], seed: int, std: float) -> torch.Tensor:
    """A start image: mid-grey plus Gaussian noise of `std`, drawn from its own seeded generator."""
    gen = torch.Generator().manual_seed(int(seed))
    return (0.5 + std * torch.randn(shape, generator=gen)).clamp(0, 1)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma (Rec. 601, as `photo_stats` measures it) of (N, 3, H, W) RGB."""
    return sum(float(w) * image[:, i:i + 1] for i, w in enumerate(LUMA))


class LightMatched(ImageParam):
    """`inner`'s image lightened or darkened as a whole, so that its mean luminance under
    `weight` (1, 1, H, W) moves `strength` of the way to `target`: an object drawn in the
    photo's light rather than its own (1 = the same mean luminance as `target`)."""

    def __init__(self, inner: ImageParam, weight: torch.Tensor, target: float, strength: float):
        self.inner, self.target, self.strength = inner, target, strength
        self.weight = weight / weight.sum().clamp_min(1e-6)

    def parameters(self) -> list[torch.Tensor]:
        return self.inner.parameters()

    def image(self) -> torch.Tensor:
        image = self.inner.image()
        mean = (luminance(image) * self.weight).sum(dim=(-3, -2, -1), keepdim=True)
        return (image + self.strength * (self.target - mean)).clamp(0, 1)

    def project(self) -> None:
        self.inner.project()

    def at_step(self, step: int, iters: int) -> None:
        self.inner.at_step(step, iters)


class Still(ImageParam):
    """A fixed image with nothing to optimise: what an `Overlay`'s alpha alone is learned over
    (an object already drawn, cut out of its canvas)."""

    def __init__(self, image: torch.Tensor):
        self.fixed = image.detach()

    def parameters(self) -> list[torch.Tensor]:
        return []

    def image(self) -> torch.Tensor:
        return self.fixed


class Overlay(ImageParam):
    """`inner` drawn over the fixed `backdrop` (1, 3, h, w) through an alpha of its own
    (Distill's RGBA parameterisation): the object takes some pixels, the backdrop shows in the
    rest, and the alpha is the object's outline. The alpha is smooth (one logit per `cell` px,
    upsampled bilinearly, through a sigmoid) and starts as a centred blob out to `radius` of
    the half-size, so the object starts in the middle. It moves with the image; an objective on
    it (`objectives.coverage`) says how much of the canvas the object takes."""

    def __init__(self, inner: ImageParam, backdrop: torch.Tensor, cell: int = 8,
                 radius: float = 0.75):
        self.inner, self.backdrop = inner, backdrop.detach()
        self.size = tuple(backdrop.shape[-2:])
        rows, cols = (max(2, -(-n // cell)) for n in self.size)
        y = (torch.arange(rows) + 0.5) / rows * 2 - 1
        x = (torch.arange(cols) + 0.5) / cols * 2 - 1
        distance = (y[:, None] ** 2 + x[None, :] ** 2).sqrt()
        self.logits = (4 * (radius - distance))[None, None].to(backdrop).requires_grad_(True)

    def alpha(self) -> torch.Tensor:
        """(1, 1, h, w) in (0, 1): 1 where the object is."""
        return torch.sigmoid(F.interpolate(self.logits, size=self.size, mode="bilinear",
                                           align_corners=False))

    def parameters(self) -> list[torch.Tensor]:
        return [*self.inner.parameters(), self.logits]

    def image(self) -> torch.Tensor:
        alpha = self.alpha()
        return alpha * self.inner.image() + (1 - alpha) * self.backdrop

    def project(self) -> None:
        self.inner.project()

    def at_step(self, step: int, iters: int) -> None:
        self.inner.at_step(step, iters)


class MaskedParam(ImageParam):
    """Only the pixels under `mask` come from `inner`; the rest is the fixed `background`.
    An `inner` image smaller than the background covers the box at `offset` (the mask must
    be 0 outside it).

    The network sees the whole composite (the object in its context) while gradients reach
    the selection only, whatever the inner parameterisation (pixel or Fourier).
    `mirror` (top, bottom, left, right) are bands of the view that mirror the rest, as a
    context crop that leaves the photo does: they show the composite reflected, so an object
    drawn near the photo's edge is mirrored there as it will be in the photo, and nothing can
    be drawn in them alone.
    """

    def __init__(self, inner: ImageParam, background: torch.Tensor, mask: torch.Tensor,
                 offset: tuple[int, int] = (0, 0), mirror: tuple[int, int, int, int] = (0, 0, 0, 0)):
        self.inner = inner
        self.background = background.detach()
        self.mask = mask.detach().to(background)
        self.offset = offset  # (y, x) of an `inner` smaller than the background
        self.mirror = mirror

    def parameters(self) -> list[torch.Tensor]:
        return self.inner.parameters()

    def image(self) -> torch.Tensor:
        inner = self.inner.image()
        (h, w), (height, width) = inner.shape[-2:], self.background.shape[-2:]
        if (h, w) != (height, width):
            y, x = self.offset
            inner = F.pad(inner, [x, width - x - w, y, height - y - h])
        image = self.background * (1 - self.mask) + inner * self.mask
        top, bottom, left, right = self.mirror
        if not any(self.mirror):
            return image
        kept = image[..., top:height - bottom, left:width - right]
        return F.pad(kept, [left, right, top, bottom], mode="reflect")

    def changing(self) -> torch.Tensor:
        """(1, 1, H, W) bool: the pixels of `image()` the parameters can change (the mask, and
        the mirror bands, which reflect it)."""
        region = self.mask > 0
        top, bottom, left, right = self.mirror
        height, width = region.shape[-2:]
        region[..., :top, :] = region[..., height - bottom:, :] = True
        region[..., :, :left] = region[..., :, width - right:] = True
        return region

    def project(self) -> None:
        self.inner.project()

    def at_step(self, step: int, iters: int) -> None:
        self.inner.at_step(step, iters)
