"""Styles of a class: NMF topics of its non-negative penultimate ("fc7") features (paper Sec. 4).

The fc7 features of a class's images lie in a convex cone; non-negative factorisation finds the
cone's extreme directions, and each direction (a "topic") is one way the network sees the class:
a style. A topic carries its fc7 direction, its m7 mask (the units that carry it), its nearest
images, and a preview: the class visualised through that m7 pathway from the topic's top
image, as an insert in that style draws its object.

Topics are learned from a folder of photos, or without data from class visualisations under
random m6-7 dropout pathways (each pathway is one member of the network's ensemble, so the
samples spread over the class's cone). Stored under models/styles/<backbone>/<class>/ as JSON,
.npy and PNG, never pickled, as one crash-safe set (`atomic`: a kill or a full disk while
writing leaves the previous styles), and verified whole when loaded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, ValidationError

from . import atomic, looks
from .backbones import DEFAULT_BACKBONE, Backbone, Masks, load_backbone, with_second_network
from .classes import imagenet_classes, resolve_class
from .classification import class_prob
from .completion import InsertSettings
from .errors import InputError
from .images import fit_square, load_image, to_pil, to_tensor
from .optvis.param import photo_amplitude
from .optvis.recipes import VisualizationSettings, visualize_members, visualize_object
from .patchdb import IMAGE_SUFFIXES, image_files
from .paths import models_dir
from .progress import Cancel, Progress, check, report, scaled

FORMAT = 1
PREVIEW_SIZE = 224
ARRAYS = {"directions": np.float32, "masks": np.bool_, "features": np.float32,
          "loadings": np.float32}
MAX_STORED_PIXELS = 4096 * 4096  # a stored PNG is a preview or a sample, never larger
NMF_ITERS = 1000
NMF_CHUNK_WORK = 8e8  # rows x units x topics x iterations per NMF call: ~0.4 s, then a cancel check
BATCH = 8             # images per network pass: a cancel is checked between passes (< 1 s each)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataFreeSettings:
    """Sampling for data-free styles (measured: docs/styles.md)."""

    samples: int = 12
    size: int = 160
    iters: int = 128
    lr: float = 0.05
    param: str = "fourier"
    gain: float = 1.0
    degrade: bool = False

    def visualization(self) -> VisualizationSettings:
        return VisualizationSettings(iters=self.iters, lr=self.lr, param=self.param,
                                     gain=self.gain, degrade=self.degrade)


@dataclass(frozen=True)
class PreviewSettings:
    """A style's preview, drawn as an insert in that style draws its object on its canvas: the
    class through the style's m7 pathway under Lite0, Lite1 and the whole head, MACO at real
    photos' mean spectrum, started from the style's top image. It shows what choosing the
    style gives as well as Lucid-style previews did, and it measures as a photo, which they
    never did (docs/tuning.md, twenty-seventh round)."""

    iters: int = InsertSettings.render_first
    lr: float = InsertSettings.lr
    whole: float = InsertSettings.whole
    gain: float = InsertSettings.object_gain
    second_network: bool = InsertSettings.second_network


@dataclass
class Style:
    id: int
    weight: float              # share of the class's feature mass this topic explains
    images: list[str]          # nearest images, best first (file names inside the style folder
    #                            for data-free samples, absolute paths for a user's folder)
    units: int                 # number of fc7 units in its m7 mask
    preview: str               # PNG file name inside the style folder
    preview_prob: float        # class probability of the preview under the clean network


@dataclass
class StyleSet:
    """The learned styles of one class for one backbone, as stored on disk."""

    cls: str
    index: int
    backbone: str
    source: str                      # "data-free" or "folder:<path>"
    styles: list[Style]
    directions: np.ndarray           # (K, units) topic directions, unit L2 norm
    masks: np.ndarray                # (K, units) bool, the m7 pathways
    features: np.ndarray             # (N, units) fc7 of the images the topics were learned from
    loadings: np.ndarray             # (N, K) NMF loadings of those images
    image_names: list[str]           # (N,) what each row of `features` is
    root: Path
    meta: dict = field(default_factory=dict)

    def style(self, k: int) -> Style:
        if not 0 <= k < len(self.styles):
            raise InputError(f"{self.cls} has styles 0..{len(self.styles) - 1}; there is no style {k}")
        return self.styles[k]

    def m7(self, k: int) -> torch.Tensor:
        """The style's m7 mask as a float tensor (units,)."""
        self.style(k)
        return torch.from_numpy(self.masks[k].astype(np.float32))

    def preview_path(self, k: int) -> Path:
        return self.root / self.style(k).preview

    def image_paths(self, k: int, limit: int | None = None) -> list[Path]:
        paths = [Path(p) if os.path.isabs(p) else self.root / p for p in self.style(k).images]
        return paths[:limit]

    def spread(self) -> looks.Spread:
        """How visibly the previews differ: farthest-first order, each style's nearest other
        and near-duplicates (stylefill/looks.py)."""
        return looks.spread([looks.look(self.preview_path(s.id)) for s in self.styles])

    def listing(self) -> dict:
        """The `styles list --json` object. Styles come farthest-first (`order`: the ids as
        listed; ids never change), each with its `nearest` other style, the `distance` to it
        (1 = the smallest difference seen at a glance), `near_duplicate` (under 1) and
        `looks_like` (a style listed before it that it cannot be told from, else null);
        `distinct` counts the styles that look different (the first ones listed)."""
        entries = {s.id: {"id": s.id, "preview": str(self.preview_path(s.id)),
                          "images": [str(p) for p in self.image_paths(s.id)], "weight": s.weight,
                          "units": s.units, "preview_prob": s.preview_prob} for s in self.styles}
        spread = self.spread()
        for i, s in enumerate(self.styles):
            entries[s.id].update(nearest=spread.nearest[i], distance=spread.distance[i],
                                 near_duplicate=spread.distance[i] is not None
                                 and spread.distance[i] < 1.0, looks_like=spread.looks_like[i])
        order = [self.styles[i].id for i in spread.order]
        return {"class": self.cls, "index": self.index, "backbone": self.backbone,
                "source": self.source, "order": order, "distinct": spread.distinct,
                "styles": [entries[k] for k in order]}


