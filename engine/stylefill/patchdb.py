"""Patch database: each 1x1 pool5 cell feature paired with the centre patch of its support.

Paper Sec. 3: AlexNet pool5 cells see 195x195 pixels at stride 32; the pair keeps the centre
67x67 (about two strides), which is what the cell's feature describes best. Every backbone here
has stride 32 at 224 px, so `Backbone.cell_patch` = 67 is the same derivation for all three.

Images are cut into network-size crops over several scales and flips, so the geometry of every
cell is exact. Arrays are .npy (memory-mapped when read, no pickle) plus a faiss index file:
an exact flat L2 index up to `IVFPQ_THRESHOLD` pairs, IVF-PQ above it so a 1M-pair database
fits in memory (its candidates re-ranked with the exact memory-mapped features; measured in
tests/bench/bench_patchdb.py).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .backbones import Backbone
from .errors import InputError
from .images import load_image, to_tensor
from .optvis.patch_prior import normalize_sources
from .optvis.regularizers import Whitening
from .paths import models_dir
from .progress import Cancel, Progress, check, report
from .sample_photos import packaged_photos

IVFPQ_THRESHOLD = 200_000
NPROBE = 64   # IVF lists searched per query
REFINE = 30   # IVF-PQ candidates per wanted neighbour, re-ranked by exact cosine
FEATHER_FLOOR = 0.05  # the feather window's weight at a patch's very edge
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_NAME = "default"
DEFAULT_SCALES = (1.0, 1.5, 2.0)


def db_root(backbone: str) -> Path:
    return models_dir() / "patchdb" / backbone


def collect_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Files and folders (searched recursively) -> sorted image paths."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    if not found:
        raise InputError("no images found in " + ", ".join(map(str, inputs)))
    return found


def network_crops(img: Image.Image, size: int, scales: Sequence[float], flips: bool) -> list:
    """Square crops of `size` px tiling the photo at each scale (shorter side = size * scale)."""
    crops = []
    for scale in scales:
        short = max(size, round(size * scale))
        w, h = img.size
        f = short / min(w, h)
        resized = img.resize((max(size, round(w * f)), max(size, round(h * f))),
                             Image.Resampling.BICUBIC)
        rw, rh = resized.size
        step = max(1, size * 3 // 4)
        xs = list(range(0, rw - size + 1, step)) or [0]
        ys = list(range(0, rh - size + 1, step)) or [0]
        if xs[-1] != rw - size:
            xs.append(rw - size)
        if ys[-1] != rh - size:
            ys.append(rh - size)
        for y in ys:
            for x in xs:
                crop = resized.crop((x, y, x + size, y + size))
                crops.append(crop)
                if flips:
                    crops.append(ImageOps.mirror(crop))
    return crops


def cell_patches(x: torch.Tensor, map_size: int, patch: int) -> torch.Tensor:
    """(B, 3, S, S) crops -> (B*m*m, 3, patch, patch): the centre patch of each cell, reflect-padded."""
    s = x.shape[-1]
    half = patch // 2
    padded = F.pad(x, [half + 1] * 4, mode="reflect")
    out = []
    for i in range(map_size):
        for j in range(map_size):
            cy = int((i + 0.5) * s / map_size) + 1
            cx = int((j + 0.5) * s / map_size) + 1
            out.append(padded[:, :, cy : cy + patch, cx : cx + patch])
    return torch.stack(out, 1).flatten(0, 1)


@dataclass
class PatchDB:
    """A loaded database: memory-mapped arrays and a faiss index."""

    path: Path
    meta: dict
    features: np.ndarray   # (N, C) float16
    patches: np.ndarray    # (N, P, P, 3) uint8
    sources: np.ndarray    # (N,) int32 index into stats
    stats: np.ndarray      # (M, 4, 3) float32 RGB mean and 3x3 covariance of each source crop
    index: faiss.Index

    def __len__(self) -> int:
        return len(self.features)

    def search(self, feats: np.ndarray, k: int) -> np.ndarray:
        """(Q, C) features -> (Q, k) ids of the nearest database cells (cosine).

        IVF-PQ distances are coarse (recall@10 0.12 against exact search on a 1.35M-pair
        database), so its REFINE * k candidates are re-ranked with the exact features, read
        from the memory-mapped array (recall@10 0.84, tests/bench/bench_patchdb.py).
        """
        k = min(k, len(self))
        query = unit_rows(feats)
        if isinstance(self.index, faiss.IndexFlat):
            return self.index.search(query, k)[1]
        cand = self.index.search(query, min(len(self), k * REFINE))[1]  # -1 where lists ran out
        out = np.empty((len(query), k), np.int64)
        for start in range(0, len(query), 64):  # (64, k*REFINE, C) floats at a time
            rows = slice(start, start + 64)
            uniq, where = np.unique(cand[rows].clip(0), return_inverse=True)
            vecs = unit_rows(self.features[uniq])[where.reshape(cand[rows].shape)]
            sims = np.einsum("qc,qkc->qk", query[rows], vecs)
            sims[cand[rows] < 0] = -np.inf
            best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            out[rows] = np.take_along_axis(cand[rows], best, axis=1)
        return out

    def cell_ids(self, pool5: torch.Tensor, k: int) -> np.ndarray:
        """(1, C, m, m) map -> (m*m, k) ids of each cell's nearest database cells."""
        c = pool5.shape[1]
        return self.search(pool5[0].detach().permute(1, 2, 0).reshape(-1, c).cpu().numpy(), k)

    def neighbour_layers(self, ids: np.ndarray, map_size: int, size: int,
                         whiten: Whitening | None = None, normalized: bool = False) -> torch.Tensor:
        """(K, 3, size, size): layer r holds every cell's r-th neighbour patch at the cell's place,
        as RGB in [0, 1] or normalised by its source image's statistics. Overlapping patches are
        blended with a feathered window, so no patch edge shows as a seam."""
        m, k = map_size, ids.shape[1]
        patch = max(3, round(self.meta["cell_patch"] * size / self.meta["input_size"]))
        window = feather_window(patch)
        acc = torch.zeros(k, 3, size + 2 * patch, size + 2 * patch)
        weight = torch.zeros(1, 1, size + 2 * patch, size + 2 * patch)
        for cell, row in enumerate(ids):
            row = np.where(row >= 0, row, row.max())  # IVF may return -1 for missing neighbours
            if normalized:
                st = self.stats[self.sources[row]]
                tiles = normalize_sources(self.patches[row], st[:, 0], st[:, 1:], whiten)
            else:
                tiles = torch.from_numpy(self.patches[row].astype(np.float32) / 255.0)
                tiles = tiles.permute(0, 3, 1, 2)
            tiles = F.interpolate(tiles, size=(patch, patch), mode="bilinear", align_corners=False)
            i, j = divmod(cell, m)
            cy = round((i + 0.5) * size / m) - patch // 2 + patch
            cx = round((j + 0.5) * size / m) - patch // 2 + patch
            acc[:, :, cy : cy + patch, cx : cx + patch] += tiles * window
            weight[:, :, cy : cy + patch, cx : cx + patch] += window
        acc = acc[:, :, patch:-patch, patch:-patch]
        weight = weight[:, :, patch:-patch, patch:-patch]
        fill = acc.sum((2, 3), keepdim=True) / weight.sum().clamp_min(1)
        return torch.where(weight > 0, acc / weight.clamp_min(1e-6), fill)

    def knn_image(self, pool5: torch.Tensor, size: int, k: int = 10) -> tuple[torch.Tensor, np.ndarray]:
        """Paper's "[8]+[7]" initial image: the k-NN patches of each cell, averaged and placed at
        its centre, feathered into their neighbours.

        Returns the (1, 3, size, size) image and the (cells, k) ids used.
        """
        ids = self.cell_ids(pool5, k)
        layers = self.neighbour_layers(ids, pool5.shape[-1], size)
        return layers.mean(0, keepdim=True).clamp(0, 1), ids

    def patches_with_stats(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The patches of `ids` at the network's scale (cell_patch px; stored smaller ones are
        resized back) with the RGB mean (N, 3) and covariance (N, 3, 3) of their crops."""
        ids = np.unique(ids[ids >= 0])
        st = self.stats[self.sources[ids]]
        patches = np.asarray(self.patches[ids])
        cell = self.meta["cell_patch"]
        if patches.shape[1] != cell:
            x = torch.from_numpy(patches).permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(cell, cell), mode="bilinear", align_corners=False)
            patches = (x.permute(0, 2, 3, 1) + 0.5).clamp(0, 255).to(torch.uint8).numpy()
        return patches, st[:, 0], st[:, 1:]


def feather_window(size: int, floor: float = FEATHER_FLOOR) -> torch.Tensor:
    """A (size, size) sine window raised to `floor` at the edges: a patch's centre counts most
    where cells overlap, and its border fades instead of ending in a seam (a box window left
    a mosaic of cell-sized blocks)."""
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    w = floor + (1 - floor) * torch.sin(torch.pi * t)
    return torch.outer(w, w)


def unit_rows(feats: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length: L2 search on them ranks by cosine, which retrieved closer
    colour layouts than raw L2 on held-out photos (docs/tuning.md)."""
    feats = np.asarray(feats, dtype=np.float32)
    return np.ascontiguousarray(feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-6))


