"""Regenerate the README's natural-visualisation and insertion pictures and tables (issue 14).

    .venv/bin/python docs/natural_figures.py [--work /tmp/stylefill-natural] [--inserts HELD_OUT]

The issue's ten classes, each visualised twice with seed 0: with the previous defaults (Lucid's
Fourier basis, Lucent's views) and with today's (MACO at real photos' spectrum, blurred and
resampled views). Every result is saved as PNG and measured by the command a user runs,
`stylefill eval naturalness IMAGE --class C --json ...`; the picture
(docs/images/natural-visualize.jpg) and the Markdown table printed at the end are drawn from
those JSON files.

With `--inserts FOLDER` (the held-out photos: `python -m stylefill.photo_sets held-out FOLDER`),
six of them get an object of a fitting class in data-free styles 0 and 1, with the insert this
issue started from (one network, Poisson blend), the later one grown out of the photo and today's
(the object drawn whole first), each measured by `stylefill.naturalness` with its selection
(docs/images/natural-insert.jpg and a second table); `--styles`, `--seed` and `--settings` run
other styles, another seed or only some of the settings (then give `--figure` a path of its own).

With `--real-objects HELD_OUT OPEN` (OPEN: `python -m stylefill.photo_sets open-photos OPEN`),
real photos go into the same selections instead of a fill: MATE's LadyBird.jpg (open set)
cropped round the beetle at three widths, and foolbox's ImageNet samples (a test extra) of
classes that fit the photos, each pasted as a rectangle and cut to its own outline (GrabCut),
measured the same way: what the issue's bars give a real object there, with and without a
rectangle of its own (docs/evaluation.md; docs/images/real-objects.jpg).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from stylefill import styles
from stylefill.backbones import load_backbone
from stylefill.cli import main as cli
from stylefill.completion import IN_THE_PHOTO, InsertSettings, blend, fill_selection
from stylefill.images import rect_mask, save_image
from stylefill.judge import load_judge
from stylefill.naturalness import naturalness
from stylefill.optvis import recipes
from stylefill.regions import context_box, crop, selection_box
from stylefill.style_learning import style_pathway

HERE = Path(__file__).resolve().parent
CLASSES = ("ladybug", "hay", "goldfish", "daisy", "volcano", "monarch", "lemon", "pizza", "teapot",
           "alp")
SETTINGS = {"before": replace(recipes.VisualizationSettings(), param="fourier", degrade=False),
            "after": recipes.VisualizationSettings()}
CELL = 200
INSERTS = (  # held-out photo (name contains), class, selection as fractions x0, y0, x1, y1
    ("aitzgorri", "hay", (0.35, 0.68, 0.55, 0.95)),
    ("sun_behind_leaves", "ladybug", (0.10, 0.65, 0.28, 0.92)),
    ("kcas5", "canoe", (0.35, 0.30, 0.60, 0.50)),
    ("sun_behind_clouds", "bald eagle", (0.05, 0.10, 0.30, 0.40)),
    ("seeding", "golden retriever", (0.55, 0.55, 0.85, 0.95)),
    ("mate_nature_Wood", "pizza", (0.35, 0.35, 0.65, 0.70)),
)
# Before: the insert defaults this issue started from (Lite0 alone, 150 steps at lr 0.02, Lucent's
# views, a Poisson blend), with grain at the photo's level; in the photo: the default of the
# eighth to eighteenth rounds (Lite0 and Lite1, 100 steps at lr 0.05, blurred and resampled views,
# the fill optimised through the alpha it is pasted with, an alpha blend, grain levelled to the
# surroundings' detail, the class under Lite0's whole head beside the style's pathway), grown out
# of the photo; after: today's, the same with the object drawn whole first (100 steps on a
# canvas of its own) and 80 steps in the photo (docs/tuning.md, nineteenth round), a fill sharper
# than the photo around it softened to its focus (twenty-second round), the canvas started from the
# style's top image (twenty-fourth round) and the fill drawn half way to the photo's light
# (twenty-sixth round).
INSERT_SETTINGS = {"before": replace(InsertSettings(), iters=150, lr=0.02, blend="seamless", degrade=False,
                                     second_network=False, level_grain=0.0, whole=0.0, tv=300.0,
                                     light=0.0, render_first=0, soften=0.0),
                   "in the photo": replace(IN_THE_PHOTO, soften=0.0, light=0.0),
                   "after": InsertSettings(),
                   # a setting beside the figure's three: the object cut to its outline
                   # (GIMP's Drawing "Whole first, cut to its outline"), run with --settings
                   "cut to its outline": replace(InsertSettings(), object_share=0.6)}
FIGURE_SETTINGS = ("before", "in the photo", "after")


def measured(work: Path) -> dict[tuple[str, str], dict]:
    """(setting, class) -> the JSON `eval naturalness` wrote for that result."""
    net = load_backbone()
    found = {}
    for label, settings in SETTINGS.items():
        for cls in CLASSES:
            png, report = work / f"{label}-{cls}.png", work / f"{label}-{cls}.json"
            if not report.exists():
                res = recipes.visualize(net, net.categories.index(cls), settings=settings, seed=0)
                save_image(res.image, png)
                assert cli(["eval", "naturalness", str(png), "--class", cls, "--json", str(report),
                            "-q"]) == 0
            found[label, cls] = json.loads(report.read_text())
    return found


def figure(found: dict[tuple[str, str], dict], work: Path, out: Path) -> None:
    sheet = Image.new("RGB", (CELL * len(CLASSES), 2 * (CELL + 34)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, label in enumerate(SETTINGS):
        for i, cls in enumerate(CLASSES):
            m = found[label, cls]
            tile = Image.open(work / f"{label}-{cls}.png").convert("RGB")
            sheet.paste(tile.resize((CELL, CELL), Image.Resampling.LANCZOS), (CELL * i, row * (CELL + 34)))
            y = row * (CELL + 34) + CELL + 2
            draw.text((CELL * i + 3, y), f"{label}: judge {m['judge']['clean']:.2f} {m['judge_top1'][:11]}",
                      fill="black")
            draw.text((CELL * i + 3, y + 15), f"min {min(m['solver'].values()):.2f} hf "
                      f"{m['image']['high_frequency_share']:.2f} slope {m['image']['slope']:.2f}",
                      fill="black")
    sheet.save(out, quality=88)


def table(found: dict[tuple[str, str], dict]) -> str:
    lines = ["| class | defaults | Lite0 clean | Lite0, worst transform | judge p | judge's top-1 | "
             "high-freq. share | slope |", "|---|---|---|---|---|---|---|---|"]
    for cls in CLASSES:
        for label in SETTINGS:
            m = found[label, cls]
            lines.append(f"| {cls} | {label} | {m['solver']['clean']:.3f} | {min(m['solver'].values()):.3f} "
                         f"| {m['judge']['clean']:.3f} | {m['judge_top1']} | "
                         f"{m['image']['high_frequency_share']:.3f} | {m['image']['slope']:.2f} |")
    return "\n".join(lines)


def case_photo(folder: Path, key: str, fractions: tuple[float, ...]) -> tuple[Image.Image, tuple[int, ...]]:
    """An insert case's held-out photo, scaled to at most 1600 px, and its selection as a
    rectangle (x, y, width, height)."""
    photo = Image.open(next(folder.glob(f"*{key}*"))).convert("RGB")
    photo.thumbnail((1600, 1600), Image.Resampling.LANCZOS)
    (w, h), (x0, y0, x1, y1) = photo.size, fractions
    return photo, (int(x0 * w), int(y0 * h), int((x1 - x0) * w), int((y1 - y0) * h))


def inserted(folder: Path, work: Path, styles_tried: tuple[int, ...] = (0, 1),
             labels: tuple[str, ...] = FIGURE_SETTINGS, seed: int = 0) -> list[dict]:
    """Each insert case in each of `styles_tried` under each setting of `labels`: its numbers,
    and its context crop saved as WORK/insert-LABEL-CLASS-STYLE.png."""
    net, judge = load_backbone(), load_judge()
    rows = []
    for key, cls, fractions in INSERTS:
        photo, rect = case_photo(folder, key, fractions)
        w, h = photo.size
        mask = rect_mask(rect, photo.size)
        index = net.categories.index(cls)
        for style in styles_tried:
            m7, prior, _, learned = style_pathway(index, net, style, net.input_size)
            top = styles.top_image(learned, style)
            for label in labels:
                settings = INSERT_SETTINGS[label]
                res = fill_selection(photo, mask, index, net, m7=m7, prior_images=prior, modify=False,
                                     seed=seed, settings=settings, style_image=top)
                found = naturalness(net, judge, res.photo, index, mask)
                cx, cy, side, _ = res.metrics["context"]
                res.photo.crop((max(0, cx), max(0, cy), min(w, cx + side), min(h, cy + side))).save(
                    work / f"insert-{label.replace(' ', '_')}-{cls.replace(' ', '_')}-{style}.png")
                rows.append({"label": label, "class": cls, "style": style, "lite0": found.solver["clean"],
                             "seconds": res.metrics["seconds"], "seam": res.metrics["seam"],
                             "judge": found.judge["clean"], "judge_top1": found.judge_top1,
                             "fill": found.fill.high_frequency_share,
                             "around": found.surroundings.high_frequency_share,
                             "light": found.fill.luminance - found.surroundings.luminance,
                             "alone": found.alone["judge"], "alone_top1": found.alone["judge_top1"],
                             "outside": res.metrics["outside_changed_pixels"]})
                print(rows[-1], flush=True)
    return rows


def settings_run(rows: list[dict]) -> list[str]:
    """The settings the rows were run with, in INSERT_SETTINGS' order."""
    return [label for label in INSERT_SETTINGS if any(r["label"] == label for r in rows)]


