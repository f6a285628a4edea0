"""Styles of a class (NMF topics of fc7) learned from photos or without data, and retrieval of
photos by style."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from .. import retrieval, styles
from ..progress import Cancel, Progress
from .base import (
    MAX_STYLES,
    PATH_CHARS,
    BackboneName,
    ClassRef,
    Cli,
    FieldsError,
    OnEngine,
    Operation,
    Outcome,
    Request,
    Seed,
    backbone_field,
    network,
)


class LearnStylesRequest(Request):
    """Learn a class's styles from a folder of its photos, or without data."""

    cls: Annotated[ClassRef, Cli(positional=True, metavar="CLASS")] = Field(alias="class")
    folder: Annotated[str | None, Cli(aliases=("--from",), metavar="FOLDER"), OnEngine()] = Field(
        None, max_length=PATH_CHARS, description="a folder of photos of the class (on the "
        "engine's machine)")
    data_free: bool = Field(False, description="from class visualisations under random dropout "
                            "pathways")
    topics: int | None = Field(None, ge=1, le=MAX_STYLES, description="number of styles "
                               "(default 4)")
    samples: int | None = Field(None, ge=2, le=4096, description="data-free: number of sampled "
                                "pathways (default 12)")
    keep_all: bool = Field(False, description="keep photos the network does not rank as the "
                           "class in its top 5")
    seed: Seed = 0
    backbone: BackboneName = backbone_field()

    def check(self) -> None:
        if (self.folder is None) == (not self.data_free):
            raise FieldsError("give either a folder of photos (--from FOLDER) or --data-free")


class RetrieveRequest(Request):
    """Rank a folder's photos by one of a class's styles, or by likeness to a photo's style mix."""

    folder: Annotated[str, Cli(positional=True, metavar="FOLDER"), OnEngine()] = Field(
        max_length=PATH_CHARS, description="the photos to rank (on the engine's machine)")
    cls: Annotated[ClassRef, Cli(metavar="CLASS")] = Field(alias="class")
    style: int | None = Field(None, ge=0, lt=MAX_STYLES, description="rank by loading on "
                              "style K")
    like: Annotated[str | None, Cli(metavar="IMAGE"), OnEngine()] = Field(
        None, max_length=PATH_CHARS, description="rank by similarity to this photo's style mix")
    top: int | None = Field(None, ge=1, le=1_000_000, description="only the best N")
    backbone: BackboneName = backbone_field()

    def check(self) -> None:
        if (self.style is None) == (self.like is None):
            raise FieldsError("rank by --style K or by --like IMAGE (one of them)")


def learn_styles(req: LearnStylesRequest, progress: Progress | None,
                 cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    ss = styles.learn(req.index, net, folder=req.folder, data_free=req.data_free,
                      topics=req.topics, samples=req.samples, keep_all=req.keep_all, seed=req.seed,
                      progress=progress, cancel=cancel)
    dropped = ss.meta.get("dropped", [])
    lines = [f"style {s.id}: weight {s.weight:.2f}, {s.units} fc7 units, preview "
             f"p={s.preview_prob:.3f}  {ss.preview_path(s.id)}" for s in ss.styles]
    if dropped:
        lines.append(f"dropped {len(dropped)} image(s) the network does not rank '{ss.cls}' in "
                     f"its top 5 (--keep-all keeps them): "
                     f"{', '.join(Path(p).name for p in dropped)}")
    lines.append(f"{ss.root}: {len(ss.styles)} styles of {ss.cls} ({ss.source}), "
                 f"{ss.meta['seconds']:.0f} s")
    return Outcome({**ss.listing(), "dropped": dropped, "seconds": ss.meta["seconds"]},
                   files={"styles": str(ss.root)}, summary="\n".join(lines))


def retrieve(req: RetrieveRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    ss = styles.load(req.index, net.name)
    matches = retrieval.rank(ss, net, req.folder, style=req.style, like=req.like, top=req.top,
                             cancel=cancel)
    return Outcome({"class": ss.cls, "backbone": net.name, "style": req.style, "like": req.like,
                    "ranking": [m.__dict__ for m in matches]},
                   summary="\n".join(f"{m.score:8.4f}  in-cone {m.in_cone:.2f}  {m.image}"
                                     for m in matches))


LEARN_STYLES = Operation("learn_styles", LearnStylesRequest, learn_styles,
                         "learn a class's styles from photos or without data",
                         command=("styles", "learn"))
RETRIEVE = Operation("retrieve", RetrieveRequest, retrieve, "rank a folder's photos by a class's style")
