"""Real photos that ship inside installed packages: the embedded default patch database."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

_SKIMAGE_RGB = ("astronaut", "chelsea", "coffee", "rocket")
_SKIMAGE_GREY = ("grass", "gravel", "brick")


def packaged_photos() -> dict[str, Image.Image]:
    """Name -> RGB photo, from scikit-image and scikit-learn (no download needed)."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos: dict[str, Image.Image] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in _SKIMAGE_RGB:
            photos[f"skimage:{name}"] = Image.fromarray(getattr(skimage.data, name)())
        for name in _SKIMAGE_GREY:
            grey = getattr(skimage.data, name)()
            photos[f"skimage:{name}"] = Image.fromarray(np.stack([grey] * 3, -1))
        sample = load_sample_images()
        for fname, arr in zip(sample.filenames, sample.images, strict=True):
            photos[f"sklearn:{fname.rsplit('/', 1)[-1]}"] = Image.fromarray(arr)
    return photos
