"""Objectives are losses (lower is better) that add, subtract and scale: `a + 0.5 * b`.

Each is a function of a `Context`: the image being optimised, the backbone's outputs for its
transformed view, and the image the regularisers see (whitened when asked). An objective
carries the discrete priors its terms need (the patch prior's matching step), and sums keep
them, so the render loop learns them from the objective alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..backbones.base import Backbone, Masks, Outputs
from . import regularizers


@dataclass
class Context:
    image: torch.Tensor       # (B, 3, H, W) in [0, 1], what the user gets
    outputs: Outputs          # network outputs of the transformed image
    reg_image: torch.Tensor   # the image regularisers act on (whitened or not)
    step: int = 0


class Prior(Protocol):
    """A prior with a discrete step the render loop runs every `every` steps (the patch
    prior's matching); `target` is None until its first step."""

    every: int
    target: torch.Tensor | None

    def update(self, image: torch.Tensor) -> None: ...


class Objective:
    """A loss of the render context. It carries what the render loop must do for it: the
    priors whose discrete step it needs and the intermediate layers it reads (`layers`, tapped
    in the forward pass)."""

    def __init__(self, fn: Callable[[Context], torch.Tensor], name: str,
                 priors: Sequence[Prior] = (), layers: Sequence[str] = ()):
        self.fn = fn
        self.name = name
        self.priors = tuple(priors)
        self.layers = tuple(layers)

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.fn(ctx)

    def _derived(self, fn: Callable[[Context], torch.Tensor], name: str,
                 other: Objective | None = None) -> Objective:
        """An objective made from this one (and `other`): it carries what both carry."""
        priors, layers = list(self.priors), list(self.layers)
        if other is not None:
            priors += [p for p in other.priors if p not in priors]
            layers += [n for n in other.layers if n not in layers]
        return Objective(fn, name, priors, layers)

    def __add__(self, other: Objective | float) -> Objective:
        if isinstance(other, (int, float)):
            return self._derived(lambda c: self(c) + other, f"{self.name} + {other}")
        return self._derived(lambda c: self(c) + other(c), f"{self.name} + {other.name}", other)

    __radd__ = __add__  # so sum([a, b]) works

    def __neg__(self) -> Objective:
        return self._derived(lambda c: -self(c), f"-{self.name}")

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)

    def __mul__(self, k: float) -> Objective:
        return self._derived(lambda c: k * self(c), f"{k:g}*{self.name}")

    __rmul__ = __mul__

    def scheduled(self, weight: Callable[[int], float], label: str = "scheduled") -> Objective:
        """This objective times `weight(step)`: e.g. a prior annealed once the data term has
        done most of its work."""
        return self._derived(lambda c: weight(c.step) * self(c), f"{label}({self.name})")

    def __repr__(self) -> str:
        return f"Objective({self.name})"


HEAD_LAYERS = ("pool5", "fc6", "fc7", "logits")


def taps_for(layer: str) -> tuple[str, ...]:
    """The intermediate layers a forward pass must tap to read `layer` (none for the head's)."""
    return () if layer in HEAD_LAYERS else (layer,)


def anneal(iters: int, final: float, start: float = 0.5) -> Callable[[int], float]:
    """1 until `start` of the run, then linearly down to `final` at the last step."""
    first = int(iters * start)

    def weight(step: int) -> float:
        if step < first or final == 1.0:
            return 1.0
        return 1.0 + (final - 1.0) * (step - first) / max(1, iters - 1 - first)

    return weight  # every forward pass computes these


def feature_inversion(target: torch.Tensor, layer: str = "pool5") -> Objective:
    """Paper Eq. 1: relative feature error ||Phi(I) - Phi0||^2 / ||Phi0||^2 at `layer`."""
    target = target.detach()
    norm = target.pow(2).sum().clamp_min(1e-12)

    def fn(c: Context) -> torch.Tensor:
        return (c.outputs.layer(layer) - target).pow(2).sum() / norm

    return Objective(fn, f"invert[{layer}]", layers=taps_for(layer))


