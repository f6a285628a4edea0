"""Patch databases: pool5 cell features paired with the centre patches of their support."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .. import patchdb
from ..progress import Cancel, Progress
from .base import BackboneName, Cli, Operation, Outcome, Request, backbone_field, network


class BuildPatchDBRequest(Request):
    """Build a patch database from photos and folders (on the engine's machine)."""

    photos: Annotated[list[str], Cli(positional=True, metavar="IMAGES_OR_FOLDERS")] = Field(
        min_length=1, description="photos and folders (searched recursively)")
    name: str = Field(max_length=100, description="the database's name")
    scales: list[float] = Field(list(patchdb.DEFAULT_SCALES), min_length=1, max_length=8,
                                description="shorter side as multiples of the network's input")
    flips: bool = Field(True, description="also mirrored crops")
    patch_px: int | None = Field(None, ge=3, le=256, description="stored patch size (default: "
                                 "the cell patch, 67)")
    backbone: BackboneName = backbone_field()


def build_patchdb(req: BuildPatchDBRequest, progress: Progress | None,
                  cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    db = patchdb.build(req.photos, net, req.name, scales=req.scales, flips=req.flips,
                       patch_px=req.patch_px, progress=progress, cancel=cancel)
    return Outcome({"path": str(db.path), **db.meta}, files={"database": str(db.path)},
                   summary=f"{db.path}: {len(db)} pairs from {len(db.meta['images'])} images "
                   f"({db.meta['index']})")


BUILD_PATCHDB = Operation("patchdb_build", BuildPatchDBRequest, build_patchdb,
                          "build a patch database from photos and folders",
                          command=("patchdb", "build"))
