"""What the network sees: top-k classes of an image, a class's probability, the classes that fit
a selection's context, and how a result's class evidence survives blur, resampling and JPEG."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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

    def filled(scale: float) -> np.ndarray:
        box = context_box(sel, rgb.shape[1], rgb.shape[0], scale, 32)
        c = resize_square(crop(rgb, box), size)
        m = resize_square(crop(mask.astype(np.uint8) * 255, box), size, cv2.INTER_NEAREST)
        m = cv2.dilate(m, np.ones((5, 5), np.uint8))
        # Inpainted at half the size, 4x cheaper: the hole's fill is smooth either way.
        half = (size // 2, size // 2)
        small = cv2.inpaint(cv2.resize(c, half, interpolation=cv2.INTER_AREA),
                            cv2.resize(m, half, interpolation=cv2.INTER_NEAREST), 3, cv2.INPAINT_TELEA)
        up = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
        return np.where(m[..., None] > 0, up, c)

    # OpenCV's inpainting runs on one core and releases the GIL: the scales in parallel.
    with ThreadPoolExecutor(len(scales)) as pool:
        views = [v for f in pool.map(filled, scales) for v in (rgb_tensor(f), rgb_tensor(f[:, ::-1].copy()))]
    with torch.no_grad():
        probs = backbone(torch.cat(views).to(backbone.device)).logits.softmax(-1).mean(0).cpu()
    return _top(backbone, probs, top)


def object_view(image: Image.Image, mask: np.ndarray, size: int) -> torch.Tensor:
    """The object in the selection as the network sees it: its bounding box with a little
    context, (1, 3, size, size)."""
    rgb = np.asarray(image.convert("RGB"))
    box = context_box(selection_box(mask), rgb.shape[1], rgb.shape[0], 1.15, 16)
    return rgb_tensor(resize_square(crop(rgb, box), size))


def inside_selection(image: Image.Image, mask: np.ndarray, backbone: Backbone,
                     top: int = 5) -> list[Prediction]:
    """What the selection holds: the top classes of its object view (the object to modify),
    best first."""
    return predict(backbone, object_view(image, mask, backbone.input_size), top)


def selection_class(image: Image.Image, mask: np.ndarray, backbone: Backbone) -> int:
    """The class of what is inside the selection (modify's default)."""
    return inside_selection(image, mask, backbone, 1)[0].index


def _down_up(resample: Image.Resampling, up: Image.Resampling | None = None) -> Callable:
    def transform(img: Image.Image) -> Image.Image:
        w, h = img.size
        return img.resize((w // 2, h // 2), resample).resize((w, h), up or resample)
    return transform


def _jpeg(img: Image.Image, quality: int = 75) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


# What a photo survives and adversarial texture does not; each acts on the view at the solver's
# input size. "area" averages 2x2 blocks down and goes back up bilinearly.
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "clean": lambda img: img,
    "blur 1px": lambda img: img.filter(ImageFilter.GaussianBlur(1)),
    "2x bilinear": _down_up(Image.Resampling.BILINEAR),
    "2x bicubic": _down_up(Image.Resampling.BICUBIC),
    "2x area": _down_up(Image.Resampling.BOX, Image.Resampling.BILINEAR),
    "jpeg 75": _jpeg,
}


def transformed(image: torch.Tensor) -> torch.Tensor:
    """A (1, 3, H, W) image under each of TRANSFORMS, in their order: (len(TRANSFORMS), 3, H, W)."""
    pil = to_pil(image)
    return torch.cat([to_tensor(t(pil)) for t in TRANSFORMS.values()])


def robustness(backbone: Backbone, image: torch.Tensor, index: int) -> dict[str, float]:
    """The class probability of a (1, 3, H, W) image under each of TRANSFORMS.

    Adversarial noise loses the class under blur and resampling; a natural-looking image keeps it.
    """
    with torch.no_grad():
        probs = backbone(transformed(image).to(backbone.device)).logits.softmax(-1)[:, index]
    return dict(zip(TRANSFORMS, map(float, probs.cpu()), strict=True))
