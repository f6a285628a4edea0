"""Class visualisation (paper Eq. 2) through chosen pathways, and contact sheets of a class."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from PIL import Image
from pydantic import Field, model_validator

from ..backbones import Masks
from ..images import to_pil, to_tensor
from ..masks import pathway
from ..optvis import recipes
from ..progress import Cancel, Progress
from ..sheets import layer_sheet
from ..sheets import sheet as contact_sheet
from ..style_learning import style_pathway
from .base import (
    MAX_STYLES,
    BackboneName,
    ClassRef,
    Cli,
    FieldsError,
    Operation,
    OptionalPhoto,
    Outcome,
    Request,
    Seed,
    Size,
    backbone_field,
    iters_field,
    network,
)

SETTINGS = recipes.VisualizationSettings()
INVERSION = recipes.InversionSettings()


class VisualizeRequest(Request):
    """An image the network sees as the class, optionally through a style, cells or a member."""

    cls: Annotated[ClassRef, Cli(positional=True, metavar="CLASS")] = Field(alias="class")
    style: int | None = Field(None, ge=0, lt=MAX_STYLES, description="m7 pathway of learned "
                              "style K (data-free styles are learned on first use)")
    cells: str | None = Field(None, description="m5 pathway: r0:r1,c0:c1 of the pool5 map, or a "
                              "position (top-left, top, top-right, left, centre, right, "
                              "bottom-left, bottom, bottom-right)")
    dropout_seed: int | None = Field(None, ge=0, le=2**32 - 1, description="m6-7 pathway: one "
                                     "random dropout mask (rate 0.5) on the fc features")
    prior: Literal["tv", "patch"] = Field("tv", description="add the natural-patch prior")
    param: Literal["pixel", "fourier", "maco"] = Field(
        SETTINGS.param, description="image parameterisation (maco: phase only, at real photos' "
        "mean amplitude spectrum)")
    size: Size = None
    iters: int = iters_field(SETTINGS.iters)
    seed: Seed = 0
    backbone: BackboneName = backbone_field()


class SheetRequest(Request):
    """A contact sheet of a class by learned styles, m5 positions (3x3) or dropout members, or
    of a photo rebuilt from each layer (--by layers, with the photo in place of the class)."""

    image: OptionalPhoto = None
    cls: Annotated[ClassRef | None, Cli(positional=True, metavar="CLASS|IMAGE")] = Field(
        None, alias="class")
    by: Literal["styles", "cells", "dropout", "layers"] = Field(
        description="what varies across the sheet")
    count: int = Field(6, ge=1, le=64, description="dropout members to show")
    iters: int | None = Field(None, ge=1, le=20_000, description="solver iterations (default "
                              f"{SETTINGS.iters}; by layers {INVERSION.iters})")
    seed: Seed = 0
    backbone: BackboneName = backbone_field()

    @model_validator(mode="before")
    @classmethod
    def _photo_in_place_of_class(cls, data: Any) -> Any:
        """`sheet IMAGE --by layers`: the positional names a photo, not a class."""
        if isinstance(data, dict) and data.get("by") == "layers" and data.get("image") is None:
            data = dict(data)
            data["image"] = data.pop("class", None) or data.pop("cls", None)
        return data

    def check(self) -> None:
        if self.by == "layers":
            if self.image is None:
                raise FieldsError("--by layers rebuilds a photo: give its image")
            if self.cls is not None:
                raise FieldsError("--by layers takes a photo, not a class")
        elif self.cls is None:
            raise FieldsError(f"--by {self.by} shows a class: give its name or index")
        self.iters = self.iters or (INVERSION.iters if self.by == "layers" else SETTINGS.iters)


def visualize(req: VisualizeRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    masks = pathway(net, req.size, req.cells, req.dropout_seed)
    settings = replace(SETTINGS, iters=req.iters, param=req.param,
                       patch=recipes.PATCH_WEIGHT if req.prior == "patch" else 0.0)
    prior_images = None
    if req.style is not None:
        m7, prior_images, progress, _ = style_pathway(req.index, net, req.style, req.size,
                                                      progress, cancel)
        masks = masks or Masks()
        masks.m7 = m7 if masks.m7 is None else masks.m7 * m7.to(masks.m7)
        settings = replace(settings, patch=recipes.PATCH_WEIGHT)
    res = recipes.visualize(net, req.index, size=req.size, seed=req.seed, masks=masks,
                            settings=settings, prior_images=prior_images, progress=progress,
                            cancel=cancel)
    metrics = {"backbone": net.name, "class": res.cls, "index": res.index, "prob": res.prob,
               "top1": res.top1, "seconds": res.seconds, "style": req.style, "cells": req.cells,
               "dropout_seed": req.dropout_seed}
    return Outcome(metrics, to_pil(res.image), summary=(
        f"{res.cls} p={res.prob:.4f}, top-1 {res.top1}, {res.seconds:.1f} s"))


def sheet(req: SheetRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    if req.by == "layers":
        photo = to_tensor(req.image.resize((net.input_size,) * 2, Image.Resampling.BICUBIC))
        image = layer_sheet(net, photo, settings=replace(INVERSION, iters=req.iters),
                            seed=req.seed, progress=progress, cancel=cancel)
        return Outcome({"backbone": net.name, "by": "layers", "layers": [*net.stage_names(),
                        "pool5"]}, image, summary="the photo rebuilt from each layer")
    image = contact_sheet(req.index, net, req.by, count=req.count, seed=req.seed,
                          settings=replace(SETTINGS, iters=req.iters), progress=progress,
                          cancel=cancel)
    return Outcome({"backbone": net.name, "class": net.categories[req.index], "by": req.by},
                   image, summary=f"{net.categories[req.index]} by {req.by}")


VISUALIZE = Operation("visualize", VisualizeRequest, visualize,
                      "an image the network sees as a class (Eq. 2)", makes="image")
SHEET = Operation("sheet", SheetRequest, sheet,
                  "contact sheet of a class by styles, m5 cells or dropout members, or of a photo "
                  "by layers", makes="image")
