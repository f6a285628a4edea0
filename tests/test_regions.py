"""The geometry of a selection and its square context crop."""

from __future__ import annotations

import numpy as np
import pytest

from stylefill.errors import InputError
from stylefill.regions import Box, context_box, crop, selection_box


def test_selection_box_is_the_tight_bounding_box():
    mask = np.zeros((50, 80), bool)
    mask[10:20, 30:45] = True
    mask[25, 60] = True
    assert selection_box(mask) == Box(30, 10, 61, 26)
    with pytest.raises(InputError, match="empty"):
        selection_box(np.zeros((5, 5), bool))


def test_context_is_a_square_moved_inside_the_photo():
    assert context_box(Box(0, 0, 10, 20), 100, 100, 2.0, 16) == Box(0, 0, 40, 40)
    assert context_box(Box(90, 90, 100, 100), 100, 100, 2.0, 16) == Box(80, 80, 100, 100)
    big = context_box(Box(10, 10, 60, 60), 80, 40, 2.0, 16)  # larger than the photo: centred
    assert big.size == (100, 100) and (big.x0, big.y0) == (-15, -15)


def test_crop_mirrors_what_lies_outside():
    rgb = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    out = crop(rgb, Box(-2, -1, 4, 5))
    assert out.shape == (6, 6, 3)
    assert np.array_equal(out[1:, 2:], rgb[:5, :4])
    assert np.array_equal(out[1:, 0], rgb[:5, 2]) and np.array_equal(out[0, 2:], rgb[1, :4])