# ---------------------------------------------------------------------------------- storage

def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def class_dir(index: int, name: str, backbone: str, root: Path | None = None) -> Path:
    """models/styles/<backbone>/<class>/; names that ImageNet uses twice get their index."""
    slug = _slug(name)
    if sum(_slug(c) == slug for c in imagenet_classes()) > 1:
        slug = f"{slug}-{index}"
    return (root or models_dir()) / "styles" / backbone / slug


class Damaged(InputError):
    """Stored styles that are not what a learning run writes; `rebuildable` when they can be
    learned again without the user (data-free ones, or ones whose source is unreadable)."""

    def __init__(self, message: str, rebuildable: bool):
        super().__init__(message)
        self.rebuildable = rebuildable


class _Meta(BaseModel):
    """styles.json as a learning run writes it (extra keys are the run's notes: seed, ...)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow")
    format: Literal[1]
    index: int
    backbone: str
    source: str
    image_names: list[str]
    styles: list[Style]


def _relearn(cls: str, source: str | None = None) -> str:
    if source and source.startswith("folder:"):
        return f"relearn them with `stylefill styles learn \"{cls}\" --from {source[7:]}`"
    return (f"relearn them with `stylefill styles learn \"{cls}\" --data-free` "
            f"(or --from FOLDER)")


def load(cls: str | int, backbone: str | Backbone = DEFAULT_BACKBONE, root: Path | None = None) -> StyleSet:
    """Load stored styles, verified whole (every array's shape, dtype and values, every file
    name inside its folder, every PNG decodable); missing styles raise InputError, damaged ones
    `Damaged`, each saying how to relearn them."""
    name = backbone.name if isinstance(backbone, Backbone) else backbone
    index, cname = resolve_class(cls, imagenet_classes())
    folder = class_dir(index, cname, name, root)
    try:
        found = atomic.read(folder, lambda version: _verified(version, cname, index, name))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        source = exc.source if isinstance(exc, _Unsound) else None
        raise Damaged(f"styles of '{cname}' ({name}) in {folder} are damaged ({_reason(exc)}); "
                      f"{_relearn(cname, source)}", not str(source).startswith("folder:")) from None
    if found is None:
        raise InputError(f"no styles learned for '{cname}' with {name} yet; {_relearn(cname)}")
    return found


class _Unsound(ValueError):
    """A set whose styles.json is sound but whose other parts are not (its source known)."""

    def __init__(self, reason: str, source: str):
        super().__init__(reason)
        self.source = source


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"styles.json: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)


def _verified(version: Path | None, cname: str, index: int, backbone: str) -> StyleSet | None:
    """The set in `version` if every part of it is what a learning run writes; None if none."""
    if version is None or not (version / "styles.json").is_file():
        return None
    raw = (version / "styles.json").read_bytes()
    meta = _Meta.model_validate_json(raw)
    try:
        if meta.index != index or meta.backbone != backbone:
            raise ValueError(f"styles.json is for class {meta.index} of {meta.backbone}")
        arrays = _arrays(version, len(meta.styles), len(meta.image_names))
        _check_styles(meta, arrays["masks"])
        _check_files(version, meta)
    except (OSError, ValueError) as exc:
        raise _Unsound(str(exc), meta.source) from None
    return StyleSet(cname, index, backbone, meta.source, list(meta.styles), arrays["directions"],
                    arrays["masks"], arrays["features"], arrays["loadings"],
                    list(meta.image_names), version, json.loads(raw))


def _arrays(version: Path, k: int, n: int) -> dict[str, np.ndarray]:
    """The .npy files, each of the dtype and shape the set's counts give, finite and >= 0."""
    arrays = {key: np.load(version / f"{key}.npy", allow_pickle=False) for key in ARRAYS}
    if arrays["directions"].ndim != 2:
        raise ValueError(f"directions.npy has shape {arrays['directions'].shape}, expected (K, units)")
    units = arrays["directions"].shape[1]
    shapes = {"directions": (k, units), "masks": (k, units), "features": (n, units),
              "loadings": (n, k)}
    for key, dtype in ARRAYS.items():
        a = arrays[key]
        if a.dtype != dtype:
            raise ValueError(f"{key}.npy holds {a.dtype}, expected {np.dtype(dtype)}")
        if a.shape != shapes[key]:
            raise ValueError(f"{key}.npy has shape {a.shape}, expected {shapes[key]}")
        if a.dtype.kind == "f" and not (np.isfinite(a).all() and (a >= 0).all()):
            raise ValueError(f"{key}.npy holds NaN, infinite or negative values")
    return arrays


