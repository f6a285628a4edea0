"""Shared fixtures: the real default backbone, real ImageNet samples and a real photo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from stylefill.backbones import Backbone, load_backbone
from stylefill.images import fit_square, to_tensor


@pytest.fixture(scope="session")
def backbone() -> Backbone:
    """The default backbone (EfficientNet-Lite0, packaged weights), loaded once."""
    return load_backbone()


@pytest.fixture(scope="session")
def foolbox_images() -> list[tuple[Path, int]]:
    """The 20 ImageNet samples shipped with foolbox, as (path, label from the file name)."""
    spec = importlib.util.find_spec("foolbox")
    assert spec is not None and spec.submodule_search_locations, "foolbox (test extra) is missing"
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    found = sorted((p, int(p.stem.rsplit("_", 1)[1])) for p in data.glob("imagenet_*_*.jpg"))
    assert len(found) == 20, f"expected 20 foolbox ImageNet samples in {data}, found {len(found)}"
    return found


@pytest.fixture(scope="session")
def photo() -> torch.Tensor:
    """skimage's chelsea (a tabby cat) at network size: (1, 3, 224, 224) in [0, 1]."""
    import skimage.data
    from PIL import Image

    return to_tensor(fit_square(Image.fromarray(skimage.data.chelsea()), 224))
