"""Regenerate the picture and numbers of inserts in each style (docs/tuning.md, twenty-third
and twenty-fourth rounds).

    .venv/bin/python docs/style_figures.py HELD_OUT [--work /tmp/stylefill-styles]

HELD_OUT: `python -m stylefill.photo_sets held-out HELD_OUT`. The six held-out insert cases of
docs/natural_figures.py get their class in data-free styles 0-3 at seeds 0 and 1, through the
engine's own request, once with the canvas started from grey noise (`style_start` off, the
default until the twenty-fourth round) and once from the style's top image (the default). Each
is measured by `stylefill.naturalness` with its selection; the table printed at the end counts
issue 14's bars and the styles' identity: how often an insert at seed 0 is nearer (Lite0 fc7
cosine of the selection's box) to its own style's insert at seed 1 than to another style's.
docs/images/style-start.jpg shows seed 0: from grey noise, from the style's image, and each
style's top image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from natural_figures import HERE, INSERTS, case_photo
from PIL import Image, ImageDraw

from stylefill import styles
from stylefill.backbones import load_backbone
from stylefill.images import rect_mask, to_tensor
from stylefill.judge import load_judge
from stylefill.naturalness import naturalness
from stylefill.operations import InsertRequest, run
from stylefill.styles import fc7_features

VARIANTS = {"from grey noise": False, "from the style's image (the default)": True}
STYLES, SEEDS, CELL = range(4), (0, 1), 110


def _box(work: Path, label: str, cls: str, style: int, seed: int) -> Path:
    tag = "style_start" if VARIANTS[label] else "noise"
    return work / f"{tag}-{cls.replace(' ', '_')}-{style}-{seed}.png"


def inserted(folder: Path, work: Path) -> list[dict]:
    """Every case, style, seed and variant: its numbers, and its selection's box saved."""
    net, judge = load_backbone(), load_judge()
    rows = []
    for key, cls, fractions in INSERTS:
        photo, (x, y, w, h) = case_photo(folder, key, fractions)
        mask = rect_mask((x, y, w, h), photo.size)
        for style in STYLES:
            for seed in SEEDS:
                for label, start in VARIANTS.items():
                    res = run(InsertRequest(image=photo, selection=mask, cls=cls, style=style,
                                            seed=seed, style_start=start))
                    found = naturalness(net, judge, res.image, res.metrics["index"], mask)
                    res.image.crop((x, y, x + w, y + h)).save(_box(work, label, cls, style, seed))
                    rows.append({"label": label, "class": cls, "style": style, "seed": seed,
                                 "lite0": found.solver["clean"], "judge": found.judge["clean"],
                                 "judge_top1": found.judge_top1, "fill": found.fill.high_frequency_share,
                                 "around": found.surroundings.high_frequency_share,
                                 "outside": res.metrics["outside_changed_pixels"],
                                 "seconds": res.metrics["seconds"]})
                    print(rows[-1], flush=True)
    return rows


def identity(work: Path, label: str) -> int:
    """Of each class's styles, how many at seed 0 are nearest their own style at seed 1."""
    net = load_backbone()
    hits = 0
    for _, cls, _ in INSERTS:
        boxes = [[to_tensor(Image.open(_box(work, label, cls, s, seed)).convert("RGB"))
                  for s in STYLES] for seed in SEEDS]
        feats = [F.normalize(torch.from_numpy(fc7_features(net, torch.cat(
            [F.interpolate(b, size=224, mode="bilinear", antialias=True) for b in seeded]))), dim=1)
            for seeded in boxes]
        hits += int(((feats[0] @ feats[1].T).argmax(1) == torch.arange(len(STYLES))).sum())
    return hits


def table(rows: list[dict], work: Path) -> str:
    lines = ["| | identity, seed 0 vs 1 | both networks >= 0.5 | share within 0.08 | all three | "
             "judge's top-1 | judge mean | seconds per insert |", "|---|---|---|---|---|---|---|---|"]
    for label in VARIANTS:
        mine = [r for r in rows if r["label"] == label]
        both = [r["lite0"] >= 0.5 and r["judge"] >= 0.5 for r in mine]
        close = [abs(r["fill"] - r["around"]) <= 0.08 and r["outside"] == 0 for r in mine]
        lines.append(
            f"| {label} | {identity(work, label)} of {len(INSERTS) * len(STYLES)} | {sum(both)} | "
            f"{sum(close)} | {sum(b and c for b, c in zip(both, close, strict=True))} of {len(mine)} | "
            f"{sum(r['judge_top1'] == r['class'] for r in mine)} | "
            f"{np.mean([r['judge'] for r in mine]):.3f} | {np.mean([r['seconds'] for r in mine]):.1f} |")
    return "\n".join(lines)


def figure(work: Path, out: Path) -> None:
    """Seed 0: the four styles from grey noise, then from the style's image, then each top
    image."""
    net = load_backbone()
    gap, top, width = 12, 22, 4 * CELL
    sheet = Image.new("RGB", (3 * width + 2 * gap, top + CELL * len(INSERTS)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate([*(f"{label}, styles 0-3" for label in VARIANTS), "each style's top image"]):
        draw.text((j * (width + gap) + 4, 5), title, fill="black")
    for row, (_, cls, _) in enumerate(INSERTS):
        ss = styles.load(cls, net)
        for style in STYLES:
            tiles = [*(_box(work, label, cls, style, 0) for label in VARIANTS), ss.image_paths(style, 1)[0]]
            for j, path in enumerate(tiles):
                tile = Image.open(path).convert("RGB")
                tile.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
                sheet.paste(tile, (j * (width + gap) + style * CELL + (CELL - tile.width) // 2,
                                   top + row * CELL + (CELL - tile.height) // 2))
    sheet.save(out, quality=85)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("held_out", type=Path, help="the held-out photos' folder")
    ap.add_argument("--work", type=Path, default=Path("/tmp/stylefill-styles"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = inserted(args.held_out, args.work)
    (args.work / "styles.json").write_text(json.dumps(rows, indent=1))
    figure(args.work, HERE / "images" / "style-start.jpg")
    print(table(rows, args.work))


if __name__ == "__main__":
    main()