def _make_index(dim: int, count: int, sample: np.ndarray) -> faiss.Index:
    if count <= IVFPQ_THRESHOLD:
        return faiss.IndexFlatL2(dim)
    nlist = int(4 * np.sqrt(count))
    m = next(q for q in (64, 32, 16, 8) if dim % q == 0)
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{m}")
    index.do_polysemous_training = False  # unused at search time, costs ~95 s per build
    index.train(unit_rows(sample))
    return index


def _gather(inputs: Sequence[str | Path | Image.Image],
            labels: Sequence[str] | None) -> tuple[list[Image.Image | Path], list[str]]:
    """The photos to build from (PIL images first, then the files of files and folders, read
    only when their turn comes, so hundreds of wallpaper-size photos need not fit in memory)
    and their names."""
    sources: list[Image.Image | Path] = []
    names: list[str] = []
    for i, item in enumerate(inputs):
        if isinstance(item, Image.Image):
            sources.append(item.convert("RGB"))
            names.append(labels[i] if labels else f"image{i}")
    paths = [p for p in inputs if not isinstance(p, Image.Image)]
    if paths:
        for p in collect_images(paths):
            sources.append(Path(p))
            names.append(str(p))
    return sources, names


def _image(source: Image.Image | Path) -> Image.Image:
    return source if isinstance(source, Image.Image) else load_image(source)


