"""Images and selections as they arrive over the wire (stylefill.images decode_* / rect_mask)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from stylefill.errors import InputError
from stylefill.images import decode_image, decode_mask, rect_mask

SIZE = (40, 30)  # (w, h)


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def square() -> np.ndarray:
    """The expected selection: rows 5..14, columns 10..29."""
    want = np.zeros((30, 40), dtype=bool)
    want[5:15, 10:30] = True
    return want


def as_mode(mode: str) -> Image.Image:
    """The square drawn in `mode` the way a painting program would save a selection."""
    values = square().astype(np.uint8)
    if mode == "L":
        return Image.fromarray(values * 255)
    if mode == "1":
        return Image.fromarray(values * 255).convert("1")
    if mode == "I;16":
        return Image.fromarray(values.astype(np.uint16))  # value 1, not 255: still selected
    if mode == "RGB":  # any non-zero channel counts
        rgb = np.zeros((30, 40, 3), np.uint8)
        rgb[..., 2] = values * 7
        return Image.fromarray(rgb)
    if mode == "RGBA":  # colour everywhere, alpha decides
        rgba = np.full((30, 40, 4), 255, np.uint8)
        rgba[..., 3] = values * 255
        return Image.fromarray(rgba)
    if mode == "LA":
        la = np.full((30, 40, 2), 200, np.uint8)
        la[..., 1] = values * 128
        return Image.fromarray(la, "LA")
    if mode == "P":  # palette with a transparent index: transparency decides
        p = Image.fromarray(values, "P")
        p.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
        p.info["transparency"] = 0
        return p
    raise ValueError(mode)


@pytest.mark.parametrize("mode", ["L", "1", "I;16", "RGB", "RGBA", "LA", "P"])
def test_mask_modes(mode):
    data = encoded(as_mode(mode), transparency=0) if mode == "P" else encoded(as_mode(mode))
    mask = decode_mask(data, SIZE)
    assert mask.dtype == bool and mask.shape == (30, 40)
    assert np.array_equal(mask, square())


def test_mask_errors():
    with pytest.raises(InputError, match="mask is 30x40 but the image is 40x30"):
        decode_mask(encoded(Image.new("L", (30, 40), 255)), SIZE)
    with pytest.raises(InputError, match="mask selects nothing"):
        decode_mask(encoded(Image.new("RGBA", SIZE, (255, 255, 255, 0))), SIZE)
    with pytest.raises(InputError, match="mask: not an image"):
        decode_mask(b"\x89PNG but no", SIZE)


def test_rect_mask():
    assert np.array_equal(rect_mask((10, 5, 20, 10), SIZE), square())
    assert rect_mask((0, 0, 40, 30), SIZE).all()
    with pytest.raises(InputError, match="width and height must be positive"):
        rect_mask((0, 0, 0, 5), SIZE)
    for outside in [(-1, 0, 5, 5), (0, 0, 41, 5), (35, 25, 6, 5)]:
        with pytest.raises(InputError, match="does not fit inside the 40x30 image"):
            rect_mask(outside, SIZE)


def test_decode_image_is_rgb_and_oriented():
    rgba = Image.new("RGBA", (40, 30), (10, 20, 30, 40))
    assert decode_image(encoded(rgba)).mode == "RGB"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    jpeg = encoded(Image.new("RGB", (40, 30), (200, 10, 10)), "JPEG", exif=exif)
    assert decode_image(jpeg).size == (30, 40)
    with pytest.raises(InputError, match="image: 8001x2 is larger than the limit of 8000 px"):
        decode_image(encoded(Image.new("L", (8001, 2))))
