"""Style-based retrieval (paper Sec. 4): rank photos by how they load on a class's topics.

An image's fc7 vector is explained as a non-negative mix of the class's topic directions
(non-negative least squares against the fixed NMF directions); what the mix leaves over is
outside the class's cone. Ranking by one topic's loading finds photos in that style; ranking by
the projection of each mix on a given photo's mix finds photos styled like it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from .backbones import Backbone
from .errors import InputError
from .progress import Cancel
from .styles import StyleSet, fc7_features, folder_images, read_images


@dataclass
class Match:
    image: str
    score: float            # what the ranking sorts by
    loadings: list[float]   # the image's mix of the class's topics, per unit of feature norm
    in_cone: float          # 1 - relative residual: how much of the image the class's topics explain


def mixtures(ss: StyleSet, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, units) features -> (N, K) loadings per unit feature norm and (N,) in-cone share."""
    h = ss.directions.T.astype(np.float64)
    loads, inside = [], []
    for x in features.astype(np.float64):
        norm = max(float(np.linalg.norm(x)), 1e-12)
        w, residual = nnls(h, x / norm)
        loads.append(w)
        inside.append(1.0 - residual)
    return np.asarray(loads), np.asarray(inside)


def _features(net: Backbone, paths: list[Path],
              cancel: Cancel | None = None) -> tuple[list[Path], np.ndarray]:
    kept, images = read_images(paths, net.input_size, cancel=cancel)
    return kept, fc7_features(net, images, cancel=cancel)


def rank(ss: StyleSet, net: Backbone, folder: str | Path, *, style: int | None = None,
         like: str | Path | None = None, top: int | None = None,
         cancel: Cancel | None = None) -> list[Match]:
    """Images of `folder`, best first, by one style's loading or by similarity to `like`'s mix."""
    if (style is None) == (like is None):
        raise InputError("rank by --style K or by --like IMAGE (one of them)")
    if style is not None:
        ss.style(style)
    paths, feats = _features(net, folder_images(folder, cancel), cancel)
    loads, inside = mixtures(ss, feats)
    if style is not None:
        scores = loads[:, style]
    else:
        _, qf = _features(net, [Path(like)])
        q, _ = mixtures(ss, qf)
        q = q[0] / max(float(np.linalg.norm(q[0])), 1e-12)
        scores = loads @ q  # the mix's length counts: an image outside the cone has a short one
    order = np.argsort(-scores, kind="stable")[: top or None]
    return [Match(str(paths[i]), float(scores[i]), [float(v) for v in loads[i]], float(inside[i]))
            for i in order]


def least_shown_style(ss: StyleSet, net: Backbone, image: torch.Tensor) -> int:
    """The style a (1, 3, H, W) image shows least of: restyling into it changes the most (modify's
    automatic style)."""
    loads, _ = mixtures(ss, fc7_features(net, image))
    return int(np.argmin(loads[0]))
