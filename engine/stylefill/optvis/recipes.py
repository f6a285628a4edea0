"""The paper's recipes: each is an objective (with the priors it carries), a parameterisation,
the view transforms and one regularisation bundle, run by the one render loop.

- Eq. 1, feature inversion of a photo's pool5 map (`invert`);
- Eq. 2, class visualisation, optionally through neural pathways (`visualize`, and
  `visualize_members` for a batch of dropout members);
- an object drawn on a canvas of its own with a given spectrum, or over the photo through an
  alpha of its own (`visualize_object`), and
  masked visualisation inside a selection of a photo (`visualize_masked`), object completion;
- inversion of an image's own binary ReLU code (`invert_code`, paper Fig. 8).

Everything here takes tensors at network resolution and a loaded backbone; reading photos,
choosing defaults and styles is the operations' job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import patchdb
from ..backbones import Backbone, Ensemble, Masks
from ..classification import class_prob, predict
from ..errors import InputError
from ..masks import image_code
from ..progress import Cancel, Progress, report, scaled
from ..regions import selection_box
from . import objectives as obj
from . import transforms as tf
from .param import (
    FourierParam,
    ImageParam,
    LightMatched,
    MagnitudeParam,
    MaskedParam,
    Overlay,
    Still,
    luminance,
    make_param,
    start_noise,
)
from .patch_prior import LocalPatchPrior, PatchPrior, VotedPrior
from .regularizers import Whitening
from .solver import render

PRIORS = ("none", "tv", "patch")
INITS = ("rand", "patchdb")


@dataclass(frozen=True)
class Regularisation:
    """R(I) = Ra * ||I||_a^a + Rb * TV(I) + Rg * natural-patch prior; a zero weight drops its term."""

    alpha: float = 0.0
    alpha_power: float = 6.0
    tv: float = 0.0
    patch: float = 0.0

    def __call__(self, data: obj.Objective, patch_prior: VotedPrior | None = None) -> obj.Objective:
        """`data` + R(I); the patch term (and so its matching step) only with a prior."""
        return data + self.terms(patch_prior)

    def terms(self, patch_prior: VotedPrior | None = None) -> obj.Objective | float:
        """R(I) alone (0 when every weight is)."""
        loss: obj.Objective | float = 0.0
        if self.alpha:
            loss = loss + self.alpha * obj.alpha_norm(self.alpha_power)
        if self.tv:
            loss = loss + self.tv * obj.total_variation()
        if self.patch and patch_prior is not None:
            loss = loss + self.patch * patch_prior.objective()
        return loss


@dataclass(frozen=True)
class InversionSettings:
    """Defaults for Eq. 1, chosen by measurement (see docs/tuning.md): enough steps, and a TV
    weight light enough, that every method matches the features to about 5 %."""

    iters: int = 400
    lr: float = 0.01
    tv: float = 20.0
    alpha: float = 1e-4
    alpha_power: float = 6.0
    patch: float = 5.0
    patch_size: int = 8
    patch_stride: int = 4
    patch_every: int = 10
    patch_mode: str = "local"
    patch_trust: float | None = None
    patch_temperature: float | None = 0.1
    stats: float = 5000.0
    knn: int = 10
    param: str = "fourier"
    optimizer: str = "adam"
    anneal: float = 0.1  # R(I)'s weight at the last step, from 1 at half-way (1: constant)

    def regularisation(self, prior: str) -> Regularisation:
        if prior == "none":
            return Regularisation()
        return Regularisation(self.alpha, self.alpha_power, self.tv,
                              self.patch if prior == "patch" else 0.0)


@dataclass(frozen=True)
class VisualizationSettings:
    """Defaults for Eq. 2, chosen by measurement (see docs/tuning.md): MACO's phase-only
    parameterisation at real photos' mean spectrum (each colour's contrast free to grow 2.5x)
    and views that blur and resample, so that the class evidence lives where a photo's does
    and another network (the judge) sees the class too."""

    iters: int = 256
    lr: float = 0.05
    tv: float = 0.0
    alpha: float = 0.0
    alpha_power: float = 6.0
    patch: float = 0.0
    param: str = "maco"
    decay: float = 1.0           # fourier: the basis's 1/f^decay scale (1: Lucid's)
    gain: float = 2.5            # maco: how far each colour channel's contrast may grow
    robust: bool = True
    degrade: bool = True         # random blur and resampling among the views
    whole: float = 0.0           # through masks: weight of the class under the whole network

    def regularisation(self) -> Regularisation:
        return Regularisation(self.alpha, self.alpha_power, self.tv, self.patch)


PATCH_WEIGHT = 0.05  # the patch prior's weight in a visualisation when it is switched on


@dataclass
class InversionResult:
    image: torch.Tensor
    init: torch.Tensor
    relative_l2: float
    feature_error: float
    seconds: float


@dataclass
class VisualizationResult:
    image: torch.Tensor
    index: int
    cls: str
    prob: float
    top1: str
    seconds: float


@dataclass
class CodeInversionResult:
    image: torch.Tensor
    levels: str
    bits: int          # number of units in the code (open + closed)
    open_bits: int
    cls: str           # what the code's own network predicts for the photo
    relative_l2: float
    seconds: float


def feature_error(net: Backbone, image: torch.Tensor, target: torch.Tensor,
                  layer: str = "pool5") -> float:
    """||Phi(image) - target||^2 / ||target||^2 at `layer`, the quantity Eq. 1 minimises."""
    with torch.no_grad():
        got = net(image, taps=obj.taps_for(layer)).layer(layer)
        return float((got - target).pow(2).sum() / target.pow(2).sum())


def uses_database(prior: str, init: str, whiten: bool) -> bool:
    """Whether an inversion needs the patch database: for the k-NN start, the patch prior's
    candidates and colour statistics, or the whitening it estimates."""
    return prior == "patch" or init == "patchdb" or whiten


def invert(net: Backbone, photo: torch.Tensor, *, prior: str = "patch", init: str = "patchdb",
           whiten: bool = False, layer: str | None = None,
           settings: InversionSettings = InversionSettings(), seed: int = 0,
           db: patchdb.PatchDB | None = None, progress: Progress | None = None,
           cancel: Cancel | None = None) -> InversionResult:
    """Rebuild a (1, 3, S, S) photo from its features at `layer` (default: the backbone's
    `inversion_layer`) by Eq. 1 under R(I); with the
    patch prior the image's colour statistics are also held at those of the k-NN image. The
    k-NN start and the patch candidates always come from the pool5 cells (the database's key)."""
    if prior not in PRIORS:
        raise InputError(f"unknown prior '{prior}'; choose {', '.join(PRIORS)}")
    if init not in INITS:
        raise InputError(f"unknown init '{init}'; choose {', '.join(INITS)}")
    size = photo.shape[-1]
    layer = layer or net.inversion_layer
    net.check_layers((layer,))
    photo = photo.to(net.device)
    with torch.no_grad():
        seen = net(photo, taps=obj.taps_for(layer))
    pool5, target = seen.pool5, seen.layer(layer)
    needs_knn = init == "patchdb" or prior == "patch"  # start image / candidates and statistics
    if db is None and uses_database(prior, init, whiten):
        db = patchdb.default_db(net, scaled(progress, 0.0, 0.0, "building the patch database: "),
                                cancel)
    knn = ids = None
    if needs_knn:
        report(progress, 0.0, "finding the nearest database patches")
        knn, ids = db.knn_image(pool5.cpu(), size, settings.knn)
    start = knn if init == "patchdb" else start_noise((1, 3, size, size), seed, 0.1)
    whitening = patchdb.colour_whitening(db) if whiten else None
    patch = _inversion_prior(db, pool5.cpu(), ids, size, settings, whitening, seed) \
        if prior == "patch" else None
    reg = settings.regularisation(prior).terms(patch)
    if patch is not None:
        reg = reg + settings.stats * obj.colour_statistics(knn.mean(dim=(-2, -1)),
                                                           knn.std(dim=(-2, -1)))
    if isinstance(reg, obj.Objective) and settings.anneal != 1.0:
        reg = reg.scheduled(obj.anneal(settings.iters, settings.anneal), "annealed")
    loss = obj.feature_inversion(target, layer) + reg
    result = render(net, loss, make_param(settings.param, start.to(net.device)),
                    iters=settings.iters, lr=settings.lr, whiten=whitening,
                    optimizer=settings.optimizer, seed=seed, progress=progress, cancel=cancel)
    rel = float((result.image - photo).norm() / photo.norm())
    return InversionResult(result.image, start, rel,
                           feature_error(net, result.image, target, layer), result.seconds)


def _inversion_prior(db: patchdb.PatchDB, target: torch.Tensor, ids: np.ndarray, size: int,
                     settings: InversionSettings, whitening: Whitening | None,
                     seed: int) -> VotedPrior:
    if settings.patch_mode == "local":
        layers = db.neighbour_layers(ids, target.shape[-1], size, whitening, normalized=True)
        return LocalPatchPrior(layers, settings.patch_size, settings.patch_stride,
                               settings.patch_every, settings.patch_trust,
                               settings.patch_temperature)
    if settings.patch_mode == "global":
        return PatchPrior.from_patches(*db.patches_with_stats(ids), size=settings.patch_size,
                                       stride=settings.patch_stride, every=settings.patch_every,
                                       whiten=whitening, seed=seed, trust=settings.patch_trust)
    raise InputError(f"unknown patch mode '{settings.patch_mode}'; choose local or global")


def _visual_prior(net: Backbone, settings: VisualizationSettings, prior_images: torch.Tensor | None,
                  db: patchdb.PatchDB | None, seed: int,
                  cancel: Cancel | None = None) -> PatchPrior | None:
    """The global patch prior of a visualisation: patches of `prior_images` (a style's own
    images) when given, else 20,000 random patches of the database."""
    if not settings.patch:
        return None
    if prior_images is not None:
        return PatchPrior.from_images(prior_images, seed=seed)
    db = db or patchdb.default_db(net, cancel=cancel)
    ids = torch.randperm(len(db), generator=torch.Generator().manual_seed(int(seed)))[:20_000]
    return PatchPrior.from_patches(*db.patches_with_stats(ids.numpy()), seed=seed)


def _class_score(net: Backbone | Ensemble, index: int, masks: Masks | None,
                 whole: float) -> obj.Objective:
    """Eq. 2's class score, plus at weight `whole` the class under the (first) network's
    whole head when the pass goes through fc masks (a style's pathway, a dropout member): that
    pathway alone can lead to evidence for a neighbour class or that the judge reads less
    (docs/tuning.md, eighth round). Without fc masks the score is already the whole head's."""
    score = obj.class_score(index)
    if whole and masks is not None and (masks.m6 is not None or masks.m7 is not None):
        first = net.first if isinstance(net, Ensemble) else net
        score = score + whole * obj.whole_network_class_score(first, index)
    return score


def visualize(net: Backbone, index: int, *, size: int | None = None, seed: int = 0,
              masks: Masks | None = None, settings: VisualizationSettings = VisualizationSettings(),
              prior_images: torch.Tensor | None = None, db: patchdb.PatchDB | None = None,
              progress: Progress | None = None, cancel: Cancel | None = None) -> VisualizationResult:
    """Maximise a class score (Eq. 2) under R(I), through `masks` when given; the result is
    judged by the clean network."""
    t0 = time.perf_counter()
    size = size or net.input_size
    start = start_noise((1, 3, size, size), seed, 0.01)
    score = _class_score(net, index, masks, settings.whole)
    loss = settings.regularisation()(score, _visual_prior(net, settings, prior_images, db, seed, cancel))
    param, transforms = _param_and_views(settings, start.to(net.device))
    result = render(net, loss, param, iters=settings.iters, lr=settings.lr, transforms=transforms,
                    masks=masks, seed=seed, progress=progress, cancel=cancel)
    top = predict(net, result.image, 1)[0]
    return VisualizationResult(result.image, index, net.categories[index],
                               class_prob(net, result.image, index), top.cls,
                               time.perf_counter() - t0)


def visualize_members(net: Backbone, index: int, masks: Masks, count: int, size: int, *,
                      settings: VisualizationSettings, seed: int, progress: Progress | None = None,
                      cancel: Cancel | None = None) -> torch.Tensor:
    """`count` class visualisations in one batch, image i through the i-th row of the batched
    `masks` (one member of the dropout ensemble each), parameterised and viewed as `settings`
    say (its regularisation is not used); (count, 3, size, size) on the CPU."""
    start = start_noise((count, 3, size, size), seed, 0.01)
    param, transforms = _param_and_views(settings, start.to(net.device))
    res = render(net, obj.class_score(index), param, iters=settings.iters, lr=settings.lr,
                 transforms=transforms, masks=masks, seed=seed, progress=progress,
                 stage="sampling pathways", cancel=cancel)
    return res.image.cpu()


def _param_and_views(settings: VisualizationSettings,
                     start: torch.Tensor) -> tuple[ImageParam, list[tf.Transform]]:
    """The parameterisation of `start` (N, 3, S, S) and the views of it that `settings` ask for."""
    size = start.shape[-1]
    transforms = tf.robust(size / 224, settings.degrade) if settings.robust else []
    return make_param(settings.param, start, settings.decay, settings.gain), transforms


@dataclass
class DrawnObject:
    image: torch.Tensor          # (1, 3, h, w)
    alpha: torch.Tensor | None   # (1, 1, h, w): where the object is, when cut out of its canvas


def visualize_object(net: Backbone | Ensemble, index: int, size: tuple[int, int],
                     amplitude: torch.Tensor, *, masks: Masks | None, iters: int, lr: float,
                     seed: int, max_gain: float, whole: float = 0.0,
                     start: torch.Tensor | None = None,
                     progress: Progress | None = None, stage: str = "drawing the object",
                     cancel: Cancel | None = None) -> DrawnObject:
    """Eq. 2 on a canvas of its own, `size` (height, width): the object alone at the size it
    will have, MACO-parameterised with the fixed spectrum `amplitude` (3, h, w // 2 + 1), each
    colour channel's contrast free to grow up to `max_gain` times, seen through blurred and
    resampled views. Object completion draws it with the spectrum of the photo around the
    selection, then solves it in context (`stylefill.completion`). From grey noise, or from the
    phase and mean colour of a `start` image (1, 3, H, W), resized to the canvas: a style's own
    image gives each style a layout and colours of its own (docs/tuning.md, 23rd round)."""
    if start is None:
        start = start_noise((1, 3, *size), seed, 0.01)
    else:
        start = F.interpolate(start, size=size, mode="bilinear", antialias=True).clamp(0, 1)
    param = MagnitudeParam(start.to(net.device), amplitude, max_gain=max_gain)
    image = render(net, _class_score(net, index, masks, whole), param, iters=iters, lr=lr,
                   transforms=tf.robust(max(size) / 224, True), masks=masks, seed=seed,
                   progress=progress, stage=stage, cancel=cancel).image.cpu()
    return DrawnObject(image, None)


COVERAGE_WEIGHT = 10.0  # the alpha's share against the class score (docs/tuning.md, 15th round)
# The outline's alpha alone moves: Adam at 0.2 lets a logit cross from the start's 4 to below 0
# in 40 steps (at the render's 0.05 it could not leave the start; docs/tuning.md, 21st round).
CUT_LR = 0.2


def cut_out(net: Backbone | Ensemble, index: int, drawn: torch.Tensor, background: torch.Tensor,
            selection: torch.Tensor, offset: tuple[int, int], *, masks: Masks | None,
            share: float, iters: int, seed: int, whole: float = 0.0,
            progress: Progress | None = None, stage: str = "cutting the object out",
            cancel: Cancel | None = None) -> DrawnObject:
    """The outline of an object already drawn on a canvas of its own (`drawn`, (1, 3, h, w)),
    learned in its context: the canvas is placed at `offset` (y, x) in `background`
    (1, 3, S, S) under `selection`, over the background through an alpha of its own
    (`Overlay`), and only the alpha is optimised, the class held while its mean is pushed to
    `share`. It keeps the parts of the canvas the class needs where they are, and gives the
    rest back to the background: a preservation mask (Fong and Vedaldi, "Interpretable
    Explanations of Black Boxes by Meaningful Perturbation", 2017) whose perturbation is the
    photo. Returns the canvas over the background and the alpha."""
    dev = net.device
    (height, width), (y, x) = drawn.shape[-2:], offset
    overlay = Overlay(Still(drawn.to(dev)), background[..., y:y + height, x:x + width].to(dev),
                      radius=1.0)
    param = MaskedParam(overlay, background.to(dev), selection.to(dev), offset)
    loss = _class_score(net, index, masks, whole) + COVERAGE_WEIGHT * obj.coverage(overlay.alpha, share)
    render(net, loss, param, iters=iters, lr=CUT_LR,
           transforms=tf.robust(background.shape[-1] / 224, True), masks=masks, seed=seed,
           progress=progress, stage=stage, cancel=cancel)
    with torch.no_grad():
        return DrawnObject(overlay.image().cpu(), overlay.alpha().cpu())


def visualize_masked(net: Backbone | Ensemble, index: int, background: torch.Tensor, selection: torch.Tensor,
                     start: torch.Tensor, *, masks: Masks, regularisation: Regularisation,
                     prior_sources: torch.Tensor | None, iters: int, lr: float, seed: int,
                     amplitude: torch.Tensor | None = None, max_gain: float = 1.0,
                     degraded: bool = False, mirror: tuple[int, int, int, int] = (0, 0, 0, 0),
                     keep: float = 0.0, whole: float = 0.0, coarse: float = 0.0, light: float = 0.0,
                     progress: Progress | None = None, stage: str = "optimising",
                     cancel: Cancel | None = None) -> torch.Tensor:
    """A class visualisation of the pixels under `selection` (1, 1, S, S) only, the rest fixed
    at `background` (1, 3, S, S): the network sees the object in its context. The patch prior
    takes its patches from `prior_sources` (N, 3, H, W). With an `amplitude` (3, h, w // 2 + 1)
    for the selection's h x w bounding box, the fill is MACO-parameterised with that fixed
    spectrum (e.g. the photo's around the selection), each colour channel's contrast free to
    grow up to `max_gain` times; otherwise in the Fourier basis.
    `degraded` adds random blur and resampling to the views. `mirror` (top, bottom, left,
    right) are bands of the view that reflect the rest (a context crop leaving the photo).
    `keep` weighs an L1 cost on changing `background` under the selection (0: none).
    `whole` weighs the class under the (first) network's whole head when `masks` has a style's
    m7 pathway (the m5 cells kept), as `VisualizationSettings.whole` does.
    `coarse` is the Fourier fill's coarse-to-fine share of the steps (`FourierParam`).
    `light` moves the fill's mean luminance that share of the way to the background's outside
    the selection (`LightMatched`; 0: the fill keeps its own).
    Returns the (1, 3, S, S) image."""
    dev = net.device
    if amplitude is None:
        inner, offset = FourierParam(start.to(dev), coarse=coarse), (0, 0)
        size = tuple(start.shape[-2:])
    else:
        box = selection_box(selection[0, 0].cpu().numpy())
        width, height = box.size
        inner = MagnitudeParam(start[..., box.y0:box.y1, box.x0:box.x1].to(dev), amplitude,
                               max_gain=max_gain)
        offset, size = (box.y0, box.x0), (height, width)
    if light:
        outside = (selection <= 0).to(dev).float()
        target = float((luminance(background.to(dev)) * outside).sum() / outside.sum().clamp_min(1))
        weight = selection.to(dev)[..., offset[0]:offset[0] + size[0], offset[1]:offset[1] + size[1]]
        inner = LightMatched(inner, weight, target, light)
    param = MaskedParam(inner, background.to(dev), selection.to(dev), offset, mirror)
    patch = None
    if prior_sources is not None:
        patch = PatchPrior.from_images(prior_sources, seed=seed, region=param.changing().cpu())
    loss = regularisation(_class_score(net, index, masks, whole), patch)
    if keep:
        loss = loss + keep * obj.change_from(background, (selection > 0).float())
    size = background.shape[-1]
    return render(net, loss, param, iters=iters, lr=lr, transforms=tf.robust(size / 224, degraded),
                  masks=masks, seed=seed, progress=progress, stage=stage,
                  cancel=cancel).image.cpu()


# Code inversion keeps the Fourier basis without views: it matches a per-cell code.
CODE_INVERSION = VisualizationSettings(iters=128, robust=False, param="fourier")


def invert_code(net: Backbone, photo: torch.Tensor, levels: str = "m5-7", *, seed: int = 0,
                settings: VisualizationSettings = CODE_INVERSION,
                progress: Progress | None = None, cancel: Cancel | None = None) -> CodeInversionResult:
    """Rebuild an image from its binary ReLU code alone (paper Fig. 8).

    The network is cut down to the units the image switched on (its code as m5/m6/m7 masks,
    which is the network with the other units' weights removed), and the image is driven to
    excite exactly those units. More levels say more: m5-7 also fixes which channels fire in
    each cell, so the layout comes back and the result is closer to the photo than from m7
    alone (docs/styles.md). No jitter by default: it would shift the image against the
    per-cell code.
    """
    t0 = time.perf_counter()
    photo = photo.to(net.device)
    code = image_code(net, photo, levels)
    top = predict(net, photo, 1, masks=code)[0]
    parts = [m for m in (code.m5, code.m6, code.m7) if m is not None]
    bits = sum(m[0].numel() for m in parts)
    open_bits = int(sum(float(m.sum()) for m in parts))
    start = start_noise(tuple(photo.shape), seed, 0.01)
    loss = settings.regularisation()(obj.pathway_activation(code))
    transforms = tf.robust(photo.shape[-1] / 224) if settings.robust else ()
    result = render(net, loss, make_param(settings.param, start.to(net.device)),
                    iters=settings.iters, lr=settings.lr, transforms=transforms, masks=code,
                    seed=seed, progress=progress, cancel=cancel)
    rel = float((result.image - photo).norm() / photo.norm())
    return CodeInversionResult(result.image, levels, bits, open_bits, top.cls, rel,
                               time.perf_counter() - t0)
