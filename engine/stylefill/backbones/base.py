"""The one interface every backbone offers, and the ReLU masks that select neural pathways.

Images enter as float RGB in [0, 1], shape (B, 3, H, W); each backbone applies its own
pre-processing. The paper's layer names are kept: "pool5" is the last conv feature map,
"fc7" the non-negative penultimate features, "fc6" the layer before it where one exists.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ..errors import InputError


@dataclass
class Masks:
    """Multipliers on activations (so also on their gradients); None leaves a layer open.

    m5: (h, w) or (B, 1, h, w) on pool5 cells, "where". m6 / m7: (units,) or (B, units) on
    fc6 / fc7, "what". A dropout pathway is an m6/m7 of zeros and 1/(1-rate).
    """

    m5: torch.Tensor | None = None
    m6: torch.Tensor | None = None
    m7: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Masks:
        move = {k: (v.to(device) if v is not None else None) for k, v in self.__dict__.items()}
        return replace(self, **move)


@dataclass
class Outputs:
    """Activations of one forward pass (after the masks were applied)."""

    pool5: torch.Tensor
    fc7: torch.Tensor
    logits: torch.Tensor
    fc6: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def layer(self, name: str) -> torch.Tensor:
        value = self.extra.get(name) if name in self.extra else getattr(self, name, None)
        if not isinstance(value, torch.Tensor):
            raise KeyError(f"this backbone has no layer '{name}' (or it was not tapped)")
        return value


def apply_m5(pool5: torch.Tensor, m5: torch.Tensor | None) -> torch.Tensor:
    if m5 is None:
        return pool5
    if m5.dim() == 2:
        m5 = m5[None, None]
    if m5.shape[-2:] != pool5.shape[-2:]:
        raise ValueError(f"m5 mask is {tuple(m5.shape[-2:])}, pool5 map is {tuple(pool5.shape[-2:])}")
    return pool5 * m5.to(pool5.dtype)


def apply_units(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x
    if mask.shape[-1] != x.shape[-1]:
        raise ValueError(f"unit mask has {mask.shape[-1]} units, the layer has {x.shape[-1]}")
    return x * mask.to(x.dtype)


class Backbone(nn.Module, ABC):
    """An ImageNet classifier seen through the paper's layers.

    Subclasses set the class attributes and implement `normalize`, `features` and `head`.
    The module is always in eval mode with frozen weights: Stylefill optimises images only.
    """

    name: str = ""
    input_size: int = 224
    stride: int = 32          # input pixels per pool5 cell
    receptive_field: int = 0  # theoretical receptive field of one pool5 cell, in input pixels
    cell_patch: int = 67      # centre patch paired with a cell feature (paper: 67 of 195 for AlexNet)
    fc_layers: tuple[str, ...] = ("fc7",)
    dropout_rate: float = 0.5  # rate of the m6-7 dropout ensemble (paper: 0.5)
    weights_name: str = ""
    inversion_layer: str = "pool5"  # Eq. 1's default layer: the last spatial map (docs/evaluation.md)

    def __init__(self, categories: tuple[str, ...]):
        super().__init__()
        self.categories = tuple(categories)

    @abstractmethod
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the network's own input scaling."""

    @abstractmethod
    def features(self, xn: torch.Tensor, taps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Normalised input -> pool5 map (B, C, h, w), non-negative; the stages named in `taps`
        (its keys, from `stages`) get their outputs stored there on the way."""

    @classmethod
    @abstractmethod
    def stage_names(cls) -> tuple[str, ...]:
        """The named intermediate layers `features` can tap, shallow to deep (pool5 excluded);
        known without loading the weights."""

    @property
    def stages(self) -> tuple[str, ...]:
        return self.stage_names()

    @abstractmethod
    def head(self, pool5: torch.Tensor, masks: Masks) -> Outputs:
        """pool5 (already m5-masked) -> fc6/fc7 (masked) and logits."""

    def forward(self, x: torch.Tensor, masks: Masks | None = None,
                taps: tuple[str, ...] = ()) -> Outputs:
        """Pool5, fc6/fc7 and logits of a batch, plus the named stages in `taps` (Outputs.extra)."""
        masks = masks or Masks()
        tapped = dict.fromkeys(self.check_layers(taps))
        pool5 = apply_m5(self.features(self.normalize(x), tapped if taps else None), masks.m5)
        out = self.head(pool5, masks)
        out.extra.update(tapped)
        return out

    @classmethod
    def layer_names(cls) -> tuple[str, ...]:
        """Every layer an objective can use, shallow to deep."""
        return (*cls.stage_names(), "pool5", *cls.fc_layers, "logits")

    @property
    def layers(self) -> tuple[str, ...]:
        return self.layer_names()

    def check_layers(self, names) -> tuple[str, ...]:
        """`names`, each a layer of this backbone; InputError listing the valid ones otherwise."""
        for name in names:
            if name not in self.layers:
                raise InputError(f"{self.name} has no layer '{name}'; choose one of: "
                                 f"{', '.join(self.layers)}")
        return tuple(n for n in names if n in self.stages)

    @property
    def feature_channels(self) -> int:
        return self.units("pool5")

    def units(self, layer: str) -> int:
        """Number of channels (pool5) or units (fc6, fc7) of a layer, from a dry run."""
        cache = self.__dict__.setdefault("_units", {})
        if layer not in cache:
            with torch.no_grad():
                x = torch.zeros(1, 3, self.input_size, self.input_size, device=self.device)
                out = self(x)
            cache.update({"pool5": out.pool5.shape[1], "fc7": out.fc7.shape[1]})
            if out.fc6 is not None:
                cache["fc6"] = out.fc6.shape[1]
        if layer not in cache:
            raise KeyError(f"backbone {self.name} has no layer '{layer}'")
        return cache[layer]

    def map_size(self, size: int) -> int:
        """Side of the pool5 map for a square input of `size` pixels."""
        cache = self.__dict__.setdefault("_map_sizes", {})
        if size not in cache:
            with torch.no_grad():
                x = torch.zeros(1, 3, size, size, device=self.device)
                cache[size] = self.features(self.normalize(x)).shape[-1]
        return cache[size]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def dropout_masks(self, seed: int, device: torch.device | str = "cpu") -> Masks:
        """One member of the m6-7 ensemble: fixed random dropout on every fc layer (paper Sec. 4)."""
        gen = torch.Generator().manual_seed(int(seed))
        keep = 1.0 - self.dropout_rate
        made = {}
        for layer in self.fc_layers:
            bits = (torch.rand(self.units(layer), generator=gen) < keep).float() / keep
            made["m" + layer[2:]] = bits.to(device)
        return Masks(**made)

    def freeze(self) -> Backbone:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self
