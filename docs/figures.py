"""Regenerate the README's pictures from real runs (EfficientNet-Lite0, default settings).

    .venv/bin/python docs/figures.py [--db NAME]

Writes docs/images/inversion.png (photo, k-NN initial image, the three Table-1 methods, with
their relative L2) and docs/images/classes.png (class visualisations with their probability).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from stylefill import api, patchdb
from stylefill.backbones import load_backbone
from stylefill.images import load_tensor, to_pil

HERE = Path(__file__).resolve().parent / "images"


def labelled_grid(rows: list[list[tuple[torch.Tensor, str]]], cell: int = 224) -> Image.Image:
    """Tiles with a caption strip under each."""
    strip = 18
    width = max(len(r) for r in rows) * cell
    sheet = Image.new("RGB", (width, len(rows) * (cell + strip)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        for j, (img, text) in enumerate(row):
            sheet.paste(to_pil(img).resize((cell, cell)), (j * cell, i * (cell + strip)))
            draw.text((j * cell + 4, i * (cell + strip) + cell + 3), text, fill="black")
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=patchdb.DEFAULT_NAME)
    ap.add_argument("--photos", nargs="*", help="photos to invert (default: 3 foolbox samples)")
    args = ap.parse_args()
    net = load_backbone()
    db = patchdb.load(net.name, args.db) if args.db != patchdb.DEFAULT_NAME else \
        patchdb.default_db(net)
    photos = args.photos
    if not photos:
        import foolbox

        data = Path(foolbox.__file__).parent / "data"
        photos = [str(p) for p in sorted(data.glob("imagenet_*.jpg"))[10:13]]
    rows = []
    for path in photos:
        x = load_tensor(path, net.input_size)
        rand = api.invert(x, net, prior="tv", init="rand", db=db)
        knn = api.invert(x, net, prior="tv", init="patchdb", db=db)
        ours = api.invert(x, net, prior="patch", init="patchdb", db=db)
        rows.append([(x, "photo"), (knn.init, "10-NN init"),
                     (rand.image, f"TV+rand {rand.relative_l2:.3f}"),
                     (knn.image, f"TV+10-NN {knn.relative_l2:.3f}"),
                     (ours.image, f"patch prior {ours.relative_l2:.3f}")])
    HERE.mkdir(parents=True, exist_ok=True)
    labelled_grid(rows).save(HERE / "inversion.png")
    row = []
    for cls in ("ladybug", "goldfish", "daisy", "volcano", "tabby"):
        res = api.visualize(cls, net)
        row.append((res.image, f"{res.cls} p={res.prob:.2f}"))
    labelled_grid([row]).save(HERE / "classes.png")
    print(f"wrote {HERE / 'inversion.png'} and {HERE / 'classes.png'}")


if __name__ == "__main__":
    main()
