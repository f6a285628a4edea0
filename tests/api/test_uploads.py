"""Images and selections as they arrive over the wire (stylefill.images decode_* / rect_mask),
on chosen cases and on what hypothesis makes up."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stylefill.errors import InputError
from stylefill.images import decode_image, decode_mask, rect_mask, selection_mask

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


def gradient(dtype: type, high: float) -> np.ndarray:
    """A left-to-right ramp 0..high over 256 columns (8 rows)."""
    return np.tile(np.linspace(0, high, 256, dtype=np.float64), (8, 1)).astype(dtype)


@pytest.mark.parametrize("values, fmt, to_255", [
    (gradient(np.uint16, 65535), "PNG", 65535),           # 16-bit grey PNG (I;16)
    (gradient(np.uint16, 65535), "TIFF", 65535),          # 16-bit grey TIFF
    (gradient(np.int32, 65535), "TIFF", 65535),           # 16-bit values in a 32-bit container
    (gradient(np.float32, 1.0), "TIFF", 1.0),             # float in 0..1
    (gradient(np.float32, 4000.0) - 1000, "TIFF", None),  # float outside 0..1: stretched
    (gradient(np.int32, 2**31 - 1), "TIFF", None),        # 32-bit integers: stretched
])
def test_deep_grey_images_are_scaled_to_8_bits_not_clipped(values, fmt, to_255):
    """Pillow's convert("RGB") clips such images (a 16-bit PNG became 99.7 % white)."""
    got = np.asarray(decode_image(encoded(Image.fromarray(values), fmt)))
    assert got.shape == (8, 256, 3) and (got[..., 0] == got[..., 2]).all()
    low, high = (0.0, to_255) if to_255 else (values.min(), values.max())
    want = np.round((values.astype(np.float64) - low) * 255 / (high - low))
    assert np.abs(got[..., 0] - want).max() <= 1
    assert (got == 255).mean() < 0.01


def test_nan_in_a_float_image_is_black():
    values = gradient(np.float32, 1.0)
    values[:, :10] = np.nan
    got = np.asarray(decode_image(encoded(Image.fromarray(values), "TIFF")))
    assert (got[:, :10] == 0).all() and got[:, -1].min() == 255


PROPERTIES = settings(max_examples=150, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


@PROPERTIES
@given(st.binary(max_size=2000) | st.builds(lambda data, at, byte: data[:at] + bytes([byte])
                                            + data[at + 1:],
                                            st.just(encoded(Image.new("RGB", (16, 12)))),
                                            st.integers(0, 80), st.integers(0, 255)))
def test_any_bytes_decode_to_an_rgb_image_or_an_input_error(data):
    """Random bytes and PNGs with one byte changed: an RGB image or InputError, nothing else."""
    try:
        img = decode_image(data)
    except InputError:
        return
    assert img.mode == "RGB" and img.width * img.height > 0


MASK_MODES = ["L", "1", "I;16", "RGB", "RGBA", "LA", "P"]


@PROPERTIES
@given(st.integers(1, 24), st.integers(1, 24), st.sampled_from(MASK_MODES), st.data())
def test_a_mask_in_any_mode_decodes_to_what_was_drawn(w, h, mode, data):
    selected = data.draw(st.lists(st.booleans(), min_size=w * h, max_size=w * h))
    drawn = np.array(selected, dtype=bool).reshape(h, w)
    values = drawn.astype(np.uint8)
    if mode == "RGB":
        img = Image.fromarray(np.dstack([np.zeros_like(values), values * 9, np.zeros_like(values)]))
    elif mode in ("RGBA", "LA"):
        colour = np.full((h, w, 3 if mode == "RGBA" else 1), 200, np.uint8)
        img = Image.fromarray(np.dstack([colour, values * 255]), mode)
    elif mode == "P":
        img = Image.fromarray(values, "P")
        img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    else:
        img = Image.fromarray(values.astype(np.uint16) if mode == "I;16" else values * 255)
        img = img.convert("1") if mode == "1" else img
    data_ = encoded(img, transparency=0) if mode == "P" else encoded(img)
    if not drawn.any():
        with pytest.raises(InputError, match="selects nothing"):
            decode_mask(data_, (w, h))
        return
    assert np.array_equal(decode_mask(data_, (w, h)), drawn)


@PROPERTIES
@given(st.tuples(*[st.integers(-2**40, 2**40)] * 4), st.integers(1, 64), st.integers(1, 64))
def test_a_rect_selects_exactly_its_pixels_or_is_refused(rect, width, height):
    x, y, w, h = rect
    try:
        mask = rect_mask(rect, (width, height))
    except InputError as exc:
        assert w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height, exc
        return
    assert mask.shape == (height, width) and mask.sum() == w * h
    assert mask[y, x] and mask[y + h - 1, x + w - 1]


@PROPERTIES
@given(st.one_of(st.none(), st.binary(max_size=64), st.just(encoded(Image.new("L", SIZE, 1)))),
       st.one_of(st.none(), st.tuples(*[st.integers(-5, 50)] * 4)))
def test_a_selection_is_one_mask_or_one_rect(mask, rect):
    if (mask is None) == (rect is None):
        with pytest.raises(InputError, match="a 'mask' or a 'rect'|a selection is needed"):
            selection_mask(SIZE, mask, rect)
        return
    try:
        selection = selection_mask(SIZE, mask, rect)
    except InputError:
        return
    assert selection.shape == (SIZE[1], SIZE[0]) and selection.any()
