"""Suggest keeps only what it looks at (operations.classify.suggest_view): the widest context
crop, at no more than the network's resolution of the narrowest; its suggestions stay those of
the whole photo."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

from stylefill import classification
from stylefill.operations import SuggestRequest, run


@pytest.fixture(scope="module")
def big_photo() -> Image.Image:
    """skimage's astronaut at 2000 x 2000."""
    return Image.fromarray(skimage.data.astronaut()).resize((2000, 2000), Image.Resampling.BICUBIC)


def rect(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    mask = np.zeros((size[1], size[0]), dtype=bool)
    mask[y:y + h, x:x + w] = True
    return mask


@pytest.mark.parametrize("look, box, kept", [
    ("around", (1000, 470, 80, 60), (320, 320)),        # small: cropped, full resolution
    ("around", (400, 270, 1200, 1000), (500, 500)),     # large: all of it, reduced 4 times
    ("inside", (500, 500, 1000, 1000), (575, 575)),     # cropped to 1150 px, reduced twice
])
def test_suggestions_are_those_of_the_whole_photo(backbone, big_photo, look, box, kept):
    """The same classes (near-ties may swap) with probabilities within 0.025."""
    selection = rect(big_photo.size, box)
    request = SuggestRequest(image=big_photo, selection=selection, look=look, top=5)
    assert request.image.size == kept and request.selection.shape == kept[::-1]
    how = classification.suggest if look == "around" else classification.inside_selection
    whole = {p.cls: p.prob for p in how(big_photo, selection, backbone, 5)}
    found = {p["class"]: p["prob"] for p in run(request).metrics["suggestions"]}
    assert len(found.keys() & whole.keys()) >= 4, (found, whole)
    assert [found[c] for c in found.keys() & whole.keys()] == pytest.approx(
        [whole[c] for c in found.keys() & whole.keys()], abs=0.025)
