"""Random view changes applied to the image before the network sees it (as in Lucid/Lucent).

Each transform is a callable (x, generator) -> x; `compose` chains a list. Drawing from an
explicit generator keeps runs reproducible with a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _choice(values: Sequence, gen: torch.Generator):
    return values[int(torch.randint(len(values), (1,), generator=gen))]


def pad(width: int, value: float = 0.5) -> Transform:
    return lambda x, gen: F.pad(x, [width] * 4, mode="constant", value=value)


def jitter(d: int) -> Transform:
    """Random crop that shifts the image by up to d - 1 pixels."""

    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        dx, dy = (int(v) for v in torch.randint(d, (2,), generator=gen))
        h, w = x.shape[-2:]
        return x[..., dy : h - d + dy + 1, dx : w - d + dx + 1]

    return fn


def random_scale(scales: Sequence[float]) -> Transform:
    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        s = _choice(scales, gen)
        size = [max(1, round(v * s)) for v in x.shape[-2:]]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    return fn


def random_rotate(degrees: Sequence[float]) -> Transform:
    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = math.radians(_choice(degrees, gen))
        theta = torch.tensor(
            [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
            dtype=x.dtype, device=x.device,
        ).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                             align_corners=False)

    return fn


def random_affine(shift: float, scales: Sequence[float], degrees: Sequence[float]) -> Transform:
    """Jitter, scale and rotation as ONE resampling to the input's own size.

    Same family of views as pad + jitter + scale + rotate + jitter, but the network always sees
    an image of the input size and only one grid_sample runs: the step costs about a bare
    forward+backward (tests/bench/bench_vs_lucent.py).
    """

    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = math.radians(_choice(degrees, gen))
        s = 1.0 / _choice(scales, gen)
        tx, ty = ((torch.rand(2, generator=gen) * 2 - 1) * 2 * shift / x.shape[-1]).tolist()
        theta = torch.tensor(
            [[s * math.cos(a), -s * math.sin(a), tx], [s * math.sin(a), s * math.cos(a), ty]],
            dtype=x.dtype, device=x.device,
        ).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # Outside the image is grey, as with Lucent's constant padding.
        return F.grid_sample(x - 0.5, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False) + 0.5

    return fn


def degrade(chance: float = 0.5, max_blur: float = 1.5, min_scale: float = 0.4) -> Transform:
    """A photo's everyday losses, drawn at random: with probability `chance`, either a Gaussian
    blur (sigma up to `max_blur` px) or a down-then-up resample (to `min_scale`-1 of the size,
    with a bilinear, bicubic or area filter). Evidence that survives these lives where a
    photo's does, in coarse and mid frequencies, not in pixel-level texture."""

    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        draw = torch.rand(3, generator=gen).tolist()
        if draw[0] >= chance:
            return x
        if draw[1] < 0.5:
            return blur(x, 0.3 + draw[2] * (max_blur - 0.3))
        size = x.shape[-2:]
        small = [max(8, round(v * (min_scale + draw[2] * (1 - min_scale)))) for v in size]
        mode = _choice(("bilinear", "bicubic", "area"), gen)
        down = F.interpolate(x, size=small, mode=mode, **_resample_args(mode))
        return F.interpolate(down, size=list(size), mode="bilinear", align_corners=False)

    return fn


def _resample_args(mode: str) -> dict:
    return {} if mode == "area" else {"align_corners": False, "antialias": True}


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of `sigma` px (torchvision's, differentiable)."""
    side = 2 * max(1, math.ceil(2.5 * sigma)) + 1
    return gaussian_blur(x, [side, side], [sigma, sigma])


def compose(transforms: Sequence[Transform]) -> Transform:
    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for t in transforms:
            x = t(x, gen)
        return x

    return fn


def robust(scale: float = 1.0, degraded: bool = False) -> list[Transform]:
    """Lucent's standard set (pad 12, jitter 8, scale 0.9-1.1, rotate +-10 deg, jitter 4) as a
    single affine resampling; `scale` adapts the shifts to the image size. `degraded` adds the
    blur and resampling a photo goes through (`degrade`)."""
    return ([degrade()] if degraded else []) + [
        random_affine(
            shift=12 * scale,
            scales=[1 + (i - 5) / 50.0 for i in range(11)],
            degrees=list(range(-10, 11)) + 5 * [0],
        )
    ]
