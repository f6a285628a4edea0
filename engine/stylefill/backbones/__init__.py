"""Backbones by name. Each is a `Backbone`; `load_backbone` caches one instance per choice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from ..classes import imagenet_classes
from ..errors import InputError
from .base import Backbone, Masks, Outputs
from .efficientnet_lite import EfficientNetLite0, EfficientNetLite1, packaged_weights
from .ensemble import Ensemble
from .torchvision_nets import TORCHVISION_BACKBONES, build_torchvision_backbone
from .weights import weights_dir, weights_spec

DEFAULT_BACKBONE = "efficientnet-lite0"
BACKBONES: dict[str, type[Backbone]] = {DEFAULT_BACKBONE: EfficientNetLite0, **TORCHVISION_BACKBONES}

# Weights files this process uses instead of a backbone's default (the CLI's --weights).
_chosen_weights: dict[str, str] = {}


def check_name(name: str) -> str:
    if name not in BACKBONES:
        raise InputError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return name


@contextmanager
def use_weights(name: str, weights: str | Path | None) -> Iterator[None]:
    """Inside the block, `load_backbone(name)` loads this local state dict (None: the default)."""
    check_name(name)
    before = _chosen_weights.get(name)
    _chosen_weights.pop(name, None)
    if weights:
        _chosen_weights[name] = str(weights)
    try:
        yield
    finally:
        _chosen_weights.pop(name, None)
        if before is not None:
            _chosen_weights[name] = before


def load_backbone(
    name: str = DEFAULT_BACKBONE, weights: str | Path | None = None, device: str = "cpu"
) -> Backbone:
    """The named backbone with its default weights (or a local state dict), frozen, in eval mode."""
    check_name(name)
    chosen = str(weights) if weights else _chosen_weights.get(name)
    return _cached(name, chosen, device)


@lru_cache(maxsize=4)
def _cached(name: str, weights: str | None, device: str) -> Backbone:
    if name == DEFAULT_BACKBONE:
        return EfficientNetLite0(imagenet_classes(), weights).to(device)
    return build_torchvision_backbone(name, weights).to(device)


@lru_cache(maxsize=2)
def load_second_network(device: str = "cpu") -> Backbone:
    """EfficientNet-Lite1, the second network of insert's objective (`Ensemble`); not one of
    the backbones a user chooses, and never the judge."""
    return EfficientNetLite1(imagenet_classes()).to(device)


def with_second_network(net: Backbone, second: bool = True) -> Backbone | Ensemble:
    """`net`, or `net` with Lite1 beside it (`Ensemble`): what insert's object is drawn under,
    and a style's preview with it."""
    return Ensemble(net, load_second_network(str(net.device))) if second else net


def input_size(name: str) -> int:
    """The backbone's input side in px, without loading it."""
    return BACKBONES[check_name(name)].input_size


def info(name: str) -> dict:
    """Name, input size and whether its default weights are on disk, without loading it."""
    if check_name(name) == DEFAULT_BACKBONE:
        available = packaged_weights().is_file()
    else:
        available = (weights_dir() / weights_spec(name).filename).is_file()
    return {"name": name, "input_size": input_size(name), "weights_available": available,
            "layers": list(BACKBONES[name].layer_names())}


__all__ = ["Backbone", "Masks", "Outputs", "BACKBONES", "DEFAULT_BACKBONE", "Ensemble", "check_name",
           "info", "input_size", "load_backbone", "load_second_network", "use_weights",
           "with_second_network"]
