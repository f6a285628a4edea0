"""Patch database: each 1x1 pool5 cell feature paired with the centre patch of its support.

Paper Sec. 3: AlexNet pool5 cells see 195x195 pixels at stride 32; the pair keeps the centre
67x67 (about two strides), which is what the cell's feature describes best. Every backbone here
has stride 32 at 224 px, so `Backbone.cell_patch` = 67 is the same derivation for all three.

Images are cut into network-size crops over several scales and flips, so the geometry of every
cell is exact. Arrays are .npy (memory-mapped when read, no pickle) plus a faiss index file:
an exact flat L2 index up to `IVFPQ_THRESHOLD` pairs, IVF-PQ above it so a 1M-pair database
fits in memory (its candidates re-ranked with the exact memory-mapped features; measured in
tests/bench/bench_patchdb.py). A database is one crash-safe set (`atomic`), verified whole when
first loaded; a damaged one is rebuilt from its recorded photos and settings when it can be.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, ValidationError

from . import atomic
from .backbones import Backbone
from .errors import InputError, StylefillError
from .images import load_image, to_tensor
from .optvis.patch_prior import normalize_sources
from .optvis.regularizers import Whitening
from .patchdb_index import INDEX_FILE, unit_rows
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
CHECK_ROWS = 100_000  # feature rows checked for NaN at a time
MERGED = ("features", "patches", "sources")  # the per-pair arrays a shard holds
MOMENTS = "moments.npz"  # a shard's pixel moments (colour.npz is made of their sum)

log = logging.getLogger(__name__)


def db_root(backbone: str) -> Path:
    return models_dir() / "patchdb" / backbone


def image_files(folder: Path, cancel: Cancel | None = None) -> list[Path]:
    """The image files under a folder, sorted; a cancel is seen between directory entries (a
    folder like /usr holds hundreds of thousands)."""
    found = []
    for f in folder.rglob("*"):
        check(cancel, "while listing photos")
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
            found.append(f)
    return sorted(found)


def collect_images(inputs: Iterable[str | Path], cancel: Cancel | None = None) -> list[Path]:
    """Files and folders (searched recursively) -> sorted image paths."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += image_files(p, cancel)
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    if not found:
        raise InputError("no images found in " + ", ".join(map(str, inputs)))
    return found