def _check_styles(meta: _Meta, masks: np.ndarray) -> None:
    if not meta.styles or len(meta.image_names) < len(meta.styles):
        raise ValueError(f"{len(meta.styles)} styles of {len(meta.image_names)} images")
    for k, s in enumerate(meta.styles):
        if s.id != k or not -1e-6 <= s.weight <= 1 + 1e-6 or s.units != int(masks[k].sum()) or not s.units:
            raise ValueError(f"style {k} in styles.json does not match the arrays")
    if meta.source != "data-free" and not meta.source.startswith("folder:/"):
        raise ValueError(f"unknown source '{meta.source[:80]}'")


def _check_files(version: Path, meta: _Meta) -> None:
    """Previews and data-free samples are PNG files of the set's own folder; a folder's photos
    are absolute paths inside that folder (checked by name: they may have moved since)."""
    names = {s.preview for s in meta.styles}
    photos = set(meta.image_names).union(*(s.images for s in meta.styles))
    if meta.source == "data-free":
        names |= photos
    else:
        source = meta.source[len("folder:"):]
        outside = [p for p in photos if os.path.normpath(p) != p
                   or not Path(p).is_relative_to(source) or p == source]
        if outside:
            raise ValueError(f"image {outside[0][:120]!r} is not a photo of {source}")
    for name in sorted(names):
        _check_png(version, name)


