"""The render loop: continuous steps on the image, alternating with the discrete matching step
of the priors the objective carries. Pure: no printing, no saving; progress and previews go
through `progress`, and `cancel` stops it between steps."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..backbones.base import Backbone, Masks
from ..progress import Cancel, Progress, check, report
from .objectives import Context, Objective
from .param import ImageParam
from .regularizers import Whitening
from .transforms import Transform, compose


@dataclass
class RenderResult:
    image: torch.Tensor           # (1, 3, H, W) in [0, 1], detached
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _lr_factor(step: int, iters: int) -> float:
    """1 for the first half, then a cosine down to 0.1."""
    half = iters // 2
    if step < half:
        return 1.0
    t = (step - half) / max(1, iters - half)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * t))


def _optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """Adam (Lucid's choice) or the paper's momentum SGD; the SGD gradient is scaled to a mean
    absolute value of 1 each step, so `lr` is the typical pixel change, as in mNeuron."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    raise ValueError(f"unknown optimizer '{name}'; choose adam or sgd")


def render(
    backbone: Backbone,
    objective: Objective,
    param: ImageParam,
    *,
    iters: int = 200,
    lr: float = 0.05,
    transforms: Sequence[Transform] = (),
    masks: Masks | None = None,
    whiten: Whitening | None = None,
    optimizer: str = "adam",
    seed: int = 0,
    progress: Progress | None = None,
    stage: str = "optimising",
    cancel: Cancel | None = None,
) -> RenderResult:
    """Minimise `objective` over the image made by `param`.

    The learning rate decays with a cosine over the last half of the run. The priors the
    objective carries get their discrete matching step every `prior.every` steps. Each step
    reports "<stage> step/iters" with the current image (the first of a batch) as preview.
    """
    gen = torch.Generator().manual_seed(int(seed))
    view = compose(transforms)
    masks = masks.to(backbone.device) if masks is not None else None
    params = param.parameters()
    opt = _optimizer(optimizer, params, lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: _lr_factor(i, iters))
    if optimizer == "sgd":
        for p in params:
            p.register_hook(lambda g: g / g.abs().mean().clamp_min(1e-12))
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(iters):
        check(cancel, f"at step {step} of {iters}")
        opt.zero_grad(set_to_none=True)
        param.at_step(step, iters)
        image = param.image()
        reg_image = whiten(image) if whiten is not None else image
        for prior in objective.priors:
            if step % prior.every == 0 or prior.target is None:
                prior.update(reg_image)
        outputs = backbone(view(image, gen), masks, objective.layers)
        loss = objective(Context(image=image, outputs=outputs, reg_image=reg_image, step=step))
        loss.backward()
        opt.step()
        sched.step()
        param.project()
        losses.append(float(loss.detach()))
        report(progress, (step + 1) / iters, f"{stage} {step + 1}/{iters}", image.detach()[:1])
    param.at_step(iters, iters)
    with torch.no_grad():
        final = param.image().detach().clamp(0, 1)
    return RenderResult(image=final, losses=losses, seconds=time.perf_counter() - t0)
