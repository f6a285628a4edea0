"""Feature inversion (paper Eq. 1) and inversion of an image's own binary code (Fig. 8)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from PIL import Image
from pydantic import Field

from .. import patchdb
from ..images import fit_square, to_pil, to_tensor
from ..optvis import recipes
from ..progress import Cancel, Progress, scaled
from .base import (
    BackboneName,
    Operation,
    Outcome,
    Photo,
    Request,
    Seed,
    Size,
    backbone_field,
    check_layer,
    iters_field,
    network,
)


class InvertRequest(Request):
    """Rebuild a photo from its features at one layer under R(I)."""

    image: Photo
    prior: Literal["none", "tv", "patch"] = Field(
        "patch", description="regulariser: none, TV (+ alpha norm), or TV + natural-patch prior")
    init: Literal["rand", "patchdb"] = Field(
        "patchdb", description="start image: noise, or the k-NN image of the patch database")
    whiten: bool = Field(False, description="colour-whiten the image the regularisers see")
    param: Literal["pixel", "fourier"] = Field(recipes.InversionSettings.param,
                                               description="image parameterisation")
    fit: Literal["stretch", "crop"] = Field(
        "stretch", description="stretch: the whole photo squeezed to the network's square and "
        "the result stretched back to the photo's size; crop: its centre square only")
    database: str = Field(patchdb.AUTO, max_length=100, description="the patch database for the "
                          "k-NN start, the prior and whitening: auto (a preset if built, else the "
                          "embedded default), default, or a name from `stylefill patchdb list`")
    layer: str | None = Field(None, description="the layer whose features are rebuilt: a stage or "
                              "pool5 (`stylefill backbones` lists them; default: the backbone's "
                              "last spatial map)")
    size: Size = None
    iters: int = iters_field(recipes.InversionSettings.iters)
    seed: Seed = 0
    backbone: BackboneName = backbone_field()

    def check(self) -> None:
        self.layer = check_layer(self.backbone, self.layer)


class InvertCodeRequest(Request):
    """Rebuild a photo (its centre square) from its own binary ReLU code alone."""

    image: Photo
    levels: Literal["m7", "m6-7", "m5-7"] = Field("m5-7", description="which masks form the code")
    iters: int = iters_field(recipes.CODE_INVERSION.iters)
    seed: Seed = 0
    backbone: BackboneName = backbone_field()


def invert(req: InvertRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    square = (req.image.resize((req.size, req.size), Image.Resampling.BICUBIC)
              if req.fit == "stretch" else fit_square(req.image, req.size))
    settings = replace(recipes.InversionSettings(), iters=req.iters, param=req.param)
    db = patchdb.open_db(net, req.database, scaled(progress, 0.0, 0.0, "patch database: "),
                         cancel) if recipes.uses_database(req.prior, req.init, req.whiten) else None
    res = recipes.invert(net, to_tensor(square), prior=req.prior, init=req.init,
                         whiten=req.whiten, layer=req.layer, settings=settings, seed=req.seed,
                         db=db, progress=progress, cancel=cancel)
    image = to_pil(res.image)
    if req.fit == "stretch":
        image = image.resize(req.image.size, Image.Resampling.BICUBIC)
    metrics = {"backbone": net.name, **req.params(), "database": db.meta["name"] if db else None,
               "relative_l2": res.relative_l2,
               "feature_error": res.feature_error, "seconds": res.seconds}
    return Outcome(metrics, image, summary=f"relative_l2 {res.relative_l2:.4f}, feature_error "
                   f"{res.feature_error:.4f}, {res.seconds:.1f} s")


def invert_code(req: InvertCodeRequest, progress: Progress | None, cancel: Cancel | None) -> Outcome:
    net = network(req.backbone, progress)
    photo = to_tensor(fit_square(req.image, net.input_size))
    res = recipes.invert_code(net, photo, req.levels, seed=req.seed, progress=progress,
                              settings=replace(recipes.CODE_INVERSION, iters=req.iters), cancel=cancel)
    metrics = {"backbone": net.name, "levels": req.levels, "bits": res.bits,
               "open_bits": res.open_bits, "class": res.cls, "relative_l2": res.relative_l2,
               "seconds": res.seconds}
    return Outcome(metrics, to_pil(res.image), summary=(
        f"from the {req.levels} code ({res.open_bits} of {res.bits} bits on), relative_l2 "
        f"{res.relative_l2:.4f}, {res.seconds:.1f} s"))


INVERT = Operation("invert", InvertRequest, invert,
                   "rebuild a photo from its features at a layer (Eq. 1)", makes="image")
INVERT_CODE = Operation("invert_code", InvertCodeRequest, invert_code,
                        "rebuild a photo from its own binary ReLU code (m5-7)", makes="image")