def _check_png(version: Path, name: str) -> None:
    path = version / name
    if Path(name).name != name or name.startswith(".") or path.is_symlink() or not path.is_file():
        raise ValueError(f"{name[:120]!r} is not a file of the styles' folder")
    try:
        with Image.open(path) as img:
            if img.format != "PNG" or img.width * img.height > MAX_STORED_PIXELS:
                raise ValueError(f"{name} is not a preview-size PNG")
            img.load()
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{name} cannot be decoded ({exc})") from None


def list_classes(backbone: str = DEFAULT_BACKBONE, root: Path | None = None) -> list[str]:
    """Class folders with stored styles for a backbone."""
    base = (root or models_dir()) / "styles" / backbone
    return sorted(p.name for p in base.iterdir() if p.is_dir() and _has_styles(p)) if base.is_dir() else []


def _has_styles(folder: Path) -> bool:
    try:
        version = atomic.current(folder)
    except ValueError:
        return True  # damaged: listed, and its load says so
    return version is not None and (version / "styles.json").is_file()


def _save(ss: StyleSet, previews: Sequence[Image.Image], extra_images: dict[str, Image.Image],
          cancel: Cancel | None = None) -> StyleSet:
    """Write the set as a new version of the class's styles and switch to it in one step
    (`atomic.replacing`); `ss.root` is the class folder, and becomes the version's folder."""
    with atomic.replacing(ss.root, "styles", cancel) as version:
        for key in ARRAYS:
            np.save(version / f"{key}.npy", getattr(ss, key), allow_pickle=False)
        atomic.fault_point("styles:arrays")
        for style, img in zip(ss.styles, previews, strict=True):
            img.save(version / style.preview)
        for fname, img in extra_images.items():
            img.save(version / fname)
        atomic.fault_point("styles:images")
        meta = {"format": FORMAT, "class": ss.cls, "index": ss.index, "backbone": ss.backbone,
                "source": ss.source, "image_names": ss.image_names,
                "styles": [s.__dict__ for s in ss.styles], **ss.meta}
        (version / "styles.json").write_text(json.dumps(meta, indent=2) + "\n")
    ss.root = version
    return ss


# ---------------------------------------------------------------------------------- learning

def fc7_features(net: Backbone, images: torch.Tensor, batch: int = BATCH,
                 cancel: Cancel | None = None) -> np.ndarray:
    """(N, 3, H, W) images -> (N, units) clean fc7 features (non-negative)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            check(cancel, "while computing features")
            x = images[i:i + batch].to(net.device)
            if x.shape[-1] != net.input_size:
                x = F.interpolate(x, size=net.input_size, mode="bilinear", antialias=True)
            out.append(net(x).fc7.clamp_min(0).cpu())
    return torch.cat(out).numpy().astype(np.float32)


def factorize(features: np.ndarray, topics: int, seed: int,
              cancel: Cancel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn NMF: features (N, U) ~ loadings (N, K) @ directions (K, U).

    A fit cannot be interrupted, so a large one runs as calls of about a quarter second, each
    starting where the last stopped (its W and H), with a cancel check between them; the chunk
    length depends only on the data's size, so a seed gives the same topics every time. Small
    fits (every folder of a few hundred photos) are one call, as before.
    Directions are returned with unit norm (loadings rescaled to match), ordered by the share
    of feature mass each explains.
    """
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    chunk = max(1, min(NMF_ITERS, int(NMF_CHUNK_WORK / features.size / topics)))
    w = h = None
    done = 0
    while done < NMF_ITERS:
        check(cancel, "while factorising (NMF)")
        step = min(chunk, NMF_ITERS - done)
        model = NMF(n_components=topics, init="nndsvda" if w is None else "custom",
                    random_state=seed, max_iter=step, tol=1e-5)
        with warnings.catch_warnings():  # a chunk ending before convergence is not a warning
            warnings.simplefilter("ignore", ConvergenceWarning)
            w = model.fit_transform(features, W=w, H=h)
        h, done = model.components_, done + step
        if model.n_iter_ < step:  # converged within the chunk
            break
    norms = np.linalg.norm(h, axis=1).clip(1e-12)
    h, w = h / norms[:, None], w * norms[None, :]
    order = np.argsort(-w.sum(0))
    return w[:, order].astype(np.float32), h[order].astype(np.float32)