def _count_crops(sources: Sequence[Image.Image | Path], size: int, scales: Sequence[float],
                 flips: bool, progress: Progress | None, cancel: Cancel | None) -> int:
    total = 0
    for i, source in enumerate(sources):
        check(cancel, "while reading the photos")
        report(progress, 0.0, f"reading photo {i + 1}/{len(sources)}")
        total += len(network_crops(_image(source), size, scales, flips))
    return total


class _Arrays:
    """The database's arrays, written row by row into memory-mapped .npy files in `folder`,
    plus the statistics that are accumulated on the way (per crop, and over all pixels)."""

    def __init__(self, folder: Path, count: int, crops: int, channels: int, patch_px: int):
        self.folder = folder
        self.feats = np.lib.format.open_memmap(folder / "features.npy", "w+", np.float16,
                                               (count, channels))
        self.patches = np.lib.format.open_memmap(folder / "patches.npy", "w+", np.uint8,
                                                 (count, patch_px, patch_px, 3))
        self.sources = np.lib.format.open_memmap(folder / "sources.npy", "w+", np.int32, (count,))
        self.stats = np.zeros((crops, 4, 3), np.float32)
        self.pixel_sum, self.pixel_outer, self.pixel_n = np.zeros(3), np.zeros((3, 3)), 0
        self.row = self.crop_no = 0

    def add(self, x: torch.Tensor, cells: torch.Tensor, patches: torch.Tensor) -> None:
        """A batch of n crops (n, 3, S, S), their (n*m*m, C) cell features and centre patches."""
        n = x.shape[0]
        rows = slice(self.row, self.row + len(cells))
        self.feats[rows] = cells.numpy().astype(np.float16)
        self.patches[rows] = (patches.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
        self.sources[rows] = np.repeat(np.arange(self.crop_no, self.crop_no + n), len(cells) // n)
        centred = (x - x.mean((2, 3), keepdim=True)).flatten(2)
        crops = slice(self.crop_no, self.crop_no + n)
        self.stats[crops, 0] = x.mean((2, 3)).numpy()
        self.stats[crops, 1:] = (torch.einsum("bil,bjl->bij", centred, centred)
                                 / centred.shape[-1]).numpy()
        flat = x.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
        self.pixel_sum += flat.sum(0)
        self.pixel_outer += flat.T @ flat
        self.pixel_n += len(flat)
        self.row += len(cells)
        self.crop_no += n

    def finish(self) -> faiss.Index:
        """Flush the arrays, save the statistics, build and save the index; returns it."""
        for array in (self.feats, self.patches, self.sources):
            array.flush()
        np.save(self.folder / "stats.npy", self.stats)
        mean = self.pixel_sum / self.pixel_n
        np.savez(self.folder / "colour.npz", mean=mean,
                 cov=self.pixel_outer / self.pixel_n - np.outer(mean, mean))
        count, channels = self.feats.shape
        rng = np.random.default_rng(0)
        sample = self.feats[np.sort(rng.choice(count, min(count, 100_000), replace=False))]
        index = _make_index(channels, count, sample)
        for start in range(0, count, 50_000):
            index.add(unit_rows(self.feats[start : start + 50_000]))
        faiss.write_index(index, str(self.folder / "index.faiss"))
        del self.feats, self.patches, self.sources  # close the memory maps before the rename
        return index


def build(
    inputs: Sequence[str | Path | Image.Image],
    backbone: Backbone,
    name: str,
    scales: Sequence[float] = DEFAULT_SCALES,
    flips: bool = True,
    patch_px: int | None = None,
    batch: int = 16,
    progress: Progress | None = None,
    labels: Sequence[str] | None = None,
    cancel: Cancel | None = None,
) -> PatchDB:
    """Build and save a database from photos (paths, folders or PIL images); returns it loaded.

    It is written into a hidden sibling folder and renamed into place when complete, so a
    cancelled or failed build leaves the previous database (if any) as it was.
    """
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"'{name}' is not a valid database name")
    images, names = _gather(inputs, labels)
    size, m, c = backbone.input_size, backbone.map_size(backbone.input_size), backbone.feature_channels
    patch = backbone.cell_patch
    patch_px = patch_px or patch
    total_crops = _count_crops(images, size, scales, flips, progress, cancel)
    final = db_root(backbone.name) / name
    tmp = final.with_name(f".{name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        arrays = _Arrays(tmp, total_crops * m * m, total_crops, c, patch_px)
        for img in images:
            crops = network_crops(_image(img), size, scales, flips)
            for start in range(0, len(crops), batch):
                check(cancel, "while building the patch database")
                x = torch.cat([to_tensor(cr) for cr in crops[start : start + batch]])
                with torch.no_grad():
                    pool5 = backbone.features(backbone.normalize(x.to(backbone.device))).cpu()
                pp = cell_patches(x, m, patch)
                if patch_px != patch:
                    pp = F.interpolate(pp, size=(patch_px, patch_px), mode="area")
                arrays.add(x, pool5.permute(0, 2, 3, 1).reshape(-1, c), pp)
                report(progress, arrays.crop_no / total_crops,
                       f"patch pairs from crop {arrays.crop_no}/{total_crops}")
        index = arrays.finish()
        meta = {
            "name": name, "backbone": backbone.name, "weights": backbone.weights_name,
            "count": total_crops * m * m, "channels": c, "map_size": m, "input_size": size,
            "cell_patch": patch, "patch_px": patch_px, "scales": list(scales), "flips": flips,
            "index": type(index).__name__, "metric": "cosine", "images": names,
            "crops": total_crops, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load(backbone.name, name)


def load(backbone: str, name: str) -> PatchDB:
    path = db_root(backbone) / name
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise InputError(f"no patch database '{name}' for backbone {backbone}; "
                         f"build one with: stylefill patchdb build IMAGES... --name {name}")
    try:
        meta = json.loads(meta_file.read_text())
        db = PatchDB(
            path=path, meta=meta,
            features=np.load(path / "features.npy", mmap_mode="r"),
            patches=np.load(path / "patches.npy", mmap_mode="r"),
            sources=np.load(path / "sources.npy", mmap_mode="r"),
            stats=np.load(path / "stats.npy"),
            index=faiss.read_index(str(path / "index.faiss")),
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise InputError(f"patch database '{name}' at {path} is damaged ({exc}); rebuild it with "
                         f"stylefill patchdb build ... --name {name}") from None
    if db.index.ntotal != len(db.features):
        raise InputError(f"patch database '{name}' at {path} is incomplete; rebuild it")
    if not isinstance(db.index, faiss.IndexFlat):
        faiss.extract_index_ivf(db.index).nprobe = NPROBE
    return db


def list_dbs(backbone: str | None = None) -> list[dict]:
    roots = [db_root(backbone)] if backbone else sorted((models_dir() / "patchdb").glob("*"))
    found = []
    for root in roots:
        for meta in sorted(root.glob("*/meta.json")):
            try:
                found.append(json.loads(meta.read_text()))
            except (OSError, ValueError):
                found.append({"name": meta.parent.name, "backbone": root.name, "damaged": True})
    return found


@dataclass(frozen=True)
class Preset:
    """How a named photo set (stylefill.photo_sets) is built into a database."""

    scales: tuple[float, ...] = DEFAULT_SCALES
    flips: bool = True
    patch_px: int | None = None
    about: str = ""


PRESETS = {"open-photos": Preset(
    (1.0, 1.5), False, 32, "405 photos from Debian and PyPI packages: animals, landmarks, people, "
    "landscapes, plants, objects; about 1 GB and a few minutes to build")}
AUTO = "auto"  # the broadest database built for the backbone: a preset if one is, else the default


def open_db(backbone: Backbone, name: str = AUTO, progress: Progress | None = None) -> PatchDB:
    """The named database; AUTO takes the first preset built for this backbone, else the
    embedded default (built on first use)."""
    if name == AUTO:
        for preset in PRESETS:
            if (db_root(backbone.name) / preset / "meta.json").is_file():
                return load(backbone.name, preset)
        return default_db(backbone, progress)
    if name == DEFAULT_NAME:
        return default_db(backbone, progress)
    return load(backbone.name, name)


def default_db(backbone: Backbone, progress: Progress | None = None) -> PatchDB:
    """The embedded default database, built on first use from photos shipped in packages."""
    try:
        return load(backbone.name, DEFAULT_NAME)
    except InputError:
        photos = packaged_photos()
        return build(list(photos.values()), backbone, DEFAULT_NAME, progress=progress,
                     labels=list(photos))


def colour_whitening(db: PatchDB) -> Whitening:
    """The colour ZCA of the database's pixels (paper Sec. 5 whitening)."""
    try:
        data = np.load(db.path / "colour.npz")
    except (OSError, ValueError) as exc:
        raise InputError(f"patch database at {db.path} is damaged ({exc}); rebuild it") from None
    return Whitening.from_moments(torch.from_numpy(data["mean"]), torch.from_numpy(data["cov"]))
