"""Contact sheets (paper Figs. 5-8): a grid of labelled images, one visualisation per pathway."""

from __future__ import annotations

import pytest
from PIL import Image

from stylefill.errors import InputError
from stylefill.optvis.recipes import InversionSettings, VisualizationSettings
from stylefill.sheets import CELL_ORDER, grid, layer_sheet, sheet


def test_grid_places_each_image_with_its_label():
    images = [Image.new("RGB", (50, 40), c) for c in ("red", "green", "blue")]
    out = grid(images, ["a", "b", "c"], cols=2, cell=64, title="t")
    assert out.size == (128, 24 + 2 * (64 + 18))
    assert out.getpixel((32, 24 + 32)) == (255, 0, 0)
    assert out.getpixel((64 + 32, 24 + 32)) == (0, 128, 0)
    assert out.getpixel((32, 24 + 82 + 32)) == (0, 0, 255)
    assert out.getpixel((64 + 32, 24 + 82 + 32)) == (255, 255, 255)  # empty cell


def test_sheet_by_cells_and_by_dropout_with_progress(backbone):
    short = VisualizationSettings(iters=2)
    stages = []
    cells = sheet(301, backbone, "cells", settings=short,
                  progress=lambda f, stage, p: stages.append((round(f, 3), stage)))
    assert cells.size == (3 * 192, 24 + 3 * (192 + 18))
    labels = [s for _, s in stages if s.endswith("optimising 2/2")]
    assert labels == [f"{pos}: optimising 2/2" for pos in CELL_ORDER]
    assert stages[-1][0] == 1.0
    members = sheet(301, backbone, "dropout", count=2, settings=short)
    assert members.size == (2 * 192, 24 + 192 + 18)
    with pytest.raises(InputError, match="--by"):
        sheet(301, backbone, "colours")


def test_layer_sheet_rebuilds_the_photo_from_each_layer(backbone, photo):
    stages = []
    out = layer_sheet(backbone, photo, settings=InversionSettings(iters=2),
                      progress=lambda f, stage, p: stages.append(stage))
    layers = [*backbone.stage_names(), "pool5"]
    assert out.size == (6 * 192, 24 + 192 + 18)  # the photo and five layers
    assert [s.split(":")[0] for s in stages if s.endswith("2/2")] == layers
