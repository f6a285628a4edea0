"""Regenerate the README's object-completion pictures (docs/images/insert.png, modify.png).

    .venv/bin/python docs/completion_figures.py

Insert: hay in two learned styles into a selection of a grass field (Debian scratch's
playing-field.jpg, the held-out test photo). Modify: foolbox's ImageNet strawberry sample,
restyled into two styles of its own class. Data-free styles are learned on first use. Each
label gives the class probability of the context crop under the solver's network (Lite0)
before and after, and under the judge (Lite2, `stylefill.naturalness`), which no objective uses.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from stylefill import api
from stylefill.backbones import load_backbone
from stylefill.judge import load_judge
from stylefill.naturalness import naturalness

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "data"))
from debian_files import fetch  # noqa: E402


def row(tiles: list[tuple[Image.Image, str]], height: int = 300) -> Image.Image:
    scaled = [(t.resize((round(t.width * height / t.height), height), Image.Resampling.LANCZOS), label)
              for t, label in tiles]
    sheet = Image.new("RGB", (sum(t.width for t, _ in scaled) + 4 * len(scaled), height + 20), "white")
    draw, x = ImageDraw.Draw(sheet), 0
    for tile, label in scaled:
        sheet.paste(tile, (x, 0))
        draw.text((x + 4, height + 4), label, fill="black")
        x += tile.width + 4
    return sheet


def outlined(photo: Image.Image, rect: tuple[int, int, int, int]) -> Image.Image:
    out = photo.copy()
    x, y, w, h = rect
    ImageDraw.Draw(out).rectangle((x - 1, y - 1, x + w, y + h), outline=(255, 220, 0), width=2)
    return out


def judged(image: Image.Image, mask: np.ndarray, cls: str) -> float:
    """The judge's probability of `cls` on the context crop around `mask`."""
    net = load_backbone()
    return naturalness(net, load_judge(), image, net.categories.index(cls), mask).judge["clean"]


def main() -> None:
    field = Image.open(fetch("scratch") / "Sports/playing-field.jpg").convert("RGB")
    rect = (170, 190, 128, 128)
    mask = np.zeros((field.height, field.width), bool)
    mask[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]] = True
    tiles = [(outlined(field, rect), "before: selection on a grass field")]
    for style in (0, 1):
        res = api.run(api.InsertRequest(image=field, selection=mask, cls="hay", style=style))
        m = res.metrics
        label = (f"insert hay, style {style}: Lite0 {m['prob_before']:.3f} -> {m['prob_after']:.2f},"
                 f" judge {judged(res.image, mask, 'hay'):.2f}")
        tiles.append((res.image, label))
    row(tiles).save(HERE / "images" / "insert.png")

    spec = importlib.util.find_spec("foolbox")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    photo = Image.open(next(data.glob("imagenet_*_949.jpg"))).convert("RGB")
    w, h = photo.size
    rect = (int(0.37 * w), int(0.04 * h), int(0.24 * w), int(0.25 * h))  # the top strawberry
    mask = np.zeros((photo.height, photo.width), bool)
    mask[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]] = True
    tiles = [(outlined(photo, rect), "before: a strawberry")]
    for style in (1, 2):
        res = api.run(api.ModifyRequest(image=photo, selection=mask, style=style))
        m = res.metrics
        tiles.append((res.image, f"modify to style {style}: Lite0 {m['prob_after']:.2f},"
                                 f" judge {judged(res.image, mask, m['class']):.2f}"))
    row(tiles).save(HERE / "images" / "modify.png")
    print("wrote docs/images/insert.png and docs/images/modify.png")


if __name__ == "__main__":
    main()