def topic_masks(directions: np.ndarray, share: float = 0.5) -> np.ndarray:
    """m7 of each topic: its largest units that together carry `share` of the topic's mass.

    A fixed share (rather than the paper's absolute threshold of 1 on AlexNet) keeps the mask
    meaningful on any backbone's feature scale.
    """
    masks = np.zeros(directions.shape, dtype=bool)
    for k, h in enumerate(directions):
        order = np.argsort(-h)
        cum = np.cumsum(h[order]) / max(float(h.sum()), 1e-12)
        keep = order[: int(np.searchsorted(cum, share)) + 1]
        masks[k, keep] = True
    return masks


def sample_data_free(net: Backbone, index: int, settings: DataFreeSettings, seed: int,
                     progress: Progress | None = None, cancel: Cancel | None = None) -> torch.Tensor:
    """N class visualisations in one batch, each through its own random m6-7 dropout pathway."""
    n = settings.samples
    members = [net.dropout_masks(seed * 1000 + i) for i in range(n)]
    masks = Masks(**{key: torch.stack([getattr(m, key) for m in members])
                     for key in ("m6", "m7") if getattr(members[0], key) is not None})
    return visualize_members(net, index, masks, n, settings.size, settings=settings.visualization(),
                             seed=seed, progress=progress, cancel=cancel)


