"""How visibly style previews differ (stylefill/looks.py): the numbers behind its threshold.

    .venv/bin/python tests/bench/bench_looks.py [--styles MODELS_DIR ...] [--reruns DIR]

Prints, for the look distance and its two parts (colour: Delta E of the palette; texture:
Hellinger distance of gradient histograms), min / 10th percentile / median / 90th percentile /
max over:
- graded edits of two photos (skimage's coffee and astronaut) and two data-free previews
  (brightness, saturation, hue, contrast, blur, a 4 px shift), one row per edit: which rungs a
  person sees at thumbnail size is judged on the sheet it writes (--sheet), not from the numbers;
- each photo (foolbox's 20 ImageNet samples and 8 of skimage's) against a slight jitter of
  itself (a crop of up to 6 px, brightness within 4 %, JPEG at quality 85), and each preview
  against its jitter: what a person calls the same picture;
- pairs of different photos: what a person calls visibly different;
- the previews of each class's styles found under every --styles models dir, within a class
  and across classes (style 0 of each), and, with --reruns, each preview against a rerun of
  the same style with another seed (files <class>_<k>.png).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import random
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from stylefill import atomic, looks

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import slight_jitter  # noqa: E402


def _hue(img: Image.Image, degrees: int) -> Image.Image:
    hsv = np.asarray(img.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + degrees * 256 // 360) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


EDITS = {
    "brightness x1.04": lambda i: ImageEnhance.Brightness(i).enhance(1.04),
    "brightness x1.10": lambda i: ImageEnhance.Brightness(i).enhance(1.10),
    "brightness x1.25": lambda i: ImageEnhance.Brightness(i).enhance(1.25),
    "saturation x0.8": lambda i: ImageEnhance.Color(i).enhance(0.8),
    "saturation x0.5": lambda i: ImageEnhance.Color(i).enhance(0.5),
    "hue +10": lambda i: _hue(i, 10),
    "hue +30": lambda i: _hue(i, 30),
    "hue +60": lambda i: _hue(i, 60),
    "blur 0.7 px": lambda i: i.filter(ImageFilter.GaussianBlur(0.7)),
    "blur 1.5 px": lambda i: i.filter(ImageFilter.GaussianBlur(1.5)),
    "blur 3 px": lambda i: i.filter(ImageFilter.GaussianBlur(3)),
    "contrast x0.8": lambda i: ImageEnhance.Contrast(i).enhance(0.8),
    "contrast x0.6": lambda i: ImageEnhance.Contrast(i).enhance(0.6),
    "shift 4 px": lambda i: i.crop((4, 4, i.width, i.height)).resize(i.size),
}


def photos() -> list[Image.Image]:
    spec = importlib.util.find_spec("foolbox")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    found = [Image.open(p).convert("RGB") for p in sorted(data.glob("imagenet_*_*.jpg"))]
    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "brick", "grass",
             "gravel"]
    return found + [Image.fromarray(getattr(skimage.data, n)()).convert("RGB") for n in names]


def preview_sets(roots: list[Path]) -> dict[str, list[Path]]:
    found = {}
    for root in roots:
        for folder in sorted((root / "styles").glob("*/*/")):
            version = atomic.current(folder) or folder
            previews = sorted(version.glob("preview_*.png"), key=lambda p: int(p.stem[8:]))
            source = json.loads((version / "styles.json").read_text())["source"]
            if previews:
                found.setdefault(folder.name + (" (folder)" if source != "data-free" else ""),
                                 previews)
    return found


def row(name: str, diffs: list[looks.Difference]) -> None:
    def q(x):
        return " ".join(f"{v:6.2f}" for v in np.percentile(x, [0, 10, 50, 90, 100]))

    dist = [d.distance for d in diffs]
    print(f"{name:26s} {len(diffs):4d}  {q(dist)} | {q([d.colour for d in diffs])} | "
          f"{q([d.texture * 100 for d in diffs])}")


def ladder(sources: dict[str, Image.Image], sheet: Path | None) -> None:
    print(f"\n{'edit':18s} " + " ".join(f"{n[:16]:>18s}" for n in sources)
          + "   (distance colour/texture*100)")
    for name, edit in EDITS.items():
        cells = []
        for img in sources.values():
            d = looks.difference(looks.look(img), looks.look(edit(img)))
            cells.append(f"{d.distance:5.2f} {d.colour:5.1f}/{d.texture * 100:4.1f}")
        print(f"{name:18s} " + " ".join(f"{c:>18s}" for c in cells))
    if sheet:
        t = looks.THUMB
        out = Image.new("RGB", ((len(EDITS) + 1) * (t + 4), len(sources) * (t + 16)), "white")
        draw = ImageDraw.Draw(out)
        for r, img in enumerate(sources.values()):
            for c, shown in enumerate([img] + [e(img) for e in EDITS.values()]):
                thumb = Image.fromarray((looks.thumbnail(shown) * 255).round().astype(np.uint8))
                out.paste(thumb, (c * (t + 4), r * (t + 16)))
                draw.text((c * (t + 4), r * (t + 16) + t + 2), str(c - 1) if c else "", fill="black")
        out.save(sheet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--styles", type=Path, nargs="*", default=[], help="models dirs with styles/")
    ap.add_argument("--reruns", type=Path, help="folder of <class>_<k>.png reruns (seed 1)")
    ap.add_argument("--sheet", type=Path, help="write the edits' thumbnails here")
    args = ap.parse_args()
    rnd = random.Random(0)
    shots = photos()
    sets = preview_sets(args.styles)
    sources = {"coffee": Image.fromarray(skimage.data.coffee()),
               "astronaut": Image.fromarray(skimage.data.astronaut())}
    sources.update({f"{c} preview 0": Image.open(sets[c][0]).convert("RGB")
                    for c in list(sets)[:2]})
    ladder(sources, args.sheet)

    print(f"\n{'pairs':26s} {'n':>4s}  distance [min p10 median p90 max] | colour (Delta E) | "
          "texture (x100)")
    shot_looks = [looks.look(p) for p in shots]
    row("photo vs its jitter", [looks.difference(a, looks.look(slight_jitter(p, rnd)))
                                for p, a in zip(shots, shot_looks, strict=True)])
    previews = [Image.open(p).convert("RGB") for ps in sets.values() for p in ps]
    row("preview vs its jitter", [looks.difference(looks.look(p), looks.look(slight_jitter(p, rnd)))
                                  for p in previews])
    if args.reruns:
        reruns = sorted(args.reruns.glob("*_*.png"))
        row("preview vs seed-1 rerun", [looks.difference(
            looks.look(sets[r.stem.rsplit("_", 1)[0]][int(r.stem.rsplit("_", 1)[1])]), looks.look(r))
            for r in reruns])
    row("two different photos", [looks.difference(a, b)
                                 for a, b in itertools.combinations(shot_looks, 2)])
    set_looks = {c: [looks.look(p) for p in ps] for c, ps in sets.items()}
    row("styles of one class", [looks.difference(a, b) for ls in set_looks.values()
                                for a, b in itertools.combinations(ls, 2)])
    row("styles of two classes", [looks.difference(a[0], b[0])
                                  for a, b in itertools.combinations(set_looks.values(), 2)])

    print(f"\n{'class':22s} K  distinct  order      nearest distances")
    for c, ls in set_looks.items():
        s = looks.spread(ls)
        print(f"{c:22s} {len(ls)}  {s.distinct:8d}  {','.join(map(str, s.order)):9s}  "
              + " ".join(f"{d:.2f}" for d in s.distance if d is not None))


if __name__ == "__main__":
    main()
