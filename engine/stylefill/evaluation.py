"""The paper's Table 1 on a folder of photos: three inversion methods (and each with colour
whitening), every one judged by how close it gets to the photo (relative L2) *and* how well it
reconstructs the features (relative feature error), since a closer image at a worse feature
error only says the method did less."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from . import patchdb
from .backbones import Backbone
from .errors import InputError
from .images import load_tensor, save_image, to_pil
from .judge import load_judge
from .optvis import recipes
from .photo_stats import spectrum_stats
from .progress import Cancel, Progress, check, report, scaled
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
    # photo statistics (stylefill.photo_stats) of the result and of the photo; None in runs
    # journalled before they were measured
    hf_share: float | None = None
    slope: float | None = None
    photo_hf_share: float | None = None
    photo_slope: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The judge network on one result: the rank (1 = top) and probability it gives the class
    it sees in the photo."""

    rank: int
    p: float


@dataclass
class Table1:
    runs: list[Run]
    # FIGURE_COLUMNS of each photo shown: (image, label with relative L2 and feature error)
    figure_rows: list[list[tuple[Image.Image, str]]] = field(default_factory=list)
    # the judge's verdict on each saved result, by (photo, method, whiten)
    verdicts: dict[tuple[str, str, bool], Verdict] = field(default_factory=dict)

    def of(self, method: str, whiten: bool) -> list[Run]:
        return [r for r in self.runs if r.method == method and r.whiten == whiten]

    def values(self, method: str, whiten: bool, measure: str) -> list[float]:
        return [getattr(r, measure) for r in self.of(method, whiten)]

    def wins(self, better: str, worse: str, whiten: bool) -> tuple[int, int]:
        """On how many photos `better` has the lower relative L2 than `worse`, of how many."""
        a = {r.photo: r.relative_l2 for r in self.of(better, whiten)}
        b = {r.photo: r.relative_l2 for r in self.of(worse, whiten)}
        shared = a.keys() & b.keys()
        return sum(a[p] < b[p] for p in shared), len(shared)

    def markdown(self) -> str:
        """Mean, median and std of both measures per method, then per-photo wins."""
        lines = ["| method | whiten | photos | relative L2 mean | median | std | feature error "
                 "mean | median | std | 95th pct |", "|---|---|---|---|---|---|---|---|---|---|"]
        def errors(runs: list[Run]) -> str:
            fe = [r.feature_error for r in runs]
            return f"{_stats([r.relative_l2 for r in runs])} | {_stats(fe)} | {_percentile(fe, 95):.4f}"

        lines += self._per_method(self.of, errors)
        lines += ["", *self.spectrum_lines(), "", *self.verdict_lines(), ""]
        for whiten in self.whitenings():
            for better, worse in (("ours", "[8]+[7]"), ("[8]+[7]", "[8]+rand")):
                won, of = self.wins(better, worse, whiten)
                lines.append(f"- {better} closer than {worse}{' (whitened)' if whiten else ''}: "
                             f"{won} of {of} photos")
        return "\n".join(lines) + "\n"

    def spectrum_lines(self) -> list[str]:
        """Median photo statistics of each method's results beside the photos' own (runs
        journalled before they were measured are left out)."""
        measured = [r for r in self.runs if r.hf_share is not None]
        if not measured:
            return []
        lines = ["| result | whiten | photos | high-frequency share median | spectral slope median |",
                 "|---|---|---|---|---|"]
        photos = {r.photo: r for r in measured}.values()
        lines.append(f"| the photos | - | {len(photos)} | "
                     f"{statistics.median(r.photo_hf_share for r in photos):.3f} | "
                     f"{statistics.median(r.photo_slope for r in photos):.2f} |")
        return lines + self._per_method(
            lambda m, w: [r for r in self.of(m, w) if r.hf_share is not None],
            lambda runs: f"{statistics.median(r.hf_share for r in runs):.3f} | "
                         f"{statistics.median(r.slope for r in runs):.2f}")

    def verdict_lines(self) -> list[str]:
        """How often the judge network sees in each method's result what it sees in the photo."""
        if not self.verdicts:
            return []
        lines = ["| method | whiten | photos judged | judge's top-1 as on the photo | in its top 5 "
                 "| median p(photo's class) |", "|---|---|---|---|---|---|"]
        return lines + self._per_method(
            lambda m, w: [v for (_, vm, vw), v in self.verdicts.items() if vm == m and vw == w],
            lambda got: f"{sum(v.rank == 1 for v in got)} | {sum(v.rank <= 5 for v in got)} | "
                        f"{statistics.median(v.p for v in got):.3f}")

    def _per_method(self, pick: Callable[[str, bool], list], cells: Callable[[list], str]) -> list[str]:
        """A table row per method and whitening that `pick` finds anything for: the method,
        whitening, how many it found, then `cells` of them."""
        return [f"| {method} | {'yes' if whiten else 'no'} | {len(found)} | {cells(found)} |"
                for whiten in self.whitenings() for method in METHODS
                if (found := pick(method, whiten))]

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


