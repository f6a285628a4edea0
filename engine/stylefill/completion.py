"""Style-based object completion (paper Sec. 5.2): what fits a selection, and filling it.

Everything is solved at network resolution on a square context crop around the selection: the
network sees the object in its surroundings, only the selection's pixels are optimised (a class
score through the style's m7 pathway and the m5 cells under the selection, with the patch prior
of the style's images and the photo's own surroundings). The result is upscaled to the crop's
size and blended into the full-resolution photo inside the selection only, so no pixel outside
it ever changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from .backbones import Backbone, Masks
from .errors import InputError
from .progress import Progress, report, solver_steps

BLENDS = ("alpha", "seamless")


@dataclass(frozen=True)
class InsertSettings:
    """Defaults chosen by measurement (docs/completion.md)."""

    iters: int = 150
    lr: float = 0.02
    modify_lr: float = 0.01      # modify starts from the object: smaller steps keep its shape
    context: float = 2.0         # context crop side / selection side
    min_context: int = 64        # px: tiny selections still get some surroundings
    noise: float = 20 / 255      # insert: photo + noise inside the selection (as mNeuron)
    patch: float = 2.0
    tv: float = 300.0
    cells_dilate: int = 1        # m5: cells under the selection, dilated (paper: radius 1)
    feather: float = 0.06        # alpha ramp inside the selection edge, share of its size
    refine: bool = False         # second pass at 2x resolution when the context crop is > 2x
    refine_iters: int = 40
    blend: str = "seamless"     # measured: seam contrast 1.0 vs 1.2 for alpha, same prob_after


@dataclass
class EditResult:
    photo: Image.Image           # the whole photo with the fill blended in (RGB)
    layer: Image.Image           # the selection's bounding box, RGBA, alpha = feathered selection
    offset: tuple[int, int]      # where `layer` goes in `photo`
    metrics: dict


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.x1 - self.x0, self.y1 - self.y0


def selection_box(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise InputError("the selection is empty: select the area to fill first")
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def context_box(sel: Box, width: int, height: int, scale: float, minimum: int) -> Box:
    """A square around the selection, `scale` times its larger side, moved inside the photo
    where it fits (it may stick out of a photo smaller than the square: padded later)."""
    w, h = sel.size
    side = max(int(round(scale * max(w, h))), minimum, max(w, h))
    cx, cy = (sel.x0 + sel.x1) / 2, (sel.y0 + sel.y1) / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    if side <= width:
        x0 = min(max(x0, 0), width - side)
    if side <= height:
        y0 = min(max(y0, 0), height - side)
    return Box(x0, y0, x0 + side, y0 + side)


def crop(array: np.ndarray, box: Box) -> np.ndarray:
    """`box` out of an (H, W, ...) array; parts outside it are mirrored in (cv2 reflect)."""
    h, w = array.shape[:2]
    top, left = max(0, -box.y0), max(0, -box.x0)
    bottom, right = max(0, box.y1 - h), max(0, box.x1 - w)
    inner = array[max(box.y0, 0):min(box.y1, h), max(box.x0, 0):min(box.x1, w)]
    if top or left or bottom or right:
        inner = cv2.copyMakeBorder(np.ascontiguousarray(inner), top, bottom, left, right,
                                   cv2.BORDER_REFLECT_101)
    return inner


def _resize(array: np.ndarray, size: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    return cv2.resize(array, (size, size), interpolation=interpolation)


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def _prob(net: Backbone, x: torch.Tensor, index: int) -> float:
    with torch.no_grad():
        return float(net(x.to(net.device)).logits.softmax(-1)[0, index])


# ------------------------------------------------------------------------------------ suggest

def suggest(image: Image.Image, mask: np.ndarray, net: Backbone, top: int = 5,
            scales: tuple[float, ...] = (1.5, 2.5, 4.0)) -> list[tuple[int, float]]:
    """Classes that fit the selection's context: crops around it at several scales, the hole
    filled from its surroundings (OpenCV inpainting) so the old content does not vote, flipped
    too; softmax averaged. Returns (class index, probability), best first."""
    if top < 1:
        raise InputError("top must be at least 1")
    rgb = np.asarray(image.convert("RGB"))
    sel = selection_box(mask)
    size = net.input_size
    views = []
    for scale in scales:
        box = context_box(sel, rgb.shape[1], rgb.shape[0], scale, 32)
        c = _resize(crop(rgb, box), size)
        m = _resize(crop(mask.astype(np.uint8) * 255, box), size, cv2.INTER_NEAREST)
        m = cv2.dilate(m, np.ones((5, 5), np.uint8))
        filled = cv2.inpaint(np.ascontiguousarray(c), m, 5, cv2.INPAINT_TELEA)
        views += [_tensor(filled), _tensor(filled[:, ::-1].copy())]
    with torch.no_grad():
        probs = net(torch.cat(views).to(net.device)).logits.softmax(-1).mean(0).cpu()
    values, ids = probs.topk(min(top, len(probs)))
    return [(int(i), float(v)) for v, i in zip(values, ids, strict=True)]


# ------------------------------------------------------------------------------------ insert

def cell_pathway(mask_work: np.ndarray, map_size: int, dilate: int) -> torch.Tensor:
    """m5: the pool5 cells the selection covers (area share > 0), dilated by `dilate` cells."""
    cover = cv2.resize(mask_work.astype(np.float32), (map_size, map_size), interpolation=cv2.INTER_AREA)
    cells = (cover > 0).astype(np.uint8)
    if dilate:
        cells = cv2.dilate(cells, np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8))
    return torch.from_numpy(cells.astype(np.float32))


def feathered_alpha(mask: np.ndarray, width: float) -> np.ndarray:
    """1 deep inside the selection, ramping to 0 at its edge over `width` px; 0 outside."""
    inside = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.clip(dist / max(width, 1.0), 0.0, 1.0).astype(np.float32) * mask


def blend(photo: np.ndarray, fill: np.ndarray, mask: np.ndarray, alpha: np.ndarray,
          how: str) -> np.ndarray:
    """Blend `fill` into `photo` (same-size RGB crops) inside `mask` only."""
    if how == "seamless":
        m = (mask.astype(np.uint8) * 255)
        m[0, :] = m[-1, :] = 0
        m[:, 0] = m[:, -1] = 0
        if m.any():
            ys, xs = np.nonzero(m)
            r = cv2.boundingRect(np.stack([xs, ys], 1).astype(np.int32))
            center = (r[0] + r[2] // 2, r[1] + r[3] // 2)
            fill = cv2.seamlessClone(np.ascontiguousarray(fill), np.ascontiguousarray(photo), m,
                                     center, cv2.NORMAL_CLONE)
    elif how != "alpha":
        raise InputError(f"unknown blend '{how}'; choose {', '.join(BLENDS)}")
    a = alpha[..., None]
    out = photo.astype(np.float32) * (1 - a) + fill.astype(np.float32) * a
    return np.where(mask[..., None], np.clip(out + 0.5, 0, 255).astype(np.uint8), photo)


def fill_selection(
    image: Image.Image,
    mask: np.ndarray,
    index: int,
    net: Backbone,
    *,
    m7: torch.Tensor | None,
    prior_images: torch.Tensor | None,
    modify: bool,
    seed: int,
    settings: InsertSettings,
    iters: int | None = None,
    progress: Progress | None = None,
    cancel=None,
    progress_from: float = 0.0,
) -> EditResult:
    """The shared insert/modify pipeline; see the module docstring."""
    from .optvis import objectives as obj
    from .optvis import transforms as tf
    from .optvis.param import FourierParam, MaskedParam
    from .optvis.patch_prior import PatchPrior
    from .optvis.solver import render

    t0 = time.perf_counter()
    rgb = np.asarray(image.convert("RGB"))
    mask = as_mask(mask, image)
    sel = selection_box(mask)
    box = context_box(sel, rgb.shape[1], rgb.shape[0], settings.context, settings.min_context)
    size = net.input_size
    ctx = crop(rgb, box)
    ctx_mask = crop(mask.astype(np.uint8), box).astype(bool)
    work = _tensor(_resize(ctx, size))
    m_t = torch.from_numpy(_resize(ctx_mask.astype(np.float32), size))[None, None]
    prob_before = _prob(net, work, index)
    side = box.x1 - box.x0
    refine = settings.refine and side > 2 * size
    n = iters or settings.iters
    sources = None
    if settings.patch:
        sources = work if prior_images is None else torch.cat([prior_images.cpu(), work])

    def solve(res: int, start: torch.Tensor, steps: int, lr: float, lo: float, hi: float) -> torch.Tensor:
        """One masked class visualisation of the context crop at `res` px."""
        back = _tensor(_resize(ctx, res))
        m = torch.from_numpy(_resize(ctx_mask.astype(np.float32), res))[None, None]
        param = MaskedParam(FourierParam(start.to(net.device)), back.to(net.device), m.to(net.device))
        masks = Masks(m5=cell_pathway(m[0, 0].numpy(), net.map_size(res), settings.cells_dilate), m7=m7)
        loss = obj.class_score(index)
        if settings.tv:
            loss = loss + settings.tv * obj.total_variation()
        priors = []
        if sources is not None:
            pp = PatchPrior.from_images(sources, seed=seed)
            priors.append(pp)
            loss = loss + settings.patch * pp.objective()

        step = solver_steps(progress, lo, hi, f"optimising at {res} px", 10)
        return render(net, loss, param, iters=steps, lr=lr, transforms=tf.robust(res / 224), masks=masks,
                      priors=priors, seed=seed, callback=step, cancel=cancel).image.cpu()

    report(progress, progress_from, "preparing")
    gen = torch.Generator().manual_seed(int(seed))
    start = work.clone()
    if not modify:
        start = (start + settings.noise * torch.randn(start.shape, generator=gen) * m_t).clamp(0, 1)
    mid = progress_from + (0.95 - progress_from) * (0.5 if refine else 1.0)
    image_out = solve(size, start, n, settings.modify_lr if modify else settings.lr, progress_from, mid)
    if refine:
        # Large selections: a shorter second pass at twice the resolution adds the detail that
        # upscaling the first pass cannot.
        res = min(side, 2 * size)
        up = torch.nn.functional.interpolate(image_out, size=res, mode="bicubic", align_corners=False)
        image_out = solve(res, up.clamp(0, 1), settings.refine_iters, settings.modify_lr, mid, 0.95)
        size = res

    report(progress, 0.96, "blending")
    fill_work = (image_out[0].permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    up = cv2.INTER_CUBIC if side > size else cv2.INTER_AREA
    fill = cv2.resize(fill_work, (side, side), interpolation=up)
    # Back into the photo: only the part of the context box that lies inside it.
    h, w = rgb.shape[:2]
    inside = Box(max(box.x0, 0), max(box.y0, 0), min(box.x1, w), min(box.y1, h))
    sl = (slice(inside.y0 - box.y0, inside.y1 - box.y0), slice(inside.x0 - box.x0, inside.x1 - box.x0))
    region = rgb[inside.y0:inside.y1, inside.x0:inside.x1]
    region_mask = mask[inside.y0:inside.y1, inside.x0:inside.x1]
    alpha = feathered_alpha(region_mask, settings.feather * max(sel.size))
    blended = blend(region, fill[sl], region_mask, alpha, settings.blend)
    out = rgb.copy()
    out[inside.y0:inside.y1, inside.x0:inside.x1] = blended
    changed_outside = int((np.any(out != rgb, axis=2) & ~mask).sum())

    after = _tensor(_resize(crop(out, box), net.input_size))
    prob_after = _prob(net, after, index)
    ys, xs = slice(sel.y0, sel.y1), slice(sel.x0, sel.x1)
    full_alpha = np.zeros(mask.shape, np.float32)
    full_alpha[inside.y0:inside.y1, inside.x0:inside.x1] = alpha
    layer = np.dstack([out[ys, xs], (full_alpha[ys, xs] * 255 + 0.5).astype(np.uint8)])
    metrics = {
        "class": net.categories[index], "index": index, "prob_before": prob_before,
        "prob_after": prob_after, "outside_changed_pixels": changed_outside,
        "selection": [sel.x0, sel.y0, *sel.size], "context": [box.x0, box.y0, side, side],
        "work_size": size, "iters": n, "refined": refine, "blend": settings.blend,
        "seam": seam_contrast(crop(out, box), crop(mask.astype(np.uint8), box).astype(bool)),
        "seconds": time.perf_counter() - t0,
    }
    report(progress, 1.0, "done")
    return EditResult(Image.fromarray(out), Image.fromarray(layer, "RGBA"), (sel.x0, sel.y0), metrics)


def seam_contrast(photo: np.ndarray, mask: np.ndarray) -> float:
    """How visible the selection's edge is: mean gradient magnitude on a 2 px band along the
    edge over the same just outside it (the photo's own texture). About 1 = invisible seam."""
    gray = cv2.cvtColor(np.ascontiguousarray(photo), cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    m = mask.astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    edge = (cv2.dilate(m, k) - cv2.erode(m, k)).astype(bool)
    ring = (cv2.dilate(m, k, iterations=6) - cv2.dilate(m, k, iterations=2)).astype(bool)
    return float(grad[edge].mean() / max(float(grad[ring].mean()), 1e-6)) if ring.any() else 1.0


def selection_class(image: Image.Image, mask: np.ndarray, net: Backbone) -> int:
    """Top-1 class of what is inside the selection (its bounding box, a little context)."""
    rgb = np.asarray(image.convert("RGB"))
    box = context_box(selection_box(mask), rgb.shape[1], rgb.shape[0], 1.15, 16)
    return int(net(_tensor(_resize(crop(rgb, box), net.input_size)).to(net.device)).logits.argmax())


def as_mask(mask: np.ndarray, image: Image.Image) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape != (image.height, image.width):
        raise InputError(f"the mask must be {image.width}x{image.height} (the photo's size), "
                         f"got shape {m.shape}")
    return m.astype(bool)
