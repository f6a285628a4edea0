"""Neural pathways as ReLU masks (paper Sec. 4): m5 picks *where* (pool5 cells), dropout masks
on the fully-connected features pick one member of the m6-7 ensemble."""

from __future__ import annotations

import re

import cv2
import numpy as np
import torch

from .backbones.base import Backbone, Masks
from .errors import InputError

# Named positions: a k x k window (k about 3/7 of the map, the paper's one cell dilated by 1 on
# AlexNet's 6x6 map) in one of the nine places of a 3 x 3 layout.
POSITIONS = {
    "top-left": (0, 0), "top": (0, 1), "top-right": (0, 2),
    "left": (1, 0), "centre": (1, 1), "center": (1, 1), "right": (1, 2),
    "bottom-left": (2, 0), "bottom": (2, 1), "bottom-right": (2, 2),
}
_RANGE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*$")


def cell_window(spec: str, map_size: int) -> tuple[slice, slice]:
    """'r0:r1,c0:c1' (half-open, like Python slices) or a named position -> row/col slices."""
    text = spec.strip().lower()
    if text in POSITIONS:
        k = max(1, round(3 * map_size / 7))
        starts = (0, (map_size - k) // 2, map_size - k)
        r, c = POSITIONS[text]
        return slice(starts[r], starts[r] + k), slice(starts[c], starts[c] + k)
    match = _RANGE.match(text)
    if not match:
        raise InputError(f"cells '{spec}': use r0:r1,c0:c1 or one of {', '.join(POSITIONS)}")
    r0, r1, c0, c1 = (int(v) for v in match.groups())
    if not (0 <= r0 < r1 <= map_size and 0 <= c0 < c1 <= map_size):
        raise InputError(f"cells '{spec}' do not fit the {map_size}x{map_size} pool5 map")
    return slice(r0, r1), slice(c0, c1)


def cell_mask(spec: str, map_size: int) -> torch.Tensor:
    """An m5 mask (map_size, map_size): 1 on the chosen cells, 0 elsewhere."""
    rows, cols = cell_window(spec, map_size)
    mask = torch.zeros(map_size, map_size)
    mask[rows, cols] = 1.0
    return mask


def pathway(backbone: Backbone, size: int, cells: str | None = None,
            dropout_seed: int | None = None) -> Masks | None:
    """The masks for a location and/or a dropout ensemble member; None when both are open."""
    if cells is None and dropout_seed is None:
        return None
    masks = backbone.dropout_masks(dropout_seed) if dropout_seed is not None else Masks()
    if cells is not None:
        masks.m5 = cell_mask(cells, backbone.map_size(size))
    return masks


def cells_under(selection: np.ndarray, map_size: int, dilate: int) -> torch.Tensor:
    """m5 for a selection at network resolution: the pool5 cells it covers (area share > 0),
    dilated by `dilate` cells (the paper's radius 1)."""
    cover = cv2.resize(selection.astype(np.float32), (map_size, map_size),
                       interpolation=cv2.INTER_AREA)
    cells = (cover > 0).astype(np.uint8)
    if dilate:
        cells = cv2.dilate(cells, np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8))
    return torch.from_numpy(cells.astype(np.float32))


# The m5-7 hierarchical binary code (paper Fig. 8): which units an image itself switches on.
LEVELS = {"m7": ("m7",), "m6-7": ("m6", "m7"), "m5-7": ("m5", "m6", "m7")}


def image_code(backbone: Backbone, image: torch.Tensor, levels: str = "m5-7") -> Masks:
    """An image's own binary ReLU masks at the chosen levels, usable as a pathway.

    m5 is per channel and cell (1, C, h, w); m6/m7 per unit (1, units). Levels the backbone does
    not have (EfficientNet-Lite0 has no fc6) are skipped. EfficientNet-Lite0's fc7 is the mean
    of the ReLU6 conv map, so its m7 bit says "this channel fires somewhere" (about half of the
    units for a photo) and m5 says where: the code is hierarchical by construction.
    """
    if levels not in LEVELS:
        raise InputError(f"unknown code levels '{levels}'; choose {', '.join(LEVELS)}")
    with torch.no_grad():
        out = backbone(image.to(backbone.device))
    code = Masks()
    for key in LEVELS[levels]:
        layer = {"m5": out.pool5, "m6": out.fc6, "m7": out.fc7}[key]
        if layer is not None:
            setattr(code, key, (layer > 0).float())
    return code
