"""Regenerate the README's pictures from real runs (EfficientNet-Lite0, default settings).

    .venv/bin/python docs/figures.py [--db NAME]

Writes docs/images/inversion.png (photo, k-NN initial image, the three Table-1 methods, with
their relative L2); class visualisations are drawn by docs/natural_figures.py.

    .venv/bin/python docs/figures.py --invert-code [PHOTO ...]

writes only docs/images/invert-code.png: each photo rebuilt by `stylefill invert-code` from its
m7 code and from its m5-7 code (default: foolbox ImageNet samples 14, 16 and 19).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from stylefill import patchdb
from stylefill.backbones import load_backbone
from stylefill.images import load_tensor, to_pil
from stylefill.optvis import recipes

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


def invert_code_figure(photos: list[str], work: Path, out: Path) -> Path:
    """Photo | rebuilt from its m7 code | from its m5-7 code, one row per photo, each rebuilt by
    the CLI (`stylefill invert-code IMG --levels L -o PNG --json J`; outputs already in `work`
    are reused) and labelled with its relative L2."""
    import json
    import subprocess
    import sys

    from stylefill.classes import imagenet_classes

    cli = Path(sys.executable).parent / "stylefill"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for photo in photos:
        stem = Path(photo).stem
        label = stem
        if stem.startswith("imagenet_") and stem.rsplit("_", 1)[-1].isdigit():
            label = f"{stem.split('_')[1]}: {imagenet_classes()[int(stem.rsplit('_', 1)[-1])]}"
        row = [(load_tensor(photo, 224), label)]
        for levels in ("m7", "m5-7"):
            png, meta = work / f"{stem}_{levels}.png", work / f"{stem}_{levels}.json"
            if not (png.is_file() and meta.is_file()):
                subprocess.run([str(cli), "invert-code", str(photo), "--levels", levels, "-o", str(png),
                                "--json", str(meta), "-q"], check=True)
            rel = json.loads(meta.read_text())["relative_l2"]
            row.append((load_tensor(png, 224), f"from {levels}  rel. L2 {rel:.3f}"))
        rows.append(row)
    labelled_grid(rows).save(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=patchdb.DEFAULT_NAME)
    ap.add_argument("--photos", nargs="*", help="photos to invert (default: 3 foolbox samples)")
    ap.add_argument("--invert-code", nargs="*", metavar="PHOTO",
                    help="only write invert-code.png (default photos: foolbox samples 14, 16, 19)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/stylefill-figures"),
                    help="where the CLI's invert-code outputs go (reused when present)")
    args = ap.parse_args()
    if args.invert_code is not None:
        photos = args.invert_code
        if not photos:
            import foolbox

            data = Path(foolbox.__file__).parent / "data"
            photos = [str(next(data.glob(f"imagenet_{i}_*.jpg"))) for i in (14, 16, 19)]
        print(f"wrote {invert_code_figure(photos, args.work, HERE / 'invert-code.png')}")
        return
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
        rand = recipes.invert(net, x, prior="tv", init="rand", db=db)
        knn = recipes.invert(net, x, prior="tv", init="patchdb", db=db)
        ours = recipes.invert(net, x, prior="patch", init="patchdb", db=db)
        rows.append([(x, "photo"), (knn.init, "10-NN init"),
                     (rand.image, f"TV+rand {rand.relative_l2:.3f}"),
                     (knn.image, f"TV+10-NN {knn.relative_l2:.3f}"),
                     (ours.image, f"patch prior {ours.relative_l2:.3f}")])
    HERE.mkdir(parents=True, exist_ok=True)
    labelled_grid(rows).save(HERE / "inversion.png")
    print(f"wrote {HERE / 'inversion.png'}")


if __name__ == "__main__":
    main()
