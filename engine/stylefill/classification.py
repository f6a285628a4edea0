"""What the network sees: top-k classes of an image, a class's probability, the classes that fit
a selection's context, and how a result's class evidence survives blur and resampling."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter

from .backbones import Backbone, Masks
from .errors import InputError
from .images import to_pil, to_tensor
from .regions import context_box, crop, resize_square, rgb_tensor, selection_box


@dataclass
class Prediction:
    cls: str
    index: int
    prob: float

    def as_json(self) -> dict:
        return {"class": self.cls, "index": self.index, "prob": self.prob}


def _top(backbone: Backbone, probs: torch.Tensor, top: int) -> list[Prediction]:
    if top < 1:
        raise InputError("top must be at least 1")
    values, ids = probs.topk(min(top, len(probs)))
    return [Prediction(backbone.categories[i], int(i), float(v))
            for v, i in zip(values, ids, strict=True)]


def predict(backbone: Backbone, image: torch.Tensor, top: int = 5,
            masks: Masks | None = None) -> list[Prediction]:
    """Softmax top-k of a (1, 3, H, W) image under the network (clean unless masks are given)."""
    with torch.no_grad():
        probs = backbone(image.to(backbone.device), masks).logits.softmax(-1)[0].cpu()
    return _top(backbone, probs, top)


def class_prob(backbone: Backbone, image: torch.Tensor, index: int) -> float:
    with torch.no_grad():
        return float(backbone(image.to(backbone.device)).logits.softmax(-1)[0, index])


def suggest(image: Image.Image, mask: np.ndarray, backbone: Backbone, top: int = 5,
            scales: tuple[float, ...] = (1.5, 2.5, 4.0)) -> list[Prediction]:
    """Classes that fit the selection's context: crops around it at several scales, the hole
    filled from its surroundings (OpenCV inpainting) so the old content does not vote, flipped
    too; softmax averaged. Best first."""
    rgb = np.asarray(image.convert("RGB"))
    sel = selection_box(mask)
    size = backbone.input_size
    views = []
    for scale in scales:
        box = context_box(sel, rgb.shape[1], rgb.shape[0], scale, 32)
        c = resize_square(crop(rgb, box), size)
        m = resize_square(crop(mask.astype(np.uint8) * 255, box), size, cv2.INTER_NEAREST)
        m = cv2.dilate(m, np.ones((5, 5), np.uint8))
        filled = cv2.inpaint(np.ascontiguousarray(c), m, 5, cv2.INPAINT_TELEA)
        views += [rgb_tensor(filled), rgb_tensor(filled[:, ::-1].copy())]
    with torch.no_grad():
        probs = backbone(torch.cat(views).to(backbone.device)).logits.softmax(-1).mean(0).cpu()
    return _top(backbone, probs, top)


def inside_selection(image: Image.Image, mask: np.ndarray, backbone: Backbone,
                     top: int = 5) -> list[Prediction]:
    """What the selection holds: the top classes of its bounding box with a little context
    (the object to modify), best first."""
    rgb = np.asarray(image.convert("RGB"))
    box = context_box(selection_box(mask), rgb.shape[1], rgb.shape[0], 1.15, 16)
    return predict(backbone, rgb_tensor(resize_square(crop(rgb, box), backbone.input_size)), top)


def selection_class(image: Image.Image, mask: np.ndarray, backbone: Backbone) -> int:
    """The class of what is inside the selection (modify's default)."""
    return inside_selection(image, mask, backbone, 1)[0].index


def robustness(backbone: Backbone, image: torch.Tensor, index: int) -> dict[str, float]:
    """Class probability clean, after a 1 px Gaussian blur and after a 2x down-up resample.

    Adversarial noise loses the class under both; a natural-looking image keeps it.
    """
    pil = to_pil(image)
    w, h = pil.size
    blurred = pil.filter(ImageFilter.GaussianBlur(1))
    resampled = pil.resize((w // 2, h // 2), Image.Resampling.BICUBIC).resize(
        (w, h), Image.Resampling.BICUBIC)
    return {
        "clean": class_prob(backbone, to_tensor(pil), index),
        "blur": class_prob(backbone, to_tensor(blurred), index),
        "resample": class_prob(backbone, to_tensor(resampled), index),
    }
