"""Contact sheets like the paper's Figures 5-8: one class seen through many pathways."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from . import styles
from .backbones import Backbone
from .errors import InputError
from .images import to_pil
from .masks import pathway
from .optvis.recipes import InversionSettings, VisualizationSettings, invert, visualize
from .progress import Cancel, Progress, scaled

BY = ("styles", "cells", "dropout")
CELL_ORDER = ("top-left", "top", "top-right", "left", "centre", "right",
              "bottom-left", "bottom", "bottom-right")


def grid(images: Sequence[Image.Image], labels: Sequence[str], cols: int, cell: int = 192,
         title: str = "") -> Image.Image:
    """Images on a white grid, each with a one-line label under it."""
    label_h, title_h = 18, (24 if title else 0)
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, title_h + rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 5), title, fill="black")
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        x, y = (i % cols) * cell, title_h + (i // cols) * (cell + label_h)
        sheet.paste(img.convert("RGB").resize((cell - 4, cell - 4), Image.Resampling.LANCZOS), (x + 2, y + 2))
        draw.text((x + 4, y + cell), label, fill="black")
    return sheet


def sheet(index: int, net: Backbone, by: str, *, count: int = 6, seed: int = 0,
          settings: VisualizationSettings = VisualizationSettings(),
          progress: Progress | None = None, cancel: Cancel | None = None) -> Image.Image:
    """Visualise a class per learned style, per m5 position (3x3), or per dropout member."""
    if by not in BY:
        raise InputError(f"--by must be one of {', '.join(BY)}")
    name = net.categories[index]
    if by == "styles":
        ss = styles.load_or_learn(index, net, seed=seed, progress=progress, cancel=cancel)
        images = [Image.open(ss.preview_path(s.id)) for s in ss.styles]
        labels = [f"style {s.id}  w={s.weight:.2f}  p={s.preview_prob:.2f}" for s in ss.styles]
        return grid(images, labels, cols=len(images), title=f"{name}: styles ({ss.source})")
    if by == "cells":
        views = [(pos, {"cells": pos}) for pos in CELL_ORDER]
    else:
        views = [(f"dropout seed {s}", {"dropout_seed": s}) for s in range(seed, seed + count)]
    images, labels = [], []
    for i, (label, kw) in enumerate(views):
        res = visualize(net, index, seed=seed, settings=settings, cancel=cancel,
                        masks=pathway(net, net.input_size, **kw),
                        progress=scaled(progress, i / len(views), (i + 1) / len(views), f"{label}: "))
        images.append(to_pil(res.image))
        labels.append(f"{label}  p={res.prob:.2f}")
    cols = 3 if by == "cells" else min(len(images), 6)
    return grid(images, labels, cols=cols, title=f"{name}: by {by}")


def layer_sheet(net: Backbone, photo, *, settings: InversionSettings = InversionSettings(),
                seed: int = 0, progress: Progress | None = None,
                cancel: Cancel | None = None) -> Image.Image:
    """The photo rebuilt from each layer's features alone (Mahendran & Vedaldi's figure): from
    noise under TV only, so each image shows what that depth keeps and nothing a database adds.
    `photo` is a (1, 3, S, S) tensor at the network's size."""
    layers = (*net.stage_names(), "pool5")
    images, labels = [to_pil(photo)], ["input"]
    for i, layer in enumerate(layers):
        res = invert(net, photo, prior="tv", init="rand", layer=layer, settings=settings,
                     seed=seed, cancel=cancel,
                     progress=scaled(progress, i / len(layers), (i + 1) / len(layers), f"{layer}: "))
        images.append(to_pil(res.image))
        labels.append(f"{layer}  fe={res.feature_error:.3f}")
    return grid(images, labels, cols=min(len(images), 6), title=f"{net.name}: by layers")