def folder_images(folder: str | Path, cancel: Cancel | None = None) -> list[Path]:
    """The image files of a folder, recursively, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{folder}: not a folder")
    paths = image_files(root, cancel)
    if not paths:
        raise InputError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths


def read_images(paths: Sequence[Path], size: int, label: str = "",
                cancel: Cancel | None = None,
                progress: Progress | None = None) -> tuple[list[Path], torch.Tensor]:
    """The readable ones of `paths` at network size (unreadable files are skipped, not fatal:
    a folder of photos often holds a broken one)."""
    kept, tensors = [], []
    for i, p in enumerate(paths):
        check(cancel, "while reading photos")
        report(progress, i / len(paths), f"reading photo {i + 1}/{len(paths)}")
        try:
            tensors.append(to_tensor(fit_square(load_image(p), size)))
            kept.append(p)
        except InputError:
            continue
    if not kept:
        raise InputError(f"{label}none of the {len(paths)} images could be read")
    return kept, torch.cat(tensors)


def _data_free_images(net: Backbone, index: int, settings: DataFreeSettings, seed: int,
                      progress: Progress | None, cancel: Cancel | None) -> tuple[torch.Tensor, dict]:
    """Samples of the class through random dropout pathways, and what to store of them."""
    if settings.samples < 2:
        raise InputError("--samples must be at least 2")
    report(progress, 0.0, "sampling pathways")
    images = sample_data_free(net, index, settings, seed, scaled(progress, 0.0, 0.5), cancel)
    names = [f"sample_{i:02d}.png" for i in range(len(images))]
    return images, {"names": names, "source": "data-free", "samples": settings.samples,
                    "extra": {n: to_pil(img[None]) for n, img in zip(names, images, strict=True)}}


def _folder_images(net: Backbone, index: int, name: str, folder: str | Path, keep_all: bool,
                   min_rank: int, progress: Progress | None,
                   cancel: Cancel | None) -> tuple[torch.Tensor, dict]:
    """The folder's photos that the network ranks among its top `min_rank` for the class (all
    with `keep_all`), and what to store of them (the dropped ones are listed)."""
    report(progress, 0.0, "listing photos")
    paths, images = read_images(folder_images(folder, cancel), net.input_size, f"{folder}: ",
                                cancel, scaled(progress, 0.0, 0.3))
    root = Path(folder).resolve()
    paths = [root / p.relative_to(folder) for p in paths]  # inside the folder, as stored
    logits = []
    with torch.no_grad():
        for i in range(0, len(images), BATCH):
            check(cancel, "while classifying photos")
            report(progress, 0.3 + 0.2 * i / len(images), f"classifying photo {i + 1}/{len(images)}")
            logits.append(net(images[i:i + BATCH].to(net.device)).logits.cpu())
    logits = torch.cat(logits)
    rank = (logits > logits[:, index:index + 1]).sum(1)
    inside = ((rank < min_rank) | keep_all).tolist()
    kept = [p for p, ok in zip(paths, inside, strict=True) if ok]
    if len(kept) < 2:
        raise InputError(f"{folder}: only {len(kept)} image(s) look like '{name}' (top-{min_rank}); "
                         f"add photos of the class or pass --keep-all")
    return images[torch.tensor(inside)], {
        "names": [str(p) for p in kept], "source": f"folder:{root}", "extra": {},
        "dropped": [str(p) for p, ok in zip(paths, inside, strict=True) if not ok]}


def draw_preview(net: Backbone, index: int, m7: torch.Tensor, start: torch.Tensor,
                 settings: PreviewSettings = PreviewSettings(), seed: int = 0,
                 progress: Progress | None = None, cancel: Cancel | None = None) -> torch.Tensor:
    """A style's preview (1, 3, PREVIEW_SIZE, PREVIEW_SIZE): the class through its pathway `m7`,
    drawn from `start` (the style's top image) as an insert's canvas is drawn."""
    return visualize_object(with_second_network(net, settings.second_network), index,
                            (PREVIEW_SIZE, PREVIEW_SIZE), photo_amplitude(PREVIEW_SIZE),
                            masks=Masks(m7=m7), iters=settings.iters, lr=settings.lr, seed=seed,
                            max_gain=settings.gain, whole=settings.whole, start=start,
                            progress=progress, cancel=cancel).image


def _styles_of(net: Backbone, index: int, images: torch.Tensor, names: list[str], k: int,
               features: np.ndarray, seed: int, settings: PreviewSettings,
               progress: Progress | None, cancel: Cancel | None):
    """NMF topics of the images' fc7 features, each with its m7 mask, its nearest images and
    a preview (the class through that pathway, drawn from the nearest image)."""
    loadings, directions = factorize(features, k, seed, cancel)
    masks = topic_masks(directions)
    mass = loadings.sum(0) / max(float(loadings.sum()), 1e-12)
    previews, styles = [], []
    for t in range(k):
        order = list(np.argsort(-loadings[:, t]))
        top = [i for i in order if loadings[i, t] > 0][:8] or order[:1]
        drawn = draw_preview(net, index, torch.from_numpy(masks[t].astype(np.float32)),
                             images[top[0]][None], settings, seed,
                             scaled(progress, t / k, (t + 1) / k, f"preview {t + 1}/{k}: "), cancel)
        previews.append(to_pil(drawn))
        styles.append(Style(id=t, weight=float(mass[t]), images=[names[i] for i in top],
                            units=int(masks[t].sum()), preview=f"preview_{t}.png",
                            preview_prob=class_prob(net, drawn, index)))
    return styles, directions, masks, loadings, previews


def learn(
    cls: str | int,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    *,
    folder: str | Path | None = None,
    data_free: bool = False,
    topics: int | None = None,
    samples: int | None = None,
    keep_all: bool = False,
    min_rank: int = 5,
    seed: int = 0,
    data_free_settings: DataFreeSettings = DataFreeSettings(),
    preview_settings: PreviewSettings = PreviewSettings(),
    root: Path | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> StyleSet:
    """Learn and store the styles of a class, from a folder of photos or data-free.

    From a folder, images the network does not rank among its top `min_rank` classes for `cls`
    are dropped (listed in `meta["dropped"]`): NMF would otherwise spend topics on other
    classes, and a style is meant to be a variety *of this class*. `keep_all` keeps them.
    """
    if (folder is None) == (not data_free):
        raise InputError("give either a folder of photos (--from FOLDER) or --data-free")
    net = backbone if isinstance(backbone, Backbone) else load_backbone(backbone)
    index, name = resolve_class(cls, net.categories)
    t0 = time.perf_counter()
    if data_free:
        settings = data_free_settings if samples is None else replace(data_free_settings, samples=samples)
        images, found = _data_free_images(net, index, settings, seed, progress, cancel)
    else:
        images, found = _folder_images(net, index, name, folder, keep_all, min_rank, progress, cancel)
    k = topics or 4
    if k < 1 or k > len(images):
        raise InputError(f"--topics must be between 1 and the number of images ({len(images)})")
    report(progress, 0.5, "fc7 features and their factorisation (NMF)")
    features = fc7_features(net, images, cancel=cancel)
    styles, directions, masks, loadings, previews = _styles_of(
        net, index, images, found["names"], k, features, seed, preview_settings,
        scaled(progress, 0.55, 1.0), cancel)
    meta = {"seed": seed, **{key: found[key] for key in ("samples", "dropped") if key in found},
            "seconds": time.perf_counter() - t0}
    ss = StyleSet(name, index, net.name, found["source"], styles, directions, masks, features,
                  loadings, found["names"], class_dir(index, name, net.name, root), meta)
    report(progress, 1.0, "saving")
    return _save(ss, previews, found["extra"], cancel)


def is_learned(cls: str | int, backbone: str = DEFAULT_BACKBONE, root: Path | None = None) -> bool:
    """Whether the class has styles to load: sound ones, or damaged ones learned from a folder
    (their load says which command relearns them). Damaged data-free styles count as not
    learned, so whoever asks learns them again (and the log says why)."""
    try:
        load(cls, backbone, root)
    except Damaged as exc:
        if exc.rebuildable:
            log.warning("%s; they are learned again when next needed", exc)
        return not exc.rebuildable
    except InputError:
        return False
    return True


def load_or_learn(cls: str | int, backbone: str | Backbone = DEFAULT_BACKBONE, *, seed: int = 0,
                  root: Path | None = None, progress: Progress | None = None,
                  cancel: Cancel | None = None) -> StyleSet:
    """Stored styles, or data-free ones learned now and cached (the offline default; also
    when stored data-free ones are damaged)."""
    name = backbone.name if isinstance(backbone, Backbone) else backbone
    index, _ = resolve_class(cls, imagenet_classes())
    if is_learned(index, name, root):
        return load(index, name, root)
    return learn(index, backbone, data_free=True, seed=seed, root=root, progress=progress,
                 cancel=cancel)


def top_image(ss: StyleSet, k: int, longest: int = 1024) -> torch.Tensor:
    """Style `k`'s top image (the one loading most on it) at its own size, at most `longest`
    px: (1, 3, H, W), where an insert with `style_start` draws its object from."""
    image = load_image(ss.image_paths(k, 1)[0])
    image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return to_tensor(image)


def images_tensor(paths: Sequence[Path], size: int) -> torch.Tensor:
    return torch.cat([to_tensor(fit_square(load_image(p), size)) for p in paths])