def insert_figure(rows: list[dict], work: Path, out: Path) -> None:
    labels = settings_run(rows)
    sheet = Image.new("RGB", (CELL * len(INSERTS), len(labels) * (CELL + 34)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, label in enumerate(labels):
        for i, (_, cls, _) in enumerate(INSERTS):
            r = next(r for r in rows if r["label"] == label and r["class"] == cls and r["style"] == 0)
            tile = Image.open(work / f"insert-{label.replace(' ', '_')}-{cls.replace(' ', '_')}-0.png")
            sheet.paste(tile.resize((CELL, CELL), Image.Resampling.LANCZOS), (CELL * i, row * (CELL + 34)))
            y = row * (CELL + 34) + CELL + 2
            draw.text((CELL * i + 3, y), f"{label}: Lite0 {r['lite0']:.2f} judge {r['judge']:.2f}",
                      fill="black")
            draw.text((CELL * i + 3, y + 15), f"fill hf {r['fill']:.2f} / around {r['around']:.2f}",
                      fill="black")
    sheet.save(out, quality=88)


def _slashed(rows: list[dict], key: str, form: str) -> str:
    return " / ".join(format(r[key], form) for r in rows)


def insert_table(rows: list[dict]) -> str:
    """Each insert's numbers under each setting it was run with, in INSERT_SETTINGS' order
    (a / b / c)."""
    run = settings_run(rows)
    labels = " / ".join(run)
    lines = [f"| class | style | Lite0 {labels} | judge {labels} | fill's share {labels} (around) | "
             f"fill's light - around's | seam | seconds |", "|---|---|---|---|---|---|---|---|"]
    for _, cls, _ in INSERTS:
        for style in sorted({r["style"] for r in rows}):
            mine = [next(r for r in rows if r["label"] == label and r["class"] == cls and r["style"] == style)
                    for label in run]
            lines.append(f"| {cls} | {style} | {_slashed(mine, 'lite0', '.2f')} | "
                         f"{_slashed(mine, 'judge', '.3f')} | {_slashed(mine, 'fill', '.3f')} "
                         f"({mine[0]['around']:.3f}) | {_slashed(mine, 'light', '+.2f')} | "
                         f"{_slashed(mine, 'seam', '.2f')} | {_slashed(mine, 'seconds', '.1f')} |")
    return "\n".join(lines)


def insert_bar(rows: list[dict]) -> str:
    """The issue's bar, counted per setting."""
    lines = ["| | p_after >= 0.5 under Lite0 and the judge | fill's share within 0.08 of its "
             "surroundings' | all three | pixels changed outside | judge's top-1 is the class | "
             "mean judge p | mean light gap | the object alone: judge's top-1, mean p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label in settings_run(rows):
        mine = [r for r in rows if r["label"] == label]
        both = [r["lite0"] >= 0.5 and r["judge"] >= 0.5 for r in mine]
        close = [abs(r["fill"] - r["around"]) <= 0.08 for r in mine]
        top1 = sum(r["judge_top1"] == r["class"] for r in mine)
        lines.append(f"| {label} | {sum(both)} | {sum(close)} | "
                     f"{sum(b and c for b, c in zip(both, close, strict=True))} | "
                     f"{sum(r['outside'] for r in mine)} | {top1} | "
                     f"{sum(r['judge'] for r in mine) / len(mine):.3f} | "
                     f"{sum(abs(r['light']) for r in mine) / len(mine):.3f} | "
                     f"{sum(r['alone_top1'] == r['class'] for r in mine)}, "
                     f"{sum(r['alone'] for r in mine) / len(mine):.3f} |")
    return "\n".join(lines)


# Real photos of a class in an insert case's photo and selection, as (the insert case's class,
# the object's class, source, crop box or None for the whole image, whether its GrabCut outline is
# used). The ladybird's crops are centred on the beetle of the 2560x1600 photo, tight to loose;
# the others are foolbox's ImageNet samples of a class that fits the case's photo. Which outlines
# are used was decided by looking at the cuts before anything was measured: the ladybird's
# loosest crop keeps a blob of its stem's green and the jeep its gravel, so those two are pasted
# as rectangles only.
REAL_OBJECTS = (*(("ladybug", "ladybug", "LadyBird.jpg", (1800 - r, 840 - r, 1800 + r, 840 + r), r < 260)
                  for r in (130, 180, 260)),
                ("ladybug", "dung beetle", "imagenet_19_305.jpg", None, True),
                ("ladybug", "leafhopper", "imagenet_18_317.jpg", None, True),
                ("bald eagle", "bald eagle", "imagenet_17_22.jpg", None, True),
                ("golden retriever", "bull mastiff", "imagenet_00_243.jpg", None, True),
                ("hay", "jeep", "imagenet_06_609.jpg", None, False),
                ("pizza", "bottlecap", "imagenet_09_455.jpg", None, True),
                ("pizza", "Loafer", "imagenet_11_630.jpg", None, True),
                ("pizza", "drum", "imagenet_10_541.jpg", None, True))


def grabcut_outline(real: Image.Image) -> np.ndarray:
    """The object of a photo as a float alpha (HxW): OpenCV's GrabCut from a rectangle inset by
    8 %, its largest part."""
    bgr = np.ascontiguousarray(np.asarray(real)[..., ::-1])
    h, w = bgr.shape[:2]
    labels = np.zeros((h, w), np.uint8)
    cv2.grabCut(bgr, labels, (int(0.08 * w), int(0.08 * h), int(0.84 * w), int(0.84 * h)),
                np.zeros((1, 65)), np.zeros((1, 65)), 8, cv2.GC_INIT_WITH_RECT)
    found = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    count, parts, stats, _ = cv2.connectedComponentsWithStats(found)
    if count > 1:
        found = (parts == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
    return found.astype(np.float32)


def pasted(photo: Image.Image, rect: tuple[int, ...], real: Image.Image,
           alpha: np.ndarray | None) -> Image.Image:
    """A copy of the photo with the real photo resized into the rectangle, whole (alpha None) or
    through its alpha resized with it and feathered by 1 px."""
    x, y, w, h = rect
    tile = np.asarray(real.resize((w, h), Image.Resampling.LANCZOS))
    under = np.asarray(photo.crop((x, y, x + w, y + h)))
    a = np.ones((h, w), np.float32) if alpha is None else cv2.GaussianBlur(
        cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 1.0)
    out = photo.copy()
    out.paste(Image.fromarray(blend(under, tile, np.ones((h, w), bool), a, "alpha")), (x, y))
    return out


def real_objects(held_out: Path, open_photos: Path, work: Path) -> list[dict]:
    """Each real photo pasted, resized, into an insert case's selection in place of a fill, as a
    rectangle and (where its cut is used) cut to its own outline, measured by
    `stylefill.naturalness` as the inserts are; the context crops it judged go to
    docs/images/real-objects.jpg (rectangles above, outlines below)."""
    import foolbox

    samples = Path(foolbox.__file__).parent / "data"
    net, judge = load_backbone(), load_judge()
    rows, tiles = [], []
    for case_cls, cls, source, box, outlined in REAL_OBJECTS:
        key, _, fractions = next(case for case in INSERTS if case[1] == case_cls)
        photo, rect = case_photo(held_out, key, fractions)
        real = Image.open(next(open_photos.glob(f"*{source}")) if source == "LadyBird.jpg"
                          else samples / source).convert("RGB")
        real = real.crop(box) if box else real
        outline = grabcut_outline(real) if outlined else None
        mask = rect_mask(rect, photo.size)
        view = context_box(selection_box(mask), photo.width, photo.height, InsertSettings.context,
                           InsertSettings.min_context)  # the context crop the networks judged
        for how, alpha in [("rectangle", None)] + ([("outline", outline)] if outlined else []):
            result = pasted(photo, rect, real, alpha)
            found = naturalness(net, judge, result, net.categories.index(cls), mask)
            rows.append({"case": case_cls, "class": cls, "source": source, "how": how,
                         "crop": box[2] - box[0] if box else real.width,
                         "object_share": float(outline.mean()) if outline is not None else None,
                         "lite0": found.solver["clean"], "judge": found.judge["clean"],
                         "judge_top1": found.judge_top1, "fill": found.fill.high_frequency_share,
                         "around": found.surroundings.high_frequency_share})
            print(rows[-1], flush=True)
            tiles.append(Image.fromarray(crop(np.asarray(result), view)))
    sheet = Image.new("RGB", (CELL * len(REAL_OBJECTS), 2 * (CELL + 34)), "white")
    draw = ImageDraw.Draw(sheet)
    objects = dict.fromkeys((r["source"], r["crop"]) for r in rows)
    column = {source_crop: i for i, source_crop in enumerate(objects)}
    for tile, r in zip(tiles, rows, strict=True):
        x, y = CELL * column[r["source"], r["crop"]], (r["how"] == "outline") * (CELL + 34)
        sheet.paste(tile.resize((CELL, CELL), Image.Resampling.LANCZOS), (x, y))
        draw.text((x + 3, y + CELL + 2), f"{r['class'][:12]}: Lite0 {r['lite0']:.2f}", fill="black")
        draw.text((x + 3, y + CELL + 17), f"judge {r['judge']:.2f} {r['judge_top1'][:14]}", fill="black")
    sheet.save(work / "real-objects.jpg", quality=88)
    return rows


def real_table(rows: list[dict]) -> str:
    lines = ["| real photo | class | crop (px) | pasted (the object's share of the box) | Lite0 | judge | "
             "judge's top-1 | fill's share (around) |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['source']} | {r['class']} | {r['crop']} | {r['how']} "
              f"({1 if r['how'] == 'rectangle' else round(r['object_share'], 2)}) | {r['lite0']:.3f} | "
              f"{r['judge']:.3f} | {r['judge_top1']} | {r['fill']:.3f} ({r['around']:.3f}) |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/stylefill-natural"),
                    help="where the results and their reports go (reused when present)")
    ap.add_argument("--inserts", type=Path, metavar="HELD_OUT",
                    help="only the insertion picture and table, from this folder of held-out photos")
    ap.add_argument("--real-objects", type=Path, nargs=2, metavar=("HELD_OUT", "OPEN"),
                    help="only real photos in the insert selections (held-out and open-photos folders)")
    ap.add_argument("--styles", type=int, nargs="+", default=[0, 1],
                    help="the data-free styles each insert case is drawn in (default: 0 1)")
    ap.add_argument("--settings", nargs="+", choices=list(INSERT_SETTINGS), default=list(FIGURE_SETTINGS),
                    help="which of the insert settings to run (default: the figure's three)")
    ap.add_argument("--seed", type=int, default=0, help="the inserts' seed (default: 0)")
    ap.add_argument("--figure", type=Path, default=HERE / "images" / "natural-insert.jpg",
                    help="where the insertion picture goes (default: the README's)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.real_objects:
        rows = real_objects(*args.real_objects, args.work)
        (args.work / "real-objects.json").write_text(json.dumps(rows, indent=1))
        (args.work / "real-objects.jpg").replace(HERE / "images" / "real-objects.jpg")
        print(real_table(rows))
        return
    if args.inserts:
        rows = inserted(args.inserts, args.work, tuple(args.styles), tuple(args.settings),
                        args.seed)
        (args.work / "inserts.json").write_text(json.dumps(rows, indent=1))
        insert_figure(rows, args.work, args.figure)
        print(insert_table(rows))
        print(insert_bar(rows))
        return
    found = measured(args.work)
    figure(found, args.work, HERE / "images" / "natural-visualize.jpg")
    print(table(found))


if __name__ == "__main__":
    main()
