"""How visibly two thumbnails differ, and the styles of a class ordered so that the first shown
are far apart (docs/styles.md, "Telling styles apart").

A user chooses a style by its preview, shown as a small thumbnail (THUMB px, as in the GIMP
dialog), not by its layout: two previews of one style differ in where things are but not in
palette or texture. So the measure compares what survives at thumbnail size regardless of
layout, in two parts:

- **colour**: the earth mover's distance (Rubner, Tomasi and Guibas 2000; OpenCV's `cv2.EMD`)
  between the two thumbnails' CIE Lab colour distributions, each a histogram (8 x 10 x 10 bins)
  whose bins sit at the mean Lab colour of their pixels. It is the mean CIE76 colour difference
  (Delta E) of the cheapest way to repaint one palette into the other: in units a person can
  read (about 2 is a just-noticeable difference), and, unlike a bin-by-bin distance, small for
  a small shift of every colour;
- **texture**: the Hellinger distance between joint histograms of gradient orientation (8
  directions) and magnitude (6 levels) of the grey thumbnail at full and half size: how
  sharp, how contrasty and which way the strokes run, again regardless of where.

One number: `distance = max(colour / COLOUR_VISIBLE, texture / TEXTURE_VISIBLE)`, so 1 is the
smallest difference a person sees at a glance in either part, and two styles under 1 are near-
duplicates. The two constants were read off graded edits of two photos and two previews
(brightness, saturation, hue, contrast, blur, shift; which rungs are visible at thumbnail size
was judged by eye before the numbers were looked at) and checked against a photo and its slight
jitter (always under 1) and pairs of different photos (always over 1); the numbers are in
docs/styles.md. Nothing here was tuned to make any class's styles come out distinct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

THUMB = 96                  # px: the GIMP dialog's thumbnails
COLOUR_VISIBLE = 7.0        # Delta E (CIE76) of palette change seen at a glance (docs/styles.md)
TEXTURE_VISIBLE = 0.09      # Hellinger distance of gradient histograms seen at a glance
_LAB_BINS = (8, 10, 10)     # L over 0..100, a and b over -60..60 (beyond: the outer bins)
_LAB_LOW, _LAB_HIGH = np.array([0.0, -60.0, -60.0]), np.array([100.0, 60.0, 60.0])
_MAGNITUDES = [0.05, 0.1, 0.2, 0.4, 0.8]    # Sobel magnitude steps of a [0, 1] grey image
_ORIENTATIONS = 8


@dataclass(frozen=True)
class Look:
    """What a thumbnail shows regardless of layout: its colour signature (rows of weight,
    L, a, b) and its gradient histogram."""

    colour: np.ndarray
    texture: np.ndarray


@dataclass(frozen=True)
class Difference:
    colour: float     # Delta E
    texture: float    # Hellinger, 0..1

    @property
    def distance(self) -> float:
        """In units of the smallest difference seen at a glance: under 1, near-duplicates."""
        return max(self.colour / COLOUR_VISIBLE, self.texture / TEXTURE_VISIBLE)


def thumbnail(image: Image.Image, side: int = THUMB) -> np.ndarray:
    """The centre square at `side` px as float32 RGB in [0, 1] (box-filtered, as shown)."""
    img = image.convert("RGB")
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    img = img.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


def look(image: Image.Image | str | Path) -> Look:
    if not isinstance(image, Image.Image):
        with Image.open(image) as img:
            return look(img.convert("RGB"))
    rgb = thumbnail(image)
    return Look(_colour_signature(rgb), _gradient_histogram(rgb))


def _colour_signature(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    bins = np.array(_LAB_BINS)
    cell = np.clip(((lab - _LAB_LOW) / (_LAB_HIGH - _LAB_LOW) * bins).astype(int), 0, bins - 1)
    flat = np.ravel_multi_index(cell.T, _LAB_BINS)
    count = np.bincount(flat, minlength=bins.prod())
    used = np.nonzero(count)[0]
    centre = np.stack([np.bincount(flat, lab[:, c], bins.prod())[used] for c in range(3)], 1)
    return np.hstack([count[used, None] / count.sum(), centre / count[used, None]]).astype(np.float32)


def _gradient_histogram(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    parts = []
    for g in (grey, cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2),
                               interpolation=cv2.INTER_AREA)):
        gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
        level = np.digitize(np.hypot(gx, gy), _MAGNITUDES)
        way = np.minimum((np.mod(np.arctan2(gy, gx), np.pi) / np.pi * _ORIENTATIONS).astype(int),
                         _ORIENTATIONS - 1)
        h = np.bincount((level * _ORIENTATIONS + way).ravel(),
                        minlength=(len(_MAGNITUDES) + 1) * _ORIENTATIONS).astype(np.float64)
        parts.append(h / h.sum())
    return np.concatenate(parts) / len(parts)


def difference(a: Look, b: Look) -> Difference:
    colour = float(cv2.EMD(a.colour, b.colour, cv2.DIST_L2)[0])
    texture = float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(a.texture * b.texture))))))
    return Difference(colour, texture)


def distances(looks: Sequence[Look]) -> np.ndarray:
    """(K, K) symmetric matrix of `Difference.distance`, zero on the diagonal."""
    d = np.zeros((len(looks), len(looks)))
    for i in range(len(looks)):
        for j in range(i + 1, len(looks)):
            d[i, j] = d[j, i] = difference(looks[i], looks[j]).distance
    return d


def farthest_first(d: np.ndarray, first: int = 0) -> list[int]:
    """Indices in farthest-first order: `first`, then each time the one whose nearest already
    chosen index is farthest away (ties: the lower index). Every prefix is as spread out as
    this greedy order can make it, so the first ones shown differ most."""
    order = [first]
    rest = [i for i in range(len(d)) if i != first]
    while rest:
        gap = [min(d[i, j] for j in order) for i in rest]
        order.append(rest.pop(int(np.argmax(gap))))
    return order


@dataclass(frozen=True)
class Spread:
    """The styles of a class as they should be shown (indices into the given looks)."""

    order: list[int]                 # farthest-first
    nearest: list[int | None]        # each one's nearest other (None: the only one)
    distance: list[float | None]     # ... and how far it is
    looks_like: list[int | None]     # for a near-duplicate shown later: the distinct one it
    #                                  looks like (within 1); None for the distinct ones

    @property
    def distinct(self) -> int:
        """How many look visibly different from each other: the first `distinct` of `order`."""
        return sum(x is None for x in self.looks_like)


def spread(looks: Sequence[Look]) -> Spread:
    """Farthest-first order, cut where the next one is within 1 of one already shown: those
    before the cut are `distinct` (each pair at least 1 apart), and every later one is within 1
    of one of them (the greedy order's gaps never grow), which it `looks_like`."""
    d = distances(looks)
    order = farthest_first(d) if len(looks) else []
    nearest: list[int | None] = []
    dist: list[float | None] = []
    for i in range(len(looks)):
        others = [j for j in range(len(looks)) if j != i]
        j = min(others, key=lambda j: (d[i, j], j)) if others else None
        nearest.append(j)
        dist.append(None if j is None else round(float(d[i, j]), 4))
    cut = next((pos for pos in range(1, len(order))
                if min(d[order[pos], j] for j in order[:pos]) < 1.0), len(order))
    looks_like: list[int | None] = [None] * len(looks)
    for i in order[cut:]:
        looks_like[i] = min(order[:cut], key=lambda j: (d[i, j], j))
    return Spread(order, nearest, dist, looks_like)
