"""A paper-size patch database (1M pairs) built, searched and used within memory, in one run.

    .venv/bin/python tests/bench/bench_patchdb.py [--pairs 1000000] [--threads 2]

Builds a database from the 61 scene photos of Debian's scratch package, tiled at as many scales
as it takes to reach --pairs (with flips; patches stored at 32 px). Prints the build time; the
peak anonymous (non-reclaimable) memory of the process against the size of the arrays on disk
(the arrays are memory-mapped, so their pages are page cache the kernel can drop); the index
kind; for the cells of four foolbox ImageNet samples, the search time per query and the
recall@10 of the index against exact search over the memory-mapped features; and a default
`recipes.invert` with the database beside one with the embedded default database.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stylefill import patchdb
from stylefill.backbones import Backbone, load_backbone
from stylefill.images import load_image, load_tensor
from stylefill.optvis import recipes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from debian_files import fetch_all  # noqa: E402

SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)


class AnonPeak:
    """Samples RssAnon from /proc/self/status: the memory that must stay resident."""

    def __init__(self, every: float = 0.1):
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            time.sleep(every)

    def __enter__(self) -> AnonPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def scales_for(photos: list[Path], size: int, pairs: int, cells: int) -> tuple[tuple[float, ...], int]:
    """The fewest of SCALES (from 1 up) whose crops give at least `pairs` pairs, and the number
    of crops they give."""
    images = [load_image(p) for p in photos]
    crops = 0
    for n, scale in enumerate(SCALES, 1):
        crops += sum(len(patchdb.network_crops(im, size, [scale], True)) for im in images)
        if crops * cells >= pairs:
            return SCALES[:n], crops
    raise SystemExit(f"only {crops * cells} pairs reachable with scales up to {SCALES[-1]}")


def exact_top(db: patchdb.PatchDB, queries: np.ndarray, k: int) -> np.ndarray:
    """Brute-force cosine top-k over the memory-mapped features, 50k rows at a time."""
    q = patchdb.unit_rows(queries)
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.zeros((len(q), k), np.int64)
    for start in range(0, len(db), 50_000):
        sims = q @ patchdb.unit_rows(db.features[start : start + 50_000]).T
        s = np.concatenate([best_s, sims], 1)
        i = np.concatenate([best_i, np.arange(start, start + sims.shape[1])[None].repeat(len(q), 0)], 1)
        top = np.argsort(-s, 1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return best_i


def build_timed(net: Backbone, name: str, pairs: int) -> tuple[patchdb.PatchDB, float, AnonPeak]:
    """Build the database from the scratch photos; it, the build time and its memory peak."""
    photos = sorted(fetch_all("scratch").rglob("*.jpg"))
    cells = net.map_size(net.input_size) ** 2
    scales, crops = scales_for(photos, net.input_size, pairs, cells)
    print(f"{len(photos)} photos, scales {scales}, flips, patches stored at 32 px")
    with AnonPeak() as mem, tqdm(desc="build", unit="crop", total=crops) as bar:
        def progress(fraction: float, _stage: str, _preview: object) -> None:
            bar.update(round(fraction * crops) - bar.n)

        t0 = time.perf_counter()
        db = patchdb.build(photos, net, name, scales=scales, patch_px=32, progress=progress)
        build_s = time.perf_counter() - t0
    return db, build_s, mem


@dataclass
class Search:
    """Search and inversion with the database, beside the embedded default database."""

    sample: Path            # the photo inverted
    cells: int              # queries (pool5 cells of the samples)
    per_query_ms: float
    recall: float           # recall@10 against exact search
    big: recipes.InversionResult
    small: recipes.InversionResult
    peak_kb: int            # anonymous memory peak to load, search, check and invert


def search_and_invert(net: Backbone, name: str) -> Search:
    """For the cells of four foolbox ImageNet samples: the index's search time and recall@10
    against exact search; a default `recipes.invert` of the first sample with the database and
    with the default one."""
    import foolbox

    data = Path(foolbox.__file__).parent / "data"
    samples = sorted(data.glob("imagenet_*.jpg"))[:4]
    with torch.no_grad():
        maps = [net(load_tensor(p, net.input_size)).pool5[0] for p in samples]
    feats = np.concatenate([m.permute(1, 2, 0).reshape(-1, m.shape[0]).numpy() for m in maps])
    with AnonPeak() as mem:
        loaded = patchdb.load(net.name, name)
        t0 = time.perf_counter()
        found = loaded.search(feats, 10)
        per_query_ms = (time.perf_counter() - t0) / len(feats) * 1000
        exact = exact_top(loaded, feats, 10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
        x = load_tensor(samples[0], net.input_size)
        big = recipes.invert(net, x, db=loaded)
    small = recipes.invert(net, x, db=patchdb.default_db(net))
    return Search(samples[0], len(feats), per_query_ms, float(recall), big, small, mem.peak_kb)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--name", default="bench-1m")
    ap.add_argument("--reuse", action="store_true",
                    help="search an existing database of that name instead of building it")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    net = load_backbone()
    if args.reuse:
        db, build_s, mem = patchdb.load(net.name, args.name), None, None
    else:
        db, build_s, mem = build_timed(net, args.name, args.pairs)
    disk = sum(f.stat().st_size for f in db.path.iterdir())
    arrays = sum((db.path / f).stat().st_size for f in ("features.npy", "patches.npy"))
    found = search_and_invert(net, args.name)

    gib = 1024 ** 3
    print(f"pairs {len(db):,} from {db.meta['crops']:,} crops, index {db.meta['index']}")
    print(f"on disk {disk / gib:.2f} GiB (features + patches {arrays / gib:.2f} GiB)")
    if mem is not None:
        print(f"build {build_s:.0f} s ({build_s / db.meta['crops'] * 1000:.1f} ms per crop), "
              f"peak anonymous memory {mem.peak_kb / 1024 ** 2:.2f} GiB "
              f"({mem.peak_kb * 1024 / arrays:.2f}x the arrays)")
    print(f"peak anonymous memory to load, search, check against exact search and invert: "
          f"{found.peak_kb / 1024 ** 2:.2f} GiB ({found.peak_kb * 1024 / arrays:.2f}x)")
    print(f"search {found.per_query_ms:.2f} ms per cell, recall@10 vs exact {found.recall:.3f} "
          f"({found.cells} cells of 4 foolbox samples)")
    print(f"invert {found.sample.name}: relative_l2 {found.big.relative_l2:.3f} with {len(db):,} "
          f"pairs ({found.big.seconds:.1f} s) vs {found.small.relative_l2:.3f} with the default "
          f"database ({found.small.seconds:.1f} s)")


if __name__ == "__main__":
    main()
