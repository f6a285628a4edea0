"""What the network sees: the classes of a photo, and the classes that fit a selection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import classification
from ..images import fit_square, to_tensor
from ..progress import Cancel, Progress
from .base import BackboneName, Operation, Outcome, Photo, Request, Selection, Size, backbone_field, network


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
