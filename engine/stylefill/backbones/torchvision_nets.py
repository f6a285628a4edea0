"""AlexNet and VGG16 from torchvision, the paper's own networks, seen through `Backbone`.

The architectures come from torchvision; the weights are ours to fetch and check (see
`weights.py`). pool5 is the last max-pool map (6x6x256 / 7x7x512 at 224 px); the head runs
the model's adaptive avgpool, so other input sizes work and pool5 keeps its true stride.
Dropout layers are skipped: dropout ensembles are expressed by the m6/m7 masks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .base import Backbone, Masks, Outputs, apply_units
from .weights import load_into, load_state_dict, resolve_weights, weights_spec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _side(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


def conv_geometry(layers: Iterable[nn.Module]) -> tuple[int, int]:
    """(receptive field, stride) of one output cell of a conv/pool stack, in input pixels.

    Derived from the modules so the attribute cannot drift from the architecture.
    """
    field, jump = 1, 1
    for layer in layers:
        if isinstance(layer, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            dilation = _side(getattr(layer, "dilation", 1))
            kernel = dilation * (_side(layer.kernel_size) - 1) + 1
            field += (kernel - 1) * jump
            jump *= _side(layer.stride)
    return field, jump


class _TorchvisionBackbone(Backbone):
    """torchvision's features / avgpool / classifier layout with three Linear layers."""

    input_size = 224
    cell_patch = 67
    fc_layers = ("fc6", "fc7")
    dropout_rate = 0.5
    architecture: Callable[[], nn.Module]

    def __init__(self, categories: tuple[str, ...], state: dict[str, torch.Tensor]):
        super().__init__(categories)
        # Built on the meta device: random initialisation is skipped, the state fills it.
        with torch.device("meta"):
            net = type(self).architecture()
        self.net = net.to_empty(device="cpu")
        load_into(self.net, state, self.name)
        self.fc6, self.fc7, self.fc8 = (m for m in self.net.classifier if isinstance(m, nn.Linear))
        self.receptive_field, self.stride = conv_geometry(self.net.features)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    @classmethod
    def stage_names(cls) -> tuple[str, ...]:
        return tuple(cls._stage_at().values())

    @classmethod
    @functools.cache
    def _stage_at(cls) -> dict[int, str]:
        """Index in `features` of each conv's ReLU -> its name: conv1..conv5 for AlexNet (the
        paper's), conv<block>_<n> for VGG16 (blocks end at each max-pool). Read from the
        architecture built on the meta device (no weights, no memory)."""
        with torch.device("meta"):
            features = cls.architecture().features
        found, block, within, count = {}, 1, 0, 0
        for i, module in enumerate(features):
            if isinstance(module, nn.MaxPool2d):
                block, within = block + 1, 0
            elif isinstance(module, nn.ReLU):
                within, count = within + 1, count + 1
                found[i] = f"conv{count}" if cls.name == "alexnet" else f"conv{block}_{within}"
        return found

    def features(self, xn: torch.Tensor, taps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if not taps:
            return self.net.features(xn)
        at = self._stage_at()
        x = xn
        for i, module in enumerate(self.net.features):
            x = module(x)
            if at.get(i) in taps:
                taps[at[i]] = x
        return x

    def head(self, pool5: torch.Tensor, masks: Masks) -> Outputs:
        flat = self.net.avgpool(pool5).flatten(1)
        fc6 = apply_units(F.relu(self.fc6(flat)), masks.m6)
        fc7 = apply_units(F.relu(self.fc7(fc6)), masks.m7)
        return Outputs(pool5=pool5, fc7=fc7, logits=self.fc8(fc7), fc6=fc6)


def _alexnet() -> nn.Module:
    from torchvision.models import alexnet

    return alexnet(weights=None)


def _vgg16() -> nn.Module:
    from torchvision.models import vgg16

    return vgg16(weights=None)


class AlexNetBackbone(_TorchvisionBackbone):
    name = "alexnet"
    weights_name = "alexnet-owt-7be5be79"
    architecture = staticmethod(_alexnet)


class VGG16Backbone(_TorchvisionBackbone):
    name = "vgg16"
    weights_name = "vgg16-397923af"
    architecture = staticmethod(_vgg16)


TORCHVISION_BACKBONES: dict[str, type[_TorchvisionBackbone]] = {
    "alexnet": AlexNetBackbone,
    "vgg16": VGG16Backbone,
}


def build_torchvision_backbone(name: str, weights: str | Path | None) -> Backbone:
    """AlexNet or VGG16 with a local weights file, else the cached or downloaded default."""
    if name not in TORCHVISION_BACKBONES:
        choices = ", ".join(TORCHVISION_BACKBONES)
        raise InputError(f"unknown torchvision backbone '{name}'; choose one of: {choices}")
    from torchvision.models import AlexNet_Weights

    path = resolve_weights(weights_spec(name), weights)
    try:
        state = load_state_dict(path)
    except InputError as exc:
        raise InputError(f"cannot load {name} weights: {exc}") from None
    categories = tuple(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])
    return TORCHVISION_BACKBONES[name](categories, state)
