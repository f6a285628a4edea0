"""The paper's Table 1 on a folder of photos: three inversion methods (and each with colour
whitening), every one judged by how close it gets to the photo (relative L2) *and* how well it
reconstructs the features (relative feature error), since a closer image at a worse feature
error only says the method did less."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from . import patchdb
from .backbones import Backbone
from .errors import InputError
from .images import load_tensor, to_pil
from .optvis import recipes
from .progress import Cancel, Progress, check, scaled
from .sheets import grid

# Table 1's rows: (prior, init) of each method, in the paper's order.
METHODS = {"[8]+rand": ("tv", "rand"), "[8]+[7]": ("tv", "patchdb"), "ours": ("patch", "patchdb")}
FIGURE_COLUMNS = ("input", "k-NN start", *METHODS)
FIGURE_PHOTOS = 10  # rows of the figure


@dataclass
class Run:
    """One method (with or without whitening) on one photo."""

    photo: str
    method: str
    whiten: bool
    relative_l2: float
    feature_error: float
    seconds: float


@dataclass
class Table1:
    runs: list[Run]
    # FIGURE_COLUMNS of each photo shown: (image, label with relative L2 and feature error)
    figure_rows: list[list[tuple[Image.Image, str]]] = field(default_factory=list)

    def values(self, method: str, whiten: bool, measure: str) -> list[float]:
        return [getattr(r, measure) for r in self.runs if r.method == method and r.whiten == whiten]

    def wins(self, better: str, worse: str, whiten: bool) -> tuple[int, int]:
        """On how many photos `better` has the lower relative L2 than `worse`, of how many."""
        a = {r.photo: r.relative_l2 for r in self.runs if r.method == better and r.whiten == whiten}
        b = {r.photo: r.relative_l2 for r in self.runs if r.method == worse and r.whiten == whiten}
        shared = a.keys() & b.keys()
        return sum(a[p] < b[p] for p in shared), len(shared)

    def markdown(self) -> str:
        """Mean, median and std of both measures per method, then per-photo wins."""
        lines = ["| method | whiten | photos | relative L2 mean | median | std | feature error "
                 "mean | median | std | 95th pct |", "|---|---|---|---|---|---|---|---|---|---|"]
        for whiten in self.whitenings():
            for method in METHODS:
                rl2, fe = (self.values(method, whiten, m) for m in ("relative_l2", "feature_error"))
                if rl2:
                    lines.append(f"| {method} | {'yes' if whiten else 'no'} | {len(rl2)} | "
                                 f"{_stats(rl2)} | {_stats(fe)} | {_percentile(fe, 95):.4f} |")
        lines.append("")
        for whiten in self.whitenings():
            for better, worse in (("ours", "[8]+[7]"), ("[8]+[7]", "[8]+rand")):
                won, of = self.wins(better, worse, whiten)
                lines.append(f"- {better} closer than {worse}{' (whitened)' if whiten else ''}: "
                             f"{won} of {of} photos")
        return "\n".join(lines) + "\n"

    def whitenings(self) -> list[bool]:
        return sorted({r.whiten for r in self.runs})

    def figure(self, cell: int = 160) -> Image.Image:
        """Input, k-NN start, [8]+rand, [8]+[7] and ours, one photo per row (unwhitened)."""
        images = [im for row in self.figure_rows for im, _ in row]
        labels = [label for row in self.figure_rows for _, label in row]
        return grid(images, labels, cols=len(FIGURE_COLUMNS), cell=cell,
                    title="Table 1: relative L2 / relative feature error")


def _stats(values: Sequence[float]) -> str:
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} | {statistics.median(values):.4f} | {std:.4f}"


def _percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def photos_in(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The folder's images in name order (the first `limit`), or an InputError."""
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: not a folder")
    found = patchdb.collect_images([folder])
    return found[:limit] if limit else found


def table1(net: Backbone, photos: Sequence[Path], *, whiten: Sequence[bool] = (False, True),
           layer: str | None = None, settings: recipes.InversionSettings = recipes.InversionSettings(),
           seed: int = 0, db: patchdb.PatchDB | None = None, done: Sequence[Run] = (),
           on_photo: Callable[[list[Run]], None] | None = None, figure_photos: int = FIGURE_PHOTOS,
           progress: Progress | None = None, cancel: Cancel | None = None) -> Table1:
    """Every method of METHODS, with each whitening of `whiten`, on every photo (centre square
    at the network's size), all with the same steps, weights and seed.

    Photos with runs in `done` are not run again (a resumed evaluation); `on_photo` gets each
    photo's runs as soon as they exist. The figure shows the first `figure_photos` photos run.
    """
    db = db or patchdb.default_db(net, scaled(progress, 0.0, 0.0, "building the patch database: "))
    table = Table1(runs=list(done))
    seen = {r.photo for r in done}
    jobs = [(w, m) for w in whiten for m in METHODS]
    total = len(photos) * len(jobs)
    for i, path in enumerate(photos):
        if path.name in seen:
            continue
        x = load_tensor(path, net.input_size)
        runs: list[Run] = []
        row: dict[str, tuple[Image.Image, str]] = {"input": (to_pil(x), path.name[-24:])}
        for j, (white, method) in enumerate(jobs):
            check(cancel, f"at photo {i + 1} of {len(photos)}")
            prior, init = METHODS[method]
            done = i * len(jobs) + j
            res = recipes.invert(net, x, prior=prior, init=init, whiten=white, layer=layer,
                                 settings=settings, seed=seed, db=db, cancel=cancel,
                                 progress=scaled(progress, done / total, (done + 1) / total,
                                                 f"{path.name} {method}{' whitened' if white else ''}: "))
            runs.append(Run(path.name, method, white, res.relative_l2, res.feature_error,
                            res.seconds))
            if not white:
                row[method] = (to_pil(res.image), f"{method} {res.relative_l2:.3f} / "
                               f"{res.feature_error:.3f}")
                if init == "patchdb":
                    row["k-NN start"] = (to_pil(res.init), "k-NN start")
        table.runs += runs
        if on_photo is not None:
            on_photo(runs)
        if all(c in row for c in FIGURE_COLUMNS) and len(table.figure_rows) < figure_photos:
            table.figure_rows.append([row[c] for c in FIGURE_COLUMNS])
    return table
