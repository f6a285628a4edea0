"""What the network sees in a photo, around a selection and inside it (real weights and photos)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

from stylefill.classification import inside_selection, predict, selection_class, suggest
from stylefill.errors import InputError
from stylefill.images import fit_square, to_tensor

CUP = (120, 40, 300, 220)  # the espresso cup in skimage's coffee (x, y, w, h)


@pytest.fixture(scope="module")
def coffee() -> tuple[Image.Image, np.ndarray]:
    photo = Image.fromarray(skimage.data.coffee())
    mask = np.zeros((photo.height, photo.width), bool)
    x, y, w, h = CUP
    mask[y:y + h, x:x + w] = True
    return photo, mask


def test_inside_a_selection_is_what_it_holds_and_modify_takes_the_first(backbone, coffee):
    photo, mask = coffee
    found = inside_selection(photo, mask, backbone, top=3)
    assert found[0].cls in {"espresso", "cup", "coffee mug"}, found
    assert [p.prob for p in found] == sorted((p.prob for p in found), reverse=True)
    assert selection_class(photo, mask, backbone) == found[0].index


def test_around_a_selection_its_own_content_does_not_vote(backbone, coffee):
    """The cup is inpainted away before the context is classified: what fits around it is a
    table-top thing, and the cup itself drops."""
    photo, mask = coffee
    around = {p.cls: p.prob for p in suggest(photo, mask, backbone, top=1000)}
    inside = {p.cls: p.prob for p in inside_selection(photo, mask, backbone, top=1000)}
    assert around["espresso"] < inside["espresso"] / 2, (around["espresso"], inside["espresso"])


def test_top_must_be_positive(backbone, coffee):
    with pytest.raises(InputError, match="top"):
        predict(backbone, to_tensor(fit_square(coffee[0], 224)), top=0)
