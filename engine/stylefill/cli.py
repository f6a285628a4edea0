"""`stylefill` command line: parse, show progress, call the Python API, write PNG/JSON.

Errors a user can fix print one line and exit with 2; nothing is computed here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .backbones import BACKBONES, DEFAULT_BACKBONE
from .errors import Cancelled, StylefillError


def _write_json(path: str | None, data: dict) -> None:
    if not path:
        return
    from .paths import atomic_write

    text = json.dumps(data, indent=2)
    try:
        atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n"))
    except OSError as exc:
        raise StylefillError(f"{path}: cannot write ({exc.strerror or exc})") from None


@contextmanager
def _bar(desc: str, total: int, quiet: bool):
    bar = tqdm(total=total, desc=desc, unit="step", disable=quiet, leave=False, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


def _step_callback(bar: tqdm) -> Callable[[int, int, float, object], None]:
    def cb(step: int, total: int, loss: float, _image: object) -> None:
        bar.total = total
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        bar.update(step - bar.n)  # tqdm redraws at most every `mininterval`, also into logs

    return cb


def _backbone(args: argparse.Namespace):
    from .backbones import load_backbone

    return load_backbone(args.backbone, args.weights)


def _seed(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(args.seed)


def cmd_classify(args: argparse.Namespace) -> dict:
    from .api import classify

    with _bar("classify", 2, args.quiet) as bar:
        net = _backbone(args)
        bar.update()
        top = classify(args.image, net, top=args.top, size=args.size)
        bar.update()
    for p in top:
        print(f"{p.prob:8.4f}  {p.index:4d}  {p.cls}")
    return {"backbone": net.name,
            "top": [{"class": p.cls, "index": p.index, "prob": p.prob} for p in top]}


def cmd_invert(args: argparse.Namespace) -> dict:
    from .api import InversionSettings, invert
    from .images import save_image

    settings = InversionSettings()
    if args.iters is not None:
        settings = replace(settings, iters=args.iters)
    if args.param:
        settings = replace(settings, param=args.param)
    net = _backbone(args)
    with _bar("invert", settings.iters, args.quiet) as bar:
        res = invert(args.image, net, prior=args.prior, init=args.init, whiten=args.whiten,
                     size=args.size, seed=args.seed, settings=settings,
                     callback=_step_callback(bar))
    save_image(res.image, args.output)
    print(f"{args.output}: relative_l2 {res.relative_l2:.4f}, feature_error "
          f"{res.feature_error:.4f}, {res.seconds:.1f} s")
    return {"backbone": net.name, "output": str(args.output), "prior": args.prior,
            "init": args.init, "whiten": args.whiten, "iters": settings.iters,
            "relative_l2": res.relative_l2, "feature_error": res.feature_error,
            "seconds": res.seconds}


def cmd_visualize(args: argparse.Namespace) -> dict:
    from .api import VisualizationSettings, visualize
    from .classes import resolve_class
    from .images import save_image
    from .masks import pathway

    settings = VisualizationSettings()
    if args.iters is not None:
        settings = replace(settings, iters=args.iters)
    if args.param:
        settings = replace(settings, param=args.param)
    if args.prior == "patch":
        settings = replace(settings, patch=settings.patch or 0.05)
    net = _backbone(args)
    resolve_class(args.cls, net.categories)  # fail fast, before any work
    masks = pathway(net, args.size or net.input_size, args.cells, args.dropout_seed)
    with _bar("visualize", settings.iters, args.quiet) as bar:
        res = visualize(args.cls, net, size=args.size, seed=args.seed, settings=settings,
                        masks=masks, style=args.style, callback=_step_callback(bar))
    save_image(res.image, args.output)
    print(f"{args.output}: {res.cls} p={res.prob:.4f}, top-1 {res.top1}, {res.seconds:.1f} s")
    return {"backbone": net.name, "output": str(args.output), "class": res.cls,
            "index": res.index, "prob": res.prob, "top1": res.top1, "seconds": res.seconds,
            "cells": args.cells, "dropout_seed": args.dropout_seed, "style": args.style}


def cmd_patchdb_build(args: argparse.Namespace) -> dict:
    from . import patchdb

    net = _backbone(args)
    scales = [float(s) for s in args.scales.split(",")]
    with tqdm(desc=f"patchdb {args.name}", unit="crop", disable=args.quiet,
              file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        db = patchdb.build(args.inputs, net, args.name, scales=scales, flips=not args.no_flips,
                           patch_px=args.patch_px, progress=progress)
    print(f"{db.path}: {len(db)} pairs from {len(db.meta['images'])} images ({db.meta['index']})")
    return {"path": str(db.path), **db.meta}


def cmd_patchdb_list(args: argparse.Namespace) -> dict:
    from . import patchdb

    dbs = patchdb.list_dbs(None if args.all else args.backbone)
    for m in dbs:
        if m.get("damaged"):
            print(f"{m['backbone']:20s} {m['name']:20s} damaged: rebuild it with patchdb build")
        else:
            print(f"{m['backbone']:20s} {m['name']:20s} {m['count']:9d} pairs  {m['index']}")
    if not dbs:
        print("no patch databases yet (the default one is built on first use)")
    return {"databases": dbs}


def _fraction_bar(bar: tqdm) -> Callable[[float, str, object], None]:
    def progress(fraction: float, stage: str, _preview: object) -> None:
        bar.set_description_str(stage[:40], refresh=False)
        bar.update(round(100 * fraction) - bar.n)

    return progress


def cmd_styles_learn(args: argparse.Namespace) -> dict:
    from . import styles

    net = _backbone(args)
    with tqdm(total=100, desc="styles", unit="%", disable=args.quiet, leave=False,
              file=sys.stderr) as bar:
        ss = styles.learn(args.cls, net, folder=args.folder, data_free=args.data_free,
                          topics=args.topics, samples=args.samples, keep_all=args.keep_all,
                          seed=args.seed, progress=_fraction_bar(bar))
    for s in ss.styles:
        print(f"style {s.id}: weight {s.weight:.2f}, {s.units} fc7 units, preview p={s.preview_prob:.3f}"
              f"  {ss.preview_path(s.id)}")
    dropped = ss.meta.get("dropped", [])
    if dropped:
        print(f"dropped {len(dropped)} image(s) the network does not rank '{ss.cls}' in its top 5 "
              f"(--keep-all keeps them): {', '.join(Path(p).name for p in dropped)}")
    print(f"{ss.root}: {len(ss.styles)} styles of {ss.cls} ({ss.source}), {ss.meta['seconds']:.0f} s")
    return {**ss.listing(), "dropped": dropped, "seconds": ss.meta["seconds"]}


def cmd_styles_list(args: argparse.Namespace) -> dict:
    from . import styles

    if args.cls is None:
        names = styles.list_classes(args.backbone)
        for n in names:
            print(n)
        if not names:
            print(f"no styles learned for {args.backbone} yet (styles learn CLASS --data-free)")
        return {"backbone": args.backbone, "classes": names}
    listing = styles.load(args.cls, args.backbone).listing()
    for s in listing["styles"]:
        print(f"style {s['id']}: weight {s['weight']:.2f}  {s['preview']}  ({len(s['images'])} images)")
    return listing


def cmd_invert_code(args: argparse.Namespace) -> dict:
    from .api import VisualizationSettings, invert_code
    from .images import save_image

    settings = VisualizationSettings(iters=args.iters or 128, robust=False)
    net = _backbone(args)
    with _bar(f"invert-code {args.levels}", settings.iters, args.quiet) as bar:
        res = invert_code(args.image, args.levels, net, seed=args.seed, settings=settings,
                          callback=_step_callback(bar))
    save_image(res.image, args.output)
    print(f"{args.output}: from the {args.levels} code ({res.open_bits} of {res.bits} bits on), "
          f"relative_l2 {res.relative_l2:.4f}, {res.seconds:.1f} s")
    return {"backbone": net.name, "output": str(args.output), "levels": args.levels,
            "bits": res.bits, "open_bits": res.open_bits, "class": res.cls,
            "relative_l2": res.relative_l2, "seconds": res.seconds}


def cmd_retrieve(args: argparse.Namespace) -> dict:
    from . import retrieval, styles

    net = _backbone(args)
    ss = styles.load(args.cls, net.name)
    with _bar("retrieve", 1, args.quiet) as bar:
        matches = retrieval.rank(ss, net, args.folder, style=args.style, like=args.like, top=args.top)
        bar.update()
    for m in matches:
        print(f"{m.score:8.4f}  in-cone {m.in_cone:.2f}  {m.image}")
    return {"class": ss.cls, "backbone": net.name, "style": args.style, "like": args.like,
            "ranking": [m.__dict__ for m in matches]}


def cmd_sheet(args: argparse.Namespace) -> dict:
    from .images import save_image
    from .sheets import sheet

    net = _backbone(args)
    with tqdm(desc=f"sheet by {args.by}", unit="image", disable=args.quiet, leave=False,
              file=sys.stderr) as bar:

        def progress(done: int, total: int, label: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(label, refresh=False)
            bar.refresh()

        img = sheet(args.cls, net, args.by, count=args.count, seed=args.seed, iters=args.iters,
                    progress=progress)
    save_image(img, args.output)
    print(f"{args.output}: {args.cls} by {args.by}")
    return {"backbone": net.name, "output": str(args.output), "class": args.cls, "by": args.by}


def _selection(args: argparse.Namespace):
    """The photo (full resolution) and the selection mask from --mask or --rect."""
    from .errors import InputError
    from .images import decode_mask, load_image, rect_mask

    photo = load_image(args.photo)
    if (args.mask is None) == (args.rect is None):
        raise InputError("give the selection as --mask MASK.png or --rect x,y,w,h (one of them)")
    if args.rect is not None:
        try:
            rect = tuple(int(v) for v in args.rect.split(","))
            if len(rect) != 4:
                raise ValueError
        except ValueError:
            raise InputError(f"--rect '{args.rect}': use x,y,w,h in pixels") from None
        return photo, rect_mask(rect, photo.size)
    path = Path(args.mask)
    if not path.is_file():
        raise InputError(f"{path}: no such mask file")
    return photo, decode_mask(path.read_bytes(), photo.size, label=str(path))


def cmd_suggest(args: argparse.Namespace) -> dict:
    from .api import suggest

    net = _backbone(args)
    photo, mask = _selection(args)
    with _bar("suggest", 1, args.quiet) as bar:
        found = suggest(photo, mask, top=args.top, backbone=net)
        bar.update()
    for p in found:
        print(f"{p.prob:8.4f}  {p.index:4d}  {p.cls}")
    return {"backbone": net.name,
            "suggestions": [{"class": p.cls, "index": p.index, "prob": p.prob} for p in found]}


def _edit(args: argparse.Namespace, modify: bool) -> dict:
    from .api import insert
    from .api import modify as _modify
    from .completion import InsertSettings
    from .images import save_image

    net = _backbone(args)
    photo, mask = _selection(args)
    settings = InsertSettings()
    if args.blend:
        settings = replace(settings, blend=args.blend)
    if args.refine:
        settings = replace(settings, refine=True)
    with tqdm(total=100, desc="modify" if modify else "insert", unit="%", disable=args.quiet,
              leave=False, file=sys.stderr) as bar:
        kw = dict(backbone=net, seed=args.seed, iters=args.iters, settings=settings,
                  progress=_fraction_bar(bar))
        res = (_modify(photo, mask, args.style, args.cls, **kw) if modify
               else insert(photo, mask, args.cls, args.style, **kw))
    save_image(res.photo, args.output)
    if args.layer:
        save_image(res.layer, args.layer)
    m = res.metrics
    print(f"{args.output}: {m['class']} p {m['prob_before']:.3f} -> {m['prob_after']:.3f}, "
          f"{m['outside_changed_pixels']} pixels changed outside the selection, {m['seconds']:.1f} s")
    return {"backbone": net.name, "output": str(args.output), "layer": args.layer,
            "offset": list(res.offset), "style": args.style, **m}


def cmd_insert(args: argparse.Namespace) -> dict:
    return _edit(args, modify=False)


def cmd_modify(args: argparse.Namespace) -> dict:
    return _edit(args, modify=True)


def cmd_serve(args: argparse.Namespace) -> dict:
    from .server import serve

    serve(host=args.host, port=args.port)  # host None = 127.0.0.1
    return {}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help=f"one of {', '.join(BACKBONES)}")
    p.add_argument("--weights", metavar="FILE", help="local state dict to load (weights_only)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--iters", type=int, help="solver iterations (default: per task)")
    p.add_argument("--size", type=int, help="network input size in px (default: backbone's)")
    p.add_argument("--json", metavar="PATH", help="write the metrics as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylefill", description="Intra-class knowledge of ImageNet CNNs as editing tools.")
    parser.add_argument("--version", action="version", version=f"stylefill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="top-k ImageNet classes of a photo")
    p.add_argument("image")
    p.add_argument("--top", type=int, default=5)
    _common(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("invert", help="rebuild a photo from its pool5 features (Eq. 1)")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--prior", choices=["none", "tv", "patch"], default="patch")
    p.add_argument("--init", choices=["rand", "patchdb"], default="patchdb")
    p.add_argument("--whiten", action="store_true", help="colour-whiten before the regularisers")
    p.add_argument("--param", choices=["pixel", "fourier"], help="image parameterisation")
    _common(p)
    p.set_defaults(func=cmd_invert)

    p = sub.add_parser("visualize", help="an image the network sees as a class (Eq. 2)")
    p.add_argument("cls", metavar="CLASS", help="class name (e.g. ladybug) or index 0-999")
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--prior", choices=["tv", "patch"], default="tv")
    p.add_argument("--param", choices=["pixel", "fourier"], help="image parameterisation")
    p.add_argument("--cells", help="m5 pathway: r0:r1,c0:c1 of the pool5 map, or a position "
                   "(top-left, top, top-right, left, centre, right, bottom-left, ...)")
    p.add_argument("--dropout-seed", type=int, help="m6-7 pathway: one random dropout mask "
                   "(rate 0.5) on the fully-connected features")
    p.add_argument("--style", type=int, metavar="K", help="m7 pathway of learned style K (data-free "
                   "styles are learned on first use)")
    _common(p)
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("styles", help="styles of a class: NMF topics of its fc7 features")
    ssub = p.add_subparsers(dest="styles_command", required=True)
    s = ssub.add_parser("learn", help="learn a class's styles from photos or without data")
    s.add_argument("cls", metavar="CLASS")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="folder", metavar="FOLDER", help="a folder of photos of the class")
    src.add_argument("--data-free", action="store_true",
                     help="from class visualisations under random dropout pathways")
    s.add_argument("--topics", type=int, help="number of styles (default 4)")
    s.add_argument("--samples", type=int, help="data-free: number of sampled pathways (default 12)")
    s.add_argument("--keep-all", action="store_true",
                   help="keep photos the network does not rank as the class in its top 5")
    _common(s)
    s.set_defaults(func=cmd_styles_learn)
    s = ssub.add_parser("list", help="learned styles of a class (or the classes that have some)")
    s.add_argument("cls", metavar="CLASS", nargs="?")
    _common(s)
    s.set_defaults(func=cmd_styles_list)

    p = sub.add_parser("invert-code", help="rebuild a photo from its own binary ReLU code (m5-7)")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--levels", choices=["m7", "m6-7", "m5-7"], default="m5-7")
    _common(p)
    p.set_defaults(func=cmd_invert_code)

    p = sub.add_parser("retrieve", help="rank a folder's photos by a class's style")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--class", dest="cls", required=True, metavar="CLASS")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--style", type=int, metavar="K", help="rank by loading on style K")
    how.add_argument("--like", metavar="IMAGE", help="rank by similarity to this photo's style mix")
    p.add_argument("--top", type=int, help="show only the best N")
    _common(p)
    p.set_defaults(func=cmd_retrieve)

    p = sub.add_parser("sheet", help="contact sheet of a class by styles, m5 cells or dropout members")
    p.add_argument("cls", metavar="CLASS")
    p.add_argument("--by", choices=["styles", "cells", "dropout"], required=True)
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--count", type=int, default=6, help="dropout members to show (default 6)")
    _common(p)
    p.set_defaults(func=cmd_sheet)

    p = sub.add_parser("patchdb", help="patch databases (cell feature <-> centre patch)")
    psub = p.add_subparsers(dest="patchdb_command", required=True)
    b = psub.add_parser("build", help="build a database from photos and folders")
    b.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDERS")
    b.add_argument("--name", required=True)
    b.add_argument("--scales", default="1,1.5,2", help="shorter side as multiples of the input")
    b.add_argument("--no-flips", action="store_true")
    b.add_argument("--patch-px", type=int, help="stored patch size (default: cell patch, 67)")
    _common(b)
    b.set_defaults(func=cmd_patchdb_build)
    ls = psub.add_parser("list", help="list databases")
    ls.add_argument("--all", action="store_true", help="all backbones")
    _common(ls)
    ls.set_defaults(func=cmd_patchdb_list)

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("photo", metavar="PHOTO")
        p.add_argument("--mask", metavar="MASK.png", help="the selection: PNG of the photo's size, "
                       "non-zero (or alpha) = selected")
        p.add_argument("--rect", metavar="x,y,w,h", help="the selection as a rectangle")

    p = sub.add_parser("suggest", help="objects that fit the context of a selection")
    selection(p)
    p.add_argument("--top", type=int, default=5)
    _common(p)
    p.set_defaults(func=cmd_suggest)

    for name, helptext in (("insert", "fill a selection with an object of a class, in a style"),
                           ("modify", "restyle the object inside a selection")):
        p = sub.add_parser(name, help=helptext)
        selection(p)
        p.add_argument("--class", dest="cls", metavar="CLASS", required=name == "insert",
                       help="class name or index" + ("" if name == "insert" else
                                                      " (default: top-1 inside the selection)"))
        p.add_argument("--style", type=int, metavar="K", required=name == "modify",
                       help="learned style (data-free styles are learned on first use)")
        p.add_argument("-o", "--output", required=True, help="the whole photo with the result (PNG)")
        p.add_argument("--layer", metavar="LAYER.png", help="also write the selection's bounding "
                       "box as RGBA (what the GIMP plug-in pastes)")
        p.add_argument("--blend", choices=["alpha", "seamless"], help="how the fill meets the photo")
        p.add_argument("--refine", action="store_true", help="large selections: a second pass at "
                       "twice the network's resolution (slower, more detail)")
        _common(p)
        p.set_defaults(func=cmd_insert if name == "insert" else cmd_modify)

    p = sub.add_parser("serve", help="run the HTTP engine the GIMP plug-in talks to")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; others print a warning)")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "seed", None) is not None:
            _seed(args)
        data = args.func(args)
        _write_json(getattr(args, "json", None), data)
    except (StylefillError, Cancelled) as exc:
        print(f"stylefill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stylefill: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
