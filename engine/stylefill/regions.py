"""Selections and the square crops around them, in photo pixels (numpy, OpenCV).

Suggestion and object completion both look at a selection through a square context crop at
network resolution; this is the geometry they share.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from .errors import InputError


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.x1 - self.x0, self.y1 - self.y0

    def clipped(self, width: int, height: int) -> Box:
        """The part of the box inside a width x height photo."""
        return Box(max(self.x0, 0), max(self.y0, 0), min(self.x1, width), min(self.y1, height))


def as_mask(mask: np.ndarray, image: Image.Image) -> np.ndarray:
    """A selection as a bool array of the photo's size, or InputError."""
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape != (image.height, image.width):
        raise InputError(f"the mask must be {image.width}x{image.height} (the photo's size), "
                         f"got shape {m.shape}")
    return m.astype(bool)


def selection_box(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise InputError("the selection is empty: select the area to fill first")
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def around_boxes(box: Box) -> list[Box]:
    """The four tiles of `box`'s size left, right, above and below it (they may leave the photo)."""
    w, h = box.size
    return [Box(box.x0 - w, box.y0, box.x0, box.y1), Box(box.x1, box.y0, box.x1 + w, box.y1),
            Box(box.x0, box.y0 - h, box.x1, box.y0), Box(box.x0, box.y1, box.x1, box.y1 + h)]


def context_box(sel: Box, width: int, height: int, scale: float, minimum: int) -> Box:
    """A square around the selection, `scale` times its larger side, moved inside the photo
    where it fits (it may stick out of a photo smaller than the square: padded later)."""
    w, h = sel.size
    side = max(int(round(scale * max(w, h))), minimum, max(w, h))
    cx, cy = (sel.x0 + sel.x1) / 2, (sel.y0 + sel.y1) / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    if side <= width:
        x0 = min(max(x0, 0), width - side)
    if side <= height:
        y0 = min(max(y0, 0), height - side)
    return Box(x0, y0, x0 + side, y0 + side)


def crop(array: np.ndarray, box: Box) -> np.ndarray:
    """`box` out of an (H, W, ...) array; parts outside it are mirrored in (cv2 reflect)."""
    h, w = array.shape[:2]
    top, left = max(0, -box.y0), max(0, -box.x0)
    bottom, right = max(0, box.y1 - h), max(0, box.x1 - w)
    inner = array[max(box.y0, 0):min(box.y1, h), max(box.x0, 0):min(box.x1, w)]
    if top or left or bottom or right:
        inner = cv2.copyMakeBorder(np.ascontiguousarray(inner), top, bottom, left, right,
                                   cv2.BORDER_REFLECT_101)
    return inner


def resize_square(array: np.ndarray, size: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    return cv2.resize(array, (size, size), interpolation=interpolation)


def rgb_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