def _grid(wh: tuple[int, int], size: int, scale: float) -> tuple[tuple[int, int], list, list]:
    """A photo of size `wh` at one scale: its resized size and the crops' x and y offsets."""
    short = max(size, round(size * scale))
    w, h = wh
    f = short / min(w, h)
    rw, rh = max(size, round(w * f)), max(size, round(h * f))
    step = max(1, size * 3 // 4)
    xs = list(range(0, rw - size + 1, step)) or [0]
    ys = list(range(0, rh - size + 1, step)) or [0]
    if xs[-1] != rw - size:
        xs.append(rw - size)
    if ys[-1] != rh - size:
        ys.append(rh - size)
    return (rw, rh), xs, ys


def network_crops(img: Image.Image, size: int, scales: Sequence[float], flips: bool) -> list:
    """Square crops of `size` px tiling the photo at each scale (shorter side = size * scale)."""
    crops = []
    for scale in scales:
        resized_wh, xs, ys = _grid(img.size, size, scale)
        resized = img.resize(resized_wh, Image.Resampling.BICUBIC)
        for y in ys:
            for x in xs:
                crop = resized.crop((x, y, x + size, y + size))
                crops.append(crop)
                if flips:
                    crops.append(ImageOps.mirror(crop))
    return crops


def crop_count(wh: tuple[int, int], size: int, scales: Sequence[float], flips: bool) -> int:
    """len(network_crops(...)) of a photo of size `wh`, without resizing it."""
    grids = [_grid(wh, size, scale) for scale in scales]
    return sum(len(xs) * len(ys) for _, xs, ys in grids) * (2 if flips else 1)


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


def _gather(inputs: Sequence[str | Path | Image.Image], labels: Sequence[str] | None,
            cancel: Cancel | None) -> tuple[list[Image.Image | Path], list[str]]:
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
        for p in collect_images(paths, cancel):
            sources.append(Path(p))
            names.append(str(p))
    return sources, names


def _image(source: Image.Image | Path) -> Image.Image:
    return source if isinstance(source, Image.Image) else load_image(source)


def count_crops(sources: Sequence[Image.Image | Path], size: int, scales: Sequence[float],
                flips: bool, progress: Progress | None = None, cancel: Cancel | None = None) -> int:
    """How many crops the photos give (each photo read, none resized)."""
    total = 0
    for i, source in enumerate(sources):
        check(cancel, "while reading the photos")
        report(progress, 0.0, f"reading photo {i + 1}/{len(sources)}")
        total += crop_count(_image(source).size, size, scales, flips)
    return total


def merge(shards: Sequence[Path], folder: Path, cancel: Cancel | None = None,
          rows: int = 20_000) -> tuple[int, Moments]:
    """Shards (folders `extract` wrote, in photo order) concatenated into one set of arrays in
    `folder`, each crop's `sources` number shifted by the crops before its shard; every shard
    folder is removed once copied. Returns the crops and the summed pixel moments."""
    arrays = {k: [np.load(s / f"{k}.npy", mmap_mode="r") for s in shards] for k in MERGED}
    out = {k: np.lib.format.open_memmap(folder / f"{k}.npy", "w+", parts[0].dtype,
                                        (sum(len(a) for a in parts), *parts[0].shape[1:]))
           for k, parts in arrays.items()}
    stats, moments, row, crop = [], Moments(np.zeros(3), np.zeros((3, 3)), 0), 0, 0
    for i, shard in enumerate(shards):
        n = len(arrays["features"][i])
        for start in range(0, n, rows):
            check(cancel, "while merging the shards")
            part = slice(start, min(n, start + rows))
            at = slice(row + part.start, row + part.stop)
            out["features"][at] = arrays["features"][i][part]
            out["patches"][at] = arrays["patches"][i][part]
            out["sources"][at] = arrays["sources"][i][part] + crop
        stats.append(np.load(shard / "stats.npy"))
        moments += Moments.read(shard / MOMENTS)
        row, crop = row + n, crop + len(stats[-1])
        for k in arrays:
            arrays[k][i] = None  # close the shard's memory maps before removing it
        shutil.rmtree(shard)
    for array in out.values():
        array.flush()
    del out
    np.save(folder / "stats.npy", np.concatenate(stats) if stats else np.zeros((0, 4, 3), np.float32))
    return crop, moments


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

    def close(self) -> Moments:
        """Flush and close the arrays, save the per-crop statistics; returns the pixel moments
        (what colour.npz is made of, summed over shards by `merge`)."""
        for array in (self.feats, self.patches, self.sources):
            array.flush()
        del self.feats, self.patches, self.sources  # close the memory maps
        np.save(self.folder / "stats.npy", self.stats)
        return Moments(self.pixel_sum, self.pixel_outer, self.pixel_n)


@dataclass
class Moments:
    """Sums over pixels: of RGB (3,), of its outer products (3, 3), and their count."""

    sum: np.ndarray
    outer: np.ndarray
    n: int

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.sum + other.sum, self.outer + other.outer, self.n + other.n)

    def save(self, path: Path) -> None:
        np.savez(path, sum=self.sum, outer=self.outer, n=self.n)

    @classmethod
    def read(cls, path: Path) -> Moments:
        with np.load(path) as data:
            return cls(data["sum"], data["outer"], int(data["n"]))


def seal(folder: Path, moments: Moments, cancel: Cancel | None) -> str:
    """The colour statistics and the index of a folder whose arrays are written; returns the
    index's type name."""
    mean = moments.sum / moments.n
    np.savez(folder / "colour.npz", mean=mean, cov=moments.outer / moments.n - np.outer(mean, mean))
    return _index_in_child(folder, cancel)