def class_score(index: int) -> Objective:
    """Paper Eq. 2: the pre-softmax score of a class, negated so that lower is better."""

    def fn(c: Context) -> torch.Tensor:
        return -c.outputs.logits[:, index].mean()

    return Objective(fn, f"class[{index}]")


def whole_network_class_score(net: Backbone, index: int) -> Objective:
    """A class's score under the whole network, when the pass went through fc masks (a
    style's m7 pathway): the network's head applied again to the pass's pool5 without them,
    at the cost of one matrix product. A preview drawn through a pathway that also leads to
    a neighbouring class (a ladybug style that reads as "ant") then still shows the class."""

    def fn(c: Context) -> torch.Tensor:
        return -net.head(c.outputs.pool5, Masks()).logits[:, index].mean()

    return Objective(fn, f"whole[{index}]")


def alpha_norm(alpha: float = 6.0) -> Objective:
    """||I||_a^a on the (centred) image: keeps pixel values from running away."""
    return Objective(lambda c: regularizers.alpha_norm(c.reg_image, alpha), f"alpha{alpha:g}")


def colour_statistics(mean: torch.Tensor, std: torch.Tensor) -> Objective:
    """Holds the image's per-channel mean and std at given (B, 3) values.

    The patch prior compares patches normalised by the whole image's statistics, so it leaves
    them free, and feature inversion lets them drift (darker, on most photos measured); with
    the k-NN image's statistics as targets, the database predicts them too (docs/tuning.md).
    Acts on the unwhitened image, as its targets are RGB.
    """
    mean, std = mean.detach(), std.detach()
    return Objective(lambda c: regularizers.colour_statistics(c.image, mean, std), "colour-stats")


def change_from(reference: torch.Tensor, where: torch.Tensor) -> Objective:
    """Mean |I - reference| over the pixels `where` (1, 1, H, W) weighs. An L1 cost, so the
    change it lets through is sparse: an inserted object takes the pixels it needs and the
    photo stays elsewhere (docs/tuning.md, seventh round). Acts on the unwhitened image."""
    reference, where = reference.detach(), where.detach()

    def fn(c: Context) -> torch.Tensor:
        w = where.to(c.image)
        change = (c.image - reference.to(c.image)).abs() * w
        return change.sum() / (3 * c.image.shape[0] * w.sum().clamp_min(1e-6))

    return Objective(fn, "change")


def coverage(alpha: Callable[[], torch.Tensor], share: float) -> Objective:
    """|mean alpha - share|: an object drawn through its own alpha (`param.Overlay`) covers
    `share` of its canvas. A target, not a cost: a cost on the alpha's mean shrank objects to a
    third of the canvas and lost the class (docs/tuning.md, fourteenth round)."""
    return Objective(lambda c: (alpha().mean() - share).abs(), "coverage")


def total_variation(beta: float = 2.0) -> Objective:
    """TV^beta: discourages the high-frequency noise that fools a network."""
    return Objective(lambda c: regularizers.total_variation(c.reg_image, beta), f"tv{beta:g}")


def pathway_activation(masks) -> Objective:
    """Mean activation of the open units of a binary code (m5 on pool5, m6/m7 on fc6/fc7),
    negated: drives an image through exactly the pathway the code describes."""
    layers = [(name, m) for name, m in (("pool5", masks.m5), ("fc6", masks.m6), ("fc7", masks.m7))
              if m is not None]

    def fn(c: Context) -> torch.Tensor:
        total = 0.0
        for name, m in layers:
            m = m.to(c.image.device)
            total = total + (c.outputs.layer(name) * m).sum() / (m.sum() * c.image.shape[0]).clamp_min(1)
        return -total

    return Objective(fn, "pathway[" + ",".join(n for n, _ in layers) + "]")
