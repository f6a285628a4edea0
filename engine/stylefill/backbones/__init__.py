"""Backbones by name. Each is a `Backbone`; `load_backbone` caches one instance per choice."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from ..classes import imagenet_classes
from ..errors import InputError
from .base import Backbone, Masks, Outputs

DEFAULT_BACKBONE = "efficientnet-lite0"


def _efficientnet(weights: str | None) -> Backbone:
    from .efficientnet_lite import EfficientNetLite0

    return EfficientNetLite0(imagenet_classes(), weights)


def _torchvision(name: str) -> Callable[[str | None], Backbone]:
    def make(weights: str | None) -> Backbone:
        from .torchvision_nets import build_torchvision_backbone

        return build_torchvision_backbone(name, weights)

    return make


BACKBONES: dict[str, Callable[[str | None], Backbone]] = {
    "efficientnet-lite0": _efficientnet,
    "alexnet": _torchvision("alexnet"),
    "vgg16": _torchvision("vgg16"),
}


def load_backbone(
    name: str = DEFAULT_BACKBONE, weights: str | Path | None = None, device: str = "cpu"
) -> Backbone:
    """The named backbone with its default weights (or a local state dict), frozen, in eval mode."""
    if name not in BACKBONES:
        raise InputError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return _cached(name, str(weights) if weights else None, device)


@lru_cache(maxsize=4)
def _cached(name: str, weights: str | None, device: str) -> Backbone:
    return BACKBONES[name](weights).to(device)


__all__ = ["Backbone", "Masks", "Outputs", "BACKBONES", "DEFAULT_BACKBONE", "load_backbone"]