def _index_in_child(folder: Path, cancel: Cancel | None) -> str:
    """Build index.faiss in a child process (`patchdb_index`), killed at once on a cancel
    (faiss's training cannot be interrupted); returns the index's type name."""
    proc = subprocess.Popen([sys.executable, "-m", "stylefill.patchdb_index", str(folder),
                             str(IVFPQ_THRESHOLD)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while True:
        try:
            out, err = proc.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                proc.kill()
                proc.communicate()
                check(cancel, "while indexing the patch database")
    if proc.returncode:
        detail = err.decode(errors="replace").strip()[-800:] or f"exit status {proc.returncode}"
        raise StylefillError(f"indexing the patch database failed ({detail})")
    return out.decode().strip()


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

    It is written as a new version of the database's folder and switched to when complete
    (`atomic.replacing`), so a cancelled, failed or killed build leaves the previous database
    (if any) as it was.
    """
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"'{name}' is not a valid database name")
    images, names = _gather(inputs, labels, cancel)
    patch_px = patch_px or backbone.cell_patch
    total_crops = count_crops(images, backbone.input_size, scales, flips, progress, cancel)
    with atomic.replacing(db_root(backbone.name) / name, "patchdb", cancel) as version:
        moments = extract(images, backbone, version, total_crops, scales, flips, patch_px, batch,
                          progress, cancel)
        index = seal(version, moments, cancel)
        atomic.fault_point("patchdb:index")
        write_meta(version, name, backbone, names, total_crops, scales, flips, patch_px, index)
    return load(backbone.name, name)


def extract(photos: Sequence[Image.Image | Path], backbone: Backbone, folder: Path, crops: int,
            scales: Sequence[float], flips: bool, patch_px: int, batch: int = 16,
            progress: Progress | None = None, cancel: Cancel | None = None) -> Moments:
    """The arrays of `crops` crops of the photos (features, patches, sources, stats) written into
    `folder`, photo after photo; returns their pixel moments. A whole build's, or one shard's."""
    m, c = backbone.map_size(backbone.input_size), backbone.feature_channels
    arrays = _Arrays(folder, crops * m * m, crops, c, patch_px)
    for img in photos:
        _add_photo(arrays, _image(img), backbone, scales, flips, batch, crops, progress, cancel)
    return arrays.close()


def write_meta(version: Path, name: str, backbone: Backbone, names: Sequence[str], crops: int,
               scales: Sequence[float], flips: bool, patch_px: int, index: str) -> None:
    size = backbone.input_size
    m = backbone.map_size(size)
    meta = {
        "name": name, "backbone": backbone.name, "weights": backbone.weights_name,
        "count": crops * m * m, "channels": backbone.feature_channels, "map_size": m,
        "input_size": size, "cell_patch": backbone.cell_patch, "patch_px": patch_px,
        "scales": list(scales), "flips": flips, "index": index, "metric": "cosine",
        "images": list(names), "crops": crops, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (version / "meta.json").write_text(json.dumps(meta, indent=1))


def _add_photo(arrays: _Arrays, img: Image.Image, backbone: Backbone, scales: Sequence[float],
               flips: bool, batch: int, total_crops: int, progress: Progress | None,
               cancel: Cancel | None) -> None:
    """One photo's crops: their pool5 cells and centre patches, a batch at a time."""
    size, patch = backbone.input_size, backbone.cell_patch
    m, c = backbone.map_size(size), backbone.feature_channels
    crops = network_crops(img, size, scales, flips)
    for start in range(0, len(crops), batch):
        check(cancel, "while building the patch database")
        x = torch.cat([to_tensor(cr) for cr in crops[start : start + batch]])
        with torch.no_grad():
            pool5 = backbone.features(backbone.normalize(x.to(backbone.device))).cpu()
        pp = cell_patches(x, m, patch)
        if arrays.patches.shape[1] != patch:
            pp = F.interpolate(pp, size=arrays.patches.shape[1:3], mode="area")
        arrays.add(x, pool5.permute(0, 2, 3, 1).reshape(-1, c), pp)
        atomic.fault_point("patchdb:rows")
        report(progress, arrays.crop_no / total_crops,
               f"patch pairs from crop {arrays.crop_no}/{total_crops}")


class Damaged(InputError):
    """A database that is not what a build writes; `recipe` is its meta.json when that is
    readable (the photos and settings to rebuild it from)."""

    def __init__(self, message: str, recipe: dict | None):
        super().__init__(message)
        self.recipe = recipe


class _Meta(BaseModel):
    """meta.json as a build writes it: what the arrays' shapes and a rebuild depend on."""

    model_config = ConfigDict(strict=True, extra="allow")
    name: str
    backbone: str
    count: int
    channels: int
    crops: int
    map_size: int
    input_size: int
    cell_patch: int
    patch_px: int
    scales: list[float]
    flips: bool
    images: list[str]


_SOUND: set[tuple] = set()  # versions verified whole in this process (by their files' stats)


def load(backbone: str, name: str) -> PatchDB:
    """The database, verified whole the first time this process loads its files: every
    array's dtype, shape and range, NaN-free features and statistics, the index's size. A
    missing one raises InputError, a damaged one `Damaged`, both saying how to build it."""
    folder = db_root(backbone) / name
    try:
        db = atomic.read(folder, lambda version: _verified(version, backbone, name))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise Damaged(f"patch database '{name}' at {folder} is damaged ({_reason(exc)}); rebuild "
                      f"it with: stylefill patchdb build ... --name {name}", _recipe(folder)) from None
    if db is None:
        raise InputError(f"no patch database '{name}' for backbone {backbone}; "
                         f"build one with: stylefill patchdb build IMAGES... --name {name}")
    if not isinstance(db.index, faiss.IndexFlat):
        faiss.extract_index_ivf(db.index).nprobe = NPROBE
    return db


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"meta.json: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)


def _verified(version: Path | None, backbone: str, name: str) -> PatchDB | None:
    if version is None or not (version / "meta.json").is_file():
        return None
    raw = (version / "meta.json").read_bytes()
    meta = _Meta.model_validate_json(raw)
    if meta.backbone != backbone or meta.count != meta.crops * meta.map_size ** 2:
        raise ValueError(f"meta.json describes {meta.count} pairs of {meta.backbone}")
    db = PatchDB(path=version, meta=json.loads(raw),
                 features=np.load(version / "features.npy", mmap_mode="r"),
                 patches=np.load(version / "patches.npy", mmap_mode="r"),
                 sources=np.load(version / "sources.npy", mmap_mode="r"),
                 stats=np.load(version / "stats.npy"),
                 index=faiss.read_index(str(version / INDEX_FILE)))
    stamp = (str(version), *((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                             for f in sorted(version.iterdir())))
    if stamp not in _SOUND:
        _check_arrays(db, meta)
        _colour(version)
        _SOUND.add(stamp)
    return db


def _check_arrays(db: PatchDB, meta: _Meta) -> None:
    n, p = meta.count, meta.patch_px
    expected = {"features": (np.float16, (n, meta.channels)), "patches": (np.uint8, (n, p, p, 3)),
                "sources": (np.int32, (n,)), "stats": (np.float32, (meta.crops, 4, 3))}
    for key, (dtype, shape) in expected.items():
        a = getattr(db, key)
        if a.dtype != dtype or a.shape != shape:
            raise ValueError(f"{key}.npy is {a.dtype} {a.shape}, expected {np.dtype(dtype)} {shape}")
    if db.index.ntotal != n or db.index.d != meta.channels:
        raise ValueError(f"the index holds {db.index.ntotal} of {n} pairs; it is incomplete")
    if n and not (0 <= int(db.sources.min()) and int(db.sources.max()) < meta.crops):
        raise ValueError("sources.npy names crops that do not exist")
    if not np.isfinite(db.stats).all() or not all(
            np.isfinite(db.features[i : i + CHECK_ROWS]).all() for i in range(0, n, CHECK_ROWS)):
        raise ValueError("features or statistics hold NaN or infinite values")


def _colour(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The database's pixel mean (3,) and covariance (3, 3), finite."""
    with np.load(folder / "colour.npz") as data:
        mean, cov = data["mean"], data["cov"]
    if mean.shape != (3,) or cov.shape != (3, 3) or not (np.isfinite(mean).all()
                                                         and np.isfinite(cov).all()):
        raise ValueError("colour.npz is not a finite mean and covariance of RGB")
    return mean, cov


def _recipe(folder: Path) -> dict | None:
    """A damaged database's meta.json, if it is readable: what to rebuild it from."""
    try:
        version = atomic.current(folder)
        return _Meta.model_validate_json((version / "meta.json").read_bytes()).model_dump()
    except (OSError, ValueError, TypeError):
        return None


def list_dbs(backbone: str | None = None) -> list[dict]:
    roots = [db_root(backbone)] if backbone else sorted((models_dir() / "patchdb").glob("*"))
    found = []
    for root in roots:
        for folder in sorted(root.iterdir()) if root.is_dir() else ():
            try:
                version = atomic.current(folder)
                if version is None or not (version / "meta.json").exists():
                    continue
                found.append(json.loads((version / "meta.json").read_text()))
            except (OSError, ValueError):
                found.append({"name": folder.name, "backbone": root.name, "damaged": True})
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


def open_db(backbone: Backbone, name: str = AUTO, progress: Progress | None = None,
            cancel: Cancel | None = None) -> PatchDB:
    """The named database; AUTO takes the first preset built for this backbone, else the
    embedded default (built on first use). A damaged one is rebuilt (`rebuild`)."""
    if name == AUTO:
        name = next((p for p in PRESETS if _has_db(backbone.name, p)), DEFAULT_NAME)
    if name == DEFAULT_NAME:
        return default_db(backbone, progress, cancel)
    try:
        return load(backbone.name, name)
    except Damaged as exc:
        return rebuild(backbone, name, exc, progress, cancel)


def _has_db(backbone: str, name: str) -> bool:
    try:
        version = atomic.current(db_root(backbone) / name)
    except ValueError:
        return True  # damaged: opened, and rebuilt
    return version is not None and (version / "meta.json").is_file()


def default_db(backbone: Backbone, progress: Progress | None = None,
               cancel: Cancel | None = None) -> PatchDB:
    """The embedded default database, built on first use from photos shipped in packages (and
    again when it is damaged)."""
    try:
        return load(backbone.name, DEFAULT_NAME)
    except Damaged as exc:
        log.warning("%s; rebuilding it from the packaged photos", exc)
        report(progress, 0.0, f"rebuilding the damaged default patch database ({exc})")
    except InputError:
        pass
    photos = packaged_photos()
    return build(list(photos.values()), backbone, DEFAULT_NAME, progress=progress,
                 labels=list(photos), cancel=cancel)


def rebuild(backbone: Backbone, name: str, damaged: Damaged, progress: Progress | None = None,
            cancel: Cancel | None = None) -> PatchDB:
    """A damaged database built again from the photos and settings its meta.json recorded;
    when those are unreadable or gone, the damage is reported (with the command to rebuild)."""
    recipe = damaged.recipe
    if recipe is None or not all(Path(p).is_file() for p in recipe["images"]):
        raise damaged
    log.warning("%s; rebuilding it from its %d photos", damaged, len(recipe["images"]))
    report(progress, 0.0, f"rebuilding the damaged patch database '{name}'")
    return build(recipe["images"], backbone, name, scales=recipe["scales"], flips=recipe["flips"],
                 patch_px=recipe["patch_px"], progress=progress, cancel=cancel)


def colour_whitening(db: PatchDB) -> Whitening:
    """The colour ZCA of the database's pixels (paper Sec. 5 whitening)."""
    try:
        mean, cov = _colour(db.path)
    except (OSError, ValueError) as exc:
        raise InputError(f"patch database at {db.path} is damaged ({exc}); rebuild it") from None
    return Whitening.from_moments(torch.from_numpy(mean), torch.from_numpy(cov))
