"""The Python API: the operations the CLI and the server call. Nothing here prints or saves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image

from . import patchdb
from .backbones import DEFAULT_BACKBONE, Backbone, Masks, load_backbone
from .classes import resolve_class
from .errors import InputError
from .images import load_tensor
from .optvis import objectives as obj
from .optvis import transforms as tf
from .optvis.param import make_param
from .optvis.patch_prior import LocalPatchPrior, PatchPrior, VotedPrior
from .optvis.solver import StepCallback, render

Cancel = threading.Event | Callable[[], bool] | None
ImageInput = str | Path | torch.Tensor


@dataclass(frozen=True)
class InversionSettings:
    """Defaults for Eq. 1, chosen by measurement (see docs/tuning.md)."""

    iters: int = 200
    lr: float = 0.01
    tv: float = 100.0
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


@dataclass(frozen=True)
class VisualizationSettings:
    """Defaults for Eq. 2, chosen by measurement (see docs/tuning.md)."""

    iters: int = 256
    lr: float = 0.05
    tv: float = 0.0
    alpha: float = 0.0
    alpha_power: float = 6.0
    patch: float = 0.0
    param: str = "fourier"
    robust: bool = True


@dataclass
class Prediction:
    cls: str
    index: int
    prob: float


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


def _backbone(backbone: str | Backbone) -> Backbone:
    return backbone if isinstance(backbone, Backbone) else load_backbone(backbone)


def _image(image: ImageInput, size: int) -> torch.Tensor:
    return image if isinstance(image, torch.Tensor) else load_tensor(image, size)


def predict(backbone: Backbone, image: torch.Tensor, top: int = 5,
            masks: Masks | None = None) -> list[Prediction]:
    """Softmax top-k of a (1, 3, H, W) image under the network (clean unless masks are given)."""
    with torch.no_grad():
        probs = backbone(image.to(backbone.device), masks).logits.softmax(-1)[0].cpu()
    values, ids = probs.topk(min(top, len(probs)))
    return [Prediction(backbone.categories[i], int(i), float(v)) for v, i in zip(values, ids,
                                                                                 strict=True)]


def class_prob(backbone: Backbone, image: torch.Tensor, index: int) -> float:
    with torch.no_grad():
        return float(backbone(image.to(backbone.device)).logits.softmax(-1)[0, index])


def classify(image: ImageInput, backbone: str | Backbone = DEFAULT_BACKBONE, top: int = 5,
             size: int | None = None) -> list[Prediction]:
    net = _backbone(backbone)
    if top < 1:
        raise InputError("--top must be at least 1")
    return predict(net, _image(image, size or net.input_size), top)


def invert(
    image: ImageInput,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    *,
    prior: str = "patch",
    init: str = "patchdb",
    whiten: bool = False,
    size: int | None = None,
    seed: int = 0,
    settings: InversionSettings = InversionSettings(),
    db: patchdb.PatchDB | None = None,
    callback: StepCallback | None = None,
    cancel: Cancel = None,
) -> InversionResult:
    """Rebuild a photo from its pool5 features (paper Eq. 1) with R(I) = alpha + TV (+ patch)."""
    if prior not in ("none", "tv", "patch"):
        raise InputError(f"unknown prior '{prior}'; choose none, tv or patch")
    if init not in ("rand", "patchdb"):
        raise InputError(f"unknown init '{init}'; choose rand or patchdb")
    net = _backbone(backbone)
    size = size or net.input_size
    target_img = _image(image, size).to(net.device)
    with torch.no_grad():
        target = net(target_img).pool5
    need_db = init == "patchdb" or prior == "patch" or whiten
    db = db or (patchdb.default_db(net) if need_db else None)
    gen = torch.Generator().manual_seed(int(seed))
    needs_knn = init == "patchdb" or prior == "patch"  # start image / candidates and stats
    knn, ids = db.knn_image(target.cpu(), size, settings.knn) if needs_knn else (None, None)
    if init == "patchdb":
        start = knn
    else:
        start = (0.5 + 0.1 * torch.randn(1, 3, size, size, generator=gen)).clamp(0, 1)
    whitening = patchdb.colour_whitening(db) if whiten else None
    loss = obj.feature_inversion(target, "pool5")
    if prior != "none":
        loss = loss + settings.alpha * obj.alpha_norm(settings.alpha_power)
        loss = loss + settings.tv * obj.total_variation()
    priors = []
    if prior == "patch":
        pp = _inversion_prior(db, target.cpu(), ids, size, settings, whitening, seed)
        priors.append(pp)
        loss = loss + settings.patch * pp.objective()
        stats = obj.colour_statistics(knn.mean(dim=(-2, -1)), knn.std(dim=(-2, -1)))
        loss = loss + settings.stats * stats
    result = render(net, loss, make_param(settings.param, start.to(net.device)),
                    iters=settings.iters, lr=settings.lr, priors=priors, whiten=whitening,
                    optimizer=settings.optimizer, seed=seed, callback=callback, cancel=cancel)
    with torch.no_grad():
        feat_err = float((net(result.image).pool5 - target).pow(2).sum() / target.pow(2).sum())
    rel = float((result.image - target_img).norm() / target_img.norm())
    return InversionResult(result.image, start, rel, feat_err, result.seconds)


def _inversion_prior(db: patchdb.PatchDB, target: torch.Tensor, ids, size: int,
                     settings: InversionSettings, whitening, seed: int) -> VotedPrior:
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


def visualize(
    cls: str | int,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    *,
    size: int | None = None,
    seed: int = 0,
    masks: Masks | None = None,
    settings: VisualizationSettings = VisualizationSettings(),
    db: patchdb.PatchDB | None = None,
    prior_images: torch.Tensor | None = None,
    style: int | None = None,
    callback: StepCallback | None = None,
    cancel: Cancel = None,
) -> VisualizationResult:
    """Maximise a class score (paper Eq. 2) under R(I); the result is judged by the clean net.

    The patch prior (settings.patch > 0) takes its patches from `prior_images` when given (a
    style's own images), else from the patch database. `style` adds that learned style's m7
    pathway and its images' patch prior (data-free styles are learned on first use).
    """
    t0 = time.perf_counter()
    net = _backbone(backbone)
    index, name = resolve_class(cls, net.categories)
    size = size or net.input_size
    if style is not None:
        from .styles import PreviewSettings

        m7, prior_images, _ = _style_pathway(index, net, style, size, cancel=cancel)
        masks = masks or Masks()
        masks.m7 = m7 if masks.m7 is None else masks.m7 * m7.to(masks.m7)
        settings = replace(settings, patch=settings.patch or PreviewSettings.patch)
    gen = torch.Generator().manual_seed(int(seed))
    start = (0.5 + 0.01 * torch.randn(1, 3, size, size, generator=gen)).clamp(0, 1)
    loss = obj.class_score(index)
    if settings.tv:
        loss = loss + settings.tv * obj.total_variation()
    if settings.alpha:
        loss = loss + settings.alpha * obj.alpha_norm(settings.alpha_power)
    priors = []
    if settings.patch and prior_images is not None:
        pp = PatchPrior.from_images(prior_images, seed=seed)
        priors.append(pp)
        loss = loss + settings.patch * pp.objective()
    elif settings.patch:
        db = db or patchdb.default_db(net)
        rng = torch.Generator().manual_seed(int(seed))
        ids = torch.randperm(len(db), generator=rng)[:20_000].numpy()
        pp = PatchPrior.from_patches(*db.patches_with_stats(ids), seed=seed)
        priors.append(pp)
        loss = loss + settings.patch * pp.objective()
    transforms = tf.robust(size / 224) if settings.robust else ()
    result = render(net, loss, make_param(settings.param, start.to(net.device)),
                    iters=settings.iters, lr=settings.lr, transforms=transforms, masks=masks,
                    priors=priors, seed=seed, callback=callback, cancel=cancel)
    top = predict(net, result.image, 1)[0]
    return VisualizationResult(result.image, index, name, class_prob(net, result.image, index),
                               top.cls, time.perf_counter() - t0)


@dataclass
class CodeInversionResult:
    image: torch.Tensor
    levels: str
    bits: int          # number of units in the code (open + closed)
    open_bits: int
    cls: str           # what the code's own network predicts for the photo
    relative_l2: float
    seconds: float


def invert_code(
    image: ImageInput,
    levels: str = "m5-7",
    backbone: str | Backbone = DEFAULT_BACKBONE,
    *,
    seed: int = 0,
    settings: VisualizationSettings = VisualizationSettings(iters=128, robust=False),
    callback: StepCallback | None = None,
    cancel: Cancel = None,
) -> CodeInversionResult:
    """Rebuild an image from its binary ReLU code alone (paper Fig. 8).

    The network is cut down to the units the image switched on (its code as m5/m6/m7 masks,
    which is the network with the other units' weights removed), and the image is driven to
    excite exactly those units. More levels say more: m5-7 also fixes which channels fire in
    each cell, so the layout comes back and the result is closer to the photo than from m7
    alone (docs/styles.md). No jitter: it would shift the image against the per-cell code.
    """
    from .masks import image_code

    t0 = time.perf_counter()
    net = _backbone(backbone)
    photo = _image(image, net.input_size).to(net.device)
    code = image_code(net, photo, levels)
    top = predict(net, photo, 1, masks=code)[0]
    parts = [m for m in (code.m5, code.m6, code.m7) if m is not None]
    bits = sum(m[0].numel() for m in parts)
    open_bits = int(sum(float(m.sum()) for m in parts))
    gen = torch.Generator().manual_seed(int(seed))
    start = (0.5 + 0.01 * torch.randn(photo.shape, generator=gen)).clamp(0, 1)
    loss = obj.pathway_activation(code)
    if settings.tv:
        loss = loss + settings.tv * obj.total_variation()
    transforms = tf.robust(net.input_size / 224) if settings.robust else ()
    result = render(net, loss, make_param(settings.param, start.to(net.device)),
                    iters=settings.iters, lr=settings.lr, transforms=transforms, masks=code,
                    seed=seed, callback=callback, cancel=cancel)
    rel = float((result.image - photo).norm() / photo.norm())
    return CodeInversionResult(result.image, levels, bits, open_bits, top.cls, rel,
                               time.perf_counter() - t0)


def _style_pathway(index: int, net: Backbone, style: int, size: int, progress=None,
                   cancel: Cancel = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A learned style's m7 mask and its images for the patch prior (data-free styles are
    learned first when missing: the first half of `progress`, whose remainder starts at the
    returned fraction)."""
    from . import styles
    from .progress import scaled

    start = 0.0 if styles.is_learned(index, net.name) else 0.5
    ss = styles.load_or_learn(index, net, progress=scaled(progress, 0.0, start), cancel=cancel)
    return ss.m7(style), styles.images_tensor(ss.image_paths(style, 8), size), start


def suggest(image: Image.Image, mask, top: int = 5,
            backbone: str | Backbone = DEFAULT_BACKBONE) -> list[Prediction]:
    """Classes that fit the context of a selection (mask: bool array of the photo's size)."""
    from .completion import as_mask
    from .completion import suggest as _suggest

    net = _backbone(backbone)
    found = _suggest(image, as_mask(mask, image), net, top)
    return [Prediction(net.categories[i], i, p) for i, p in found]


def insert(
    image: Image.Image,
    mask,
    cls: str | int,
    style: int | None = None,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    seed: int = 0,
    iters: int | None = None,
    settings=None,
    progress=None,
    cancel: Cancel = None,
):
    """Fill the selection with `cls` in learned style `style` (None: any style of the class).

    Data-free styles of the class are learned on first use (cached). Returns an EditResult.
    """
    from .completion import InsertSettings, fill_selection

    net = _backbone(backbone)
    index, _ = resolve_class(cls, net.categories)
    m7 = prior = None
    start = 0.0
    if style is not None:
        m7, prior, start = _style_pathway(index, net, style, net.input_size, progress, cancel)
    return fill_selection(image, mask, index, net, m7=m7, prior_images=prior, modify=False,
                          seed=seed, settings=settings or InsertSettings(), iters=iters,
                          progress=progress, cancel=cancel, progress_from=start)


def modify(
    image: Image.Image,
    mask,
    style: int,
    cls: str | int | None = None,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    seed: int = 0,
    iters: int | None = None,
    settings=None,
    progress=None,
    cancel: Cancel = None,
):
    """Restyle the object in the selection: start from its pixels, push it along style `style`
    of its class (default: the top-1 class inside the selection)."""
    from .completion import InsertSettings, as_mask, fill_selection, selection_class

    net = _backbone(backbone)
    mask = as_mask(mask, image)
    index = selection_class(image, mask, net) if cls is None else resolve_class(cls, net.categories)[0]
    m7, prior, start = _style_pathway(index, net, style, net.input_size, progress, cancel)
    return fill_selection(image, mask, index, net, m7=m7, prior_images=prior, modify=True,
                          seed=seed, settings=settings or InsertSettings(), iters=iters,
                          progress=progress, cancel=cancel, progress_from=start)


def robustness(backbone: str | Backbone, image: torch.Tensor, index: int) -> dict[str, float]:
    """Class probability clean, after a 1 px Gaussian blur and after a 2x down-up resample.

    Adversarial noise loses the class under both; a natural-looking image keeps it.
    """
    from PIL import ImageFilter

    from .images import to_pil, to_tensor

    net = _backbone(backbone)
    pil = to_pil(image)
    w, h = pil.size
    blurred = pil.filter(ImageFilter.GaussianBlur(1))
    resampled = pil.resize((w // 2, h // 2), Image.Resampling.BICUBIC).resize(
        (w, h), Image.Resampling.BICUBIC)
    return {
        "clean": class_prob(net, to_tensor(pil), index),
        "blur": class_prob(net, to_tensor(blurred), index),
        "resample": class_prob(net, to_tensor(resampled), index),
    }