def table1(net: Backbone, photos: Sequence[Path], images: Path, *,
           whiten: Sequence[bool] = (False, True), layer: str | None = None,
           settings: recipes.InversionSettings = recipes.InversionSettings(), seed: int = 0,
           db: patchdb.PatchDB | None = None, done: Sequence[Run] = (),
           on_photo: Callable[[list[Run]], None] | None = None, progress: Progress | None = None,
           cancel: Cancel | None = None) -> Table1:
    """Every method of METHODS, with each whitening of `whiten`, on every photo (centre square
    at the network's size), all with the same steps, weights and seed; each result is saved
    under `images` (`result_path`), measured and journalled.

    Photos with runs in `done` are not run again (a resumed evaluation); `on_photo` gets each
    photo's runs as soon as they exist.
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
        own = spectrum_stats(x)
        runs: list[Run] = []
        for j, (white, method) in enumerate(jobs):
            check(cancel, f"at photo {i + 1} of {len(photos)}")
            prior, init = METHODS[method]
            done = i * len(jobs) + j
            res = recipes.invert(net, x, prior=prior, init=init, whiten=white, layer=layer,
                                 settings=settings, seed=seed, db=db, cancel=cancel,
                                 progress=scaled(progress, done / total, (done + 1) / total,
                                                 f"{path.name} {method}{' whitened' if white else ''}: "))
            got = spectrum_stats(res.image)
            runs.append(Run(path.name, method, white, res.relative_l2, res.feature_error,
                            res.seconds, got.high_frequency_share, got.slope,
                            own.high_frequency_share, own.slope))
            save_image(res.image, result_path(images, path.name, method, white))
        table.runs += runs
        if on_photo is not None:
            on_photo(runs)
    return table


def figure_rows(net: Backbone, db: patchdb.PatchDB, table: Table1, photos: Sequence[Path],
                images: Path, show: Sequence[str] = (), count: int = FIGURE_PHOTOS,
                knn: int = recipes.InversionSettings.knn) -> list[list[tuple[Image.Image, str]]]:
    """FIGURE_COLUMNS for the photos whose name contains one of `show` (default: the first
    `count` with every unwhitened result saved): the photo, its k-NN start (a database lookup,
    made again) and each method's saved result with its two measures."""
    measured = {(r.photo, r.method): r for r in table.runs if not r.whiten}
    ready = [p for p in photos if all((p.name, m) in measured
                                      and result_path(images, p.name, m, False).is_file()
                                      for m in METHODS)]
    chosen = [p for p in ready if any(part in p.name for part in show)] if show else ready[:count]
    rows = []
    for path in chosen:
        x = load_tensor(path, net.input_size)
        with torch.no_grad():
            pool5 = net(x.to(net.device)).pool5.cpu()
        start, _ = db.knn_image(pool5, net.input_size, knn)
        row = [(to_pil(x), path.name[-24:]), (to_pil(start), "k-NN start")]
        for method in METHODS:
            r = measured[(path.name, method)]
            row.append((Image.open(result_path(images, path.name, method, False)).convert("RGB"),
                        f"{method} {r.relative_l2:.3f} / {r.feature_error:.3f}"))
        rows.append(row)
    return rows


def result_path(images: Path, photo: str, method: str, whiten: bool) -> Path:
    return images / f"{Path(photo).stem}.{method}{'.whitened' if whiten else ''}.png"


def judge_results(table: Table1, photos: Sequence[Path], images: Path,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> None:
    """Fill `table.verdicts` for every run whose result is saved under `images`, by the judge
    network (EfficientNet-Lite2, evaluation only): does it see in the result what it sees in
    the photo?"""
    judge = load_judge()
    by_name = {p.name: p for p in photos}
    for i, name in enumerate(sorted({r.photo for r in table.runs} & by_name.keys())):
        check(cancel, "while judging")
        report(progress, i / len(by_name), f"judging {name}")
        runs = [r for r in table.runs if r.photo == name
                and result_path(images, name, r.method, r.whiten).is_file()]
        if not runs:
            continue
        shots = [load_tensor(by_name[name], judge.input_size)] + [
            load_tensor(result_path(images, name, r.method, r.whiten), judge.input_size)
            for r in runs]
        probs = judge.probs(torch.cat(shots))
        seen = int(probs[0].argmax())
        for r, p in zip(runs, probs[1:], strict=True):
            rank = int((p > p[seen]).sum()) + 1
            table.verdicts[(name, r.method, r.whiten)] = Verdict(rank, float(p[seen]))
