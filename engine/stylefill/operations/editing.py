"""Object completion (paper Sec. 5.2): insert an object of a class into a selection in a learned
style, or restyle the object already there."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from pydantic import Field

from .. import styles
from ..classification import object_view, selection_class
from ..completion import BLENDS, EditResult, InsertSettings, fill_selection
from ..errors import InputError
from ..progress import Cancel, Progress
from ..retrieval import least_shown_style
from ..style_learning import style_pathway
from .base import (
    MAX_STYLES,
    BackboneName,
    ClassRef,
    Cli,
    Operation,
    Outcome,
    Photo,
    Request,
    Seed,
    Selection,
    backbone_field,
    iters_field,
    network,
)

SETTINGS = InsertSettings()
MODIFY_ITERS = 100


class _Edit(Request):
    image: Photo
    selection: Selection
    blend: Literal[BLENDS] = Field(SETTINGS.blend,  # type: ignore[valid-type]
                                   description="how the fill meets the photo")
    refine: bool = Field(False, description="large selections: a second pass at twice the "
                         "network's resolution (slower, more detail)")
    keep_photo: float = Field(SETTINGS.keep_photo, ge=0, le=1000, description=(
        "cost of changing the photo inside the selection: above 0 the object takes part of it "
        "and the photo stays in the rest (20: a canoe's hull with water in its corners), but "
        "the networks see the class less (docs/tuning.md, seventh round)"))
    seed: Seed = 0
    backbone: BackboneName = backbone_field()


class InsertRequest(_Edit):
    """Fill the selection with an object of the class, in a learned style (or any)."""

    cls: Annotated[ClassRef, Cli(metavar="CLASS")] = Field(alias="class")
    style: int | None = Field(None, ge=0, lt=MAX_STYLES, description="a learned style (data-free "
                              "styles are learned on first use); none: any style of the class")
    iters: int = iters_field(SETTINGS.iters)
    light: float = Field(SETTINGS.light, ge=0, le=1, description=(
        "how far the object is drawn in the photo's light: its mean luminance moves this share "
        "of the way to the photo's around the selection (0: the object's own light)"))
    render_first: int = Field(SETTINGS.render_first, ge=0, le=1000, description=(
        "steps drawing the object whole on a canvas of the selection's box, at the spectrum of "
        "the photo around it, before `iters` steps solve it in the photo (0: grown out of the "
        "photo, as before issue 14's nineteenth round; with 100 iters that is the earlier "
        "default, docs/tuning.md)"))
    object_share: float = Field(SETTINGS.object_share, ge=0, le=1, description=(
        "with render_first: the object, once drawn, is cut out of its canvas in the photo by an "
        "alpha of its own covering about this share of the selection's box, and the selection "
        "is cut to that outline (0.6: no rectangle of its own; 0: the whole selection is "
        "filled, docs/tuning.md, twenty-first round)"))

    soften: float = Field(SETTINGS.soften, ge=0, le=4, description=(
        "a fill sharper than the photo around it is blurred to the photo's focus (its "
        "high-frequency share down to its surroundings'), sigma at most this many network "
        "pixels: an object at the depth of a blurred background (0: as sharp as drawn, as one "
        "in focus before it; docs/tuning.md, twenty-second round)"))
    style_start: bool = Field(SETTINGS.style_start, description=(
        "with a style and render_first: the object's canvas starts from the style's top image "
        "(its layout and colours) instead of grey noise, so that each style draws an object of "
        "its own (no effect in any style); off: the styles' objects look much alike "
        "(docs/tuning.md, twenty-third and twenty-fourth rounds)"))

    def check(self) -> None:
        if self.object_share and not self.render_first:
            raise InputError("object_share needs render_first above 0: the outline comes from "
                             "drawing the object first (e.g. render_first 100)")
        # On by default, where it only applies with a style; asked for by name, it needs one.
        asked = self.style_start and "style_start" in self.model_fields_set
        if asked and (self.style is None or not self.render_first):
            raise InputError("style_start needs a style and render_first above 0: the object's "
                             "canvas starts from that style's image (e.g. style 0)")


class ModifyRequest(_Edit):
    """Restyle the object inside the selection."""

    # Modify starts from the object itself, so it keeps the steps it was measured with
    # (docs/completion.md), not insert's 80 after the object is drawn first.
    iters: int = iters_field(MODIFY_ITERS)
    style: int | None = Field(None, ge=0, lt=MAX_STYLES, description="the learned style to "
                              "restyle into (data-free styles are learned on first use); none: "
                              "the style the object shows least of, or the class's plain "
                              "objective while the class has no styles")
    cls: Annotated[ClassRef | None, Cli(metavar="CLASS")] = Field(
        None, alias="class", description="class of the object (default: the top-1 inside the "
        "selection)")


def _outcome(res: EditResult, style: int | None, backbone: str) -> Outcome:
    m = {**res.metrics, "style": style, "backbone": backbone, "offset": list(res.offset)}
    return Outcome(m, res.photo, res.layer, res.offset, summary=(
        f"{m['class']} p {m['prob_before']:.3f} -> {m['prob_after']:.3f}, "
        f"{m['outside_changed_pixels']} pixels changed outside the selection, {m['seconds']:.1f} s"))


def _fill(req: _Edit, index: int, style: int | None, modify: bool, net, progress: Progress | None,
          cancel: Cancel | None, **insert_only: float) -> Outcome:
    """Insert or modify; `insert_only` are the InsertSettings only an insert's request has."""
    m7 = prior = learned = None
    if style is not None:
        m7, prior, progress, learned = style_pathway(index, net, style, net.input_size, progress,
                                                     cancel)
    settings = replace(SETTINGS, iters=req.iters, blend=req.blend, refine=req.refine,
                       keep_photo=req.keep_photo, **insert_only)
    drawn_from_style = settings.style_start and learned is not None and not modify
    top = styles.top_image(learned, style) if drawn_from_style else None
    res = fill_selection(req.image, req.selection, index, net, m7=m7, prior_images=prior,
                         modify=modify, seed=req.seed, settings=settings, style_image=top,
                         progress=progress, cancel=cancel)
    return _outcome(res, style, net.name)


def insert(req: InsertRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    return _fill(req, req.index, req.style, False, net, progress, cancel, light=req.light,
                 render_first=req.render_first, object_share=req.object_share, soften=req.soften,
                 style_start=req.style_start)


def modify(req: ModifyRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    index = selection_class(req.image, req.selection, net) if req.cls is None else req.index
    style = req.style
    if style is None and styles.is_learned(index, net.name):
        view = object_view(req.image, req.selection, net.input_size)
        style = least_shown_style(styles.load(index, net), net, view)
    return _fill(req, index, style, True, net, progress, cancel)


INSERT = Operation("insert", InsertRequest, insert,
                   "fill a selection with an object of a class, in a style", makes="edit")
MODIFY = Operation("modify", ModifyRequest, modify, "restyle the object inside a selection",
                   makes="edit")
