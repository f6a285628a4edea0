"""What the network sees: the classes of a photo, and the classes that fit a selection."""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image
from pydantic import Field

from .. import classification
from ..backbones import input_size
from ..images import fit_square, to_tensor
from ..progress import Cancel, Progress
from ..regions import context_box, selection_box
from .base import BackboneName, Operation, Outcome, Photo, Request, Selection, Size, backbone_field, network

# The square context crops suggest looks at (stylefill.classification), as (narrowest, widest)
# multiples of the selection's larger side and the least side in px.
VIEWS = {"around": (1.5, 4.0, 32), "inside": (1.15, 1.15, 16)}


class ClassifyRequest(Request):
    """The top classes of a photo (its centre square at the network's size)."""

    image: Photo
    top: int = Field(5, ge=1, le=1000, description="how many classes")
    size: Size = None
    backbone: BackboneName = backbone_field()


class SuggestRequest(Request):
    """Classes for a selection: what fits there, judged from its surroundings (to insert), or
    what it holds (to modify)."""

    image: Photo
    selection: Selection
    look: Literal["around", "inside"] = Field(
        "around", description="around: classes that fit the selection's surroundings (its "
        "content left out); inside: what the selection holds (modify's default class)")
    top: int = Field(5, ge=1, le=1000, description="how many classes")
    backbone: BackboneName = backbone_field()

    def check(self) -> None:
        self.image, self.selection = suggest_view(self.image, self.selection, self.look,
                                                  input_size(self.backbone))


def suggest_view(image: Image.Image, selection: np.ndarray, look: str,
                 size: int) -> tuple[Image.Image, np.ndarray]:
    """The part of the photo suggest looks at, at no more than twice the resolution the network
    sees it in: cropped to the widest context crop, reduced while the narrowest one keeps twice
    the network's size (its own resize then does most of the smoothing: the same classes, with
    probabilities within about 0.02 of the whole photo's). A large photo then costs what its
    context costs: an 8000x8000 one a few megabytes once decoded, not a gigabyte."""
    narrowest, widest, least = VIEWS[look]
    sel = selection_box(selection)
    box = context_box(sel, image.width, image.height, widest, least).clipped(image.width,
                                                                            image.height)
    image = image.crop((box.x0, box.y0, box.x1, box.y1))
    selection = selection[box.y0:box.y1, box.x0:box.x1]
    factor = max(round(narrowest * max(sel.size)), least) // (2 * size)
    if factor < 2:
        return image, selection
    h, w = selection.shape
    blocks = np.zeros((-(-h // factor) * factor, -(-w // factor) * factor), dtype=bool)
    blocks[:h, :w] = selection
    rows, cols = blocks.shape[0] // factor, blocks.shape[1] // factor
    return image.reduce(factor), blocks.reshape(rows, factor, cols, factor).any(axis=(1, 3))


def _listing(found: list[classification.Prediction]) -> str:
    return "\n".join(f"{p.prob:8.4f}  {p.index:4d}  {p.cls}" for p in found)


def classify(req: ClassifyRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    found = classification.predict(net, to_tensor(fit_square(req.image, req.size)), req.top)
    return Outcome({"backbone": net.name, "top": [p.as_json() for p in found]},
                   summary=_listing(found))


def suggest(req: SuggestRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    how = classification.suggest if req.look == "around" else classification.inside_selection
    found = how(req.image, req.selection, net, req.top)
    return Outcome({"backbone": net.name, "suggestions": [p.as_json() for p in found]},
                   summary=_listing(found))


CLASSIFY = Operation("classify", ClassifyRequest, classify, "top-k ImageNet classes of a photo",
                     immediate=True)
SUGGEST = Operation("suggest", SuggestRequest, suggest,
                    "objects that fit the context of a selection", immediate=True)
