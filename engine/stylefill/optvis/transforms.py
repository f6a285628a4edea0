"""Random view changes applied to the image before the network sees it (as in Lucid/Lucent).

Each transform is a callable (x, generator) -> x; `compose` chains a list. Drawing from an
explicit generator keeps runs reproducible with a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

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


def compose(transforms: Sequence[Transform]) -> Transform:
    def fn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for t in transforms:
            x = t(x, gen)
        return x

    return fn


def robust(scale: float = 1.0) -> list[Transform]:
    """Small jitter, scale and rotation each step: Lucent's standard set, scaled to the image."""
    j = max(1, round(8 * scale))
    return [
        pad(max(1, round(12 * scale))),
        jitter(j),
        random_scale([1 + (i - 5) / 50.0 for i in range(11)]),
        random_rotate(list(range(-10, 11)) + 5 * [0]),
        jitter(max(1, round(4 * scale))),
    ]
