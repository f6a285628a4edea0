"""Photo statistics of an image's amplitude spectrum: how much of it sits at high frequencies
and how fast it falls off. Real photos measure about 0.2-0.5 and 1.0-2.0; adversarial texture
has too much amplitude at high frequencies and too flat a spectrum, whatever a network says.

Both are measured on the grey image under a Hann window (so the image's border is not an edge).
Its DC term, the mean luminance, is kept beside them: a fill in the photo's light has about
its surroundings' (an object may be darker or lighter, but not as a rule).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .regions import Box, around_boxes

HIGH_FREQUENCY = 0.25  # cycles per pixel: above it is "high frequency"
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class SpectrumStats:
    high_frequency_share: float  # amplitude above HIGH_FREQUENCY / all amplitude but DC
    slope: float                 # alpha of amplitude ~ 1 / f^alpha, radially averaged
    luminance: float             # mean luma (Rec. 601), 0-1


def spectrum_stats(image: torch.Tensor | np.ndarray, mask: np.ndarray | None = None) -> SpectrumStats:
    """Statistics of a (3, H, W) / (1, 3, H, W) tensor in [0, 1] or an (H, W, 3) array in [0, 1].

    With a bool `mask` (H, W) only its bounding box is measured, the pixels outside the mask
    set to the mask's mean grey (a fill's own spectrum, not the photo's edges around it).
    """
    grey = _grey(image)
    if mask is not None:
        grey = _masked_box(grey, mask)
    h, w = grey.shape
    if min(h, w) < 8:
        raise ValueError(f"a {w}x{h} region is too small for spectrum statistics")
    windowed = (grey - grey.mean()) * np.outer(np.hanning(h), np.hanning(w))
    amplitude = np.abs(np.fft.fft2(windowed))
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    radius = np.hypot(fy, fx)
    total = amplitude[radius > 0].sum()
    share = float(amplitude[radius > HIGH_FREQUENCY].sum() / total) if total > 0 else 0.0
    return SpectrumStats(share, _slope(amplitude, radius, min(h, w)), float(grey.mean()))


def around(rgb: np.ndarray, box: Box) -> SpectrumStats | None:
    """The photo (H, W, 3) in [0, 1] around a selection's box `box`: the mean statistics of the
    tiles of its size left, right, above and below it that lie inside the photo (None if none
    does, or the box is too small for spectrum statistics)."""
    w, h = box.size
    if min(w, h) < 8:
        return None
    height, width = rgb.shape[:2]
    stats = [spectrum_stats(rgb[t.y0:t.y1, t.x0:t.x1]) for t in around_boxes(box)
             if t.x0 >= 0 and t.y0 >= 0 and t.x1 <= width and t.y1 <= height]
    if not stats:
        return None
    return SpectrumStats(*(float(np.mean([getattr(s, f.name) for s in stats]))
                           for f in fields(SpectrumStats)))


def _grey(image: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().reshape(-1, *image.shape[-2:]).permute(1, 2, 0).numpy()
    image = np.asarray(image, dtype=np.float64)
    return image @ LUMA if image.ndim == 3 and image.shape[2] == 3 else image.squeeze()


def _masked_box(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("the mask selects nothing")
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    inside = mask[box]
    region = grey[box].copy()
    region[~inside] = region[inside].mean()
    return region


def _slope(amplitude: np.ndarray, radius: np.ndarray, side: int) -> float:
    """Least-squares slope of log mean amplitude against log frequency, one ring per frequency
    step from 2 / side (below it the window dominates) to 0.5 cycles/px."""
    rings = np.rint(radius * side).astype(int)
    keep = (rings >= 2) & (rings <= side // 2)
    sums = np.bincount(rings[keep], weights=amplitude[keep])
    counts = np.bincount(rings[keep])
    present = counts > 0
    freq = np.nonzero(present)[0] / side
    mean = sums[present] / counts[present]
    good = mean > 0
    if good.sum() < 2:
        return 0.0
    return float(-np.polyfit(np.log(freq[good]), np.log(mean[good]), 1)[0])
