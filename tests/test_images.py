"""Images in and out: every bad input is an InputError naming the file; saving is atomic."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from stylefill.errors import InputError
from stylefill.images import (
    MAX_PIXELS,
    fit_square,
    load_image,
    load_tensor,
    save_image,
    to_pil,
    to_tensor,
)


def _noise(w: int = 64, h: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height (what a decompression bomb looks like)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR payload starts after sig + len + type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="no such file") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_folder(tmp_path):
    with pytest.raises(InputError, match="folder") as info:
        load_image(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(InputError, match="not an image") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    _noise().save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_image_over_the_pixel_limit(tmp_path):
    path = tmp_path / "big.png"
    _noise(64, 48).save(path)
    with pytest.raises(InputError, match="64x48 is larger than the limit of 1,000 pixels") as info:
        load_image(path, max_pixels=1000)
    assert str(path) in str(info.value)
    assert load_image(path, max_pixels=64 * 48).size == (64, 48)


def test_huge_image_is_reported_as_too_large(tmp_path):
    """A 144-Mpixel header (over MAX_PIXELS; PIL's own bomb check fires at ~89 Mpixel) must be
    refused for its size, not called 'not an image', so the user knows what to do."""
    path = tmp_path / "panorama.png"
    path.write_bytes(_png_claiming(12_000, 12_000))
    assert 12_000 * 12_000 > MAX_PIXELS
    with pytest.raises(InputError, match="larger than the limit") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored landscape with 'rotate 90' must come out portrait."""
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    _noise(40, 20).save(path, exif=exif)
    img = load_image(path)
    assert img.size == (20, 40)
    assert img.mode == "RGB"


def test_grey_and_alpha_images_become_rgb(tmp_path):
    grey = tmp_path / "grey.png"
    Image.new("L", (10, 6), 128).save(grey)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (10, 6), (1, 2, 3, 4)).save(rgba)
    assert load_image(grey).mode == load_image(rgba).mode == "RGB"


def test_fit_square_and_tensor_round_trip(tmp_path):
    path = tmp_path / "wide.png"
    _noise(90, 30).save(path)
    x = load_tensor(path, 24)
    assert x.shape == (1, 3, 24, 24) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    img = fit_square(_noise(90, 30), 24)
    assert img.size == (24, 24)
    assert np.array_equal(np.asarray(to_pil(to_tensor(img))), np.asarray(img))


def test_save_image_is_atomic(tmp_path):
    """Only the final file appears: no temporary file is left beside it."""
    out = tmp_path / "result.png"
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert save_image(x, out) == out
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(to_pil(x)))
    save_image(_noise(), out)  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]
    assert Image.open(out).size == (64, 48)


def test_save_image_keeps_the_suffix_format(tmp_path):
    out = tmp_path / "result.jpg"
    save_image(_noise(), out)
    assert Image.open(out).format == "JPEG"


def test_failed_save_leaves_nothing_behind(tmp_path):
    """Writing onto a folder fails after the temporary file was written: it must be removed."""
    blocker = tmp_path / "taken.png"
    blocker.mkdir()
    with pytest.raises(InputError, match="cannot write") as info:
        save_image(_noise(), blocker)
    assert str(blocker) in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]
    assert list(blocker.iterdir()) == []


def test_save_to_an_unwritable_place(tmp_path):
    """/proc refuses new entries even to root, so this fails on any Linux machine."""
    out = "/proc/stylefill-test/result.png"
    with pytest.raises(InputError, match="cannot write") as info:
        save_image(_noise(), out)
    assert out in str(info.value)


def test_save_without_suffix_writes_png(tmp_path):
    """The documented default: PNG unless the suffix says otherwise."""
    out = tmp_path / "result"
    save_image(_noise(), out)
    assert [p.name for p in tmp_path.iterdir()] == ["result"]
    assert Image.open(out).format == "PNG"


def test_save_with_an_unknown_format_is_an_input_error(tmp_path):
    """A bad -o suffix is the user's mistake: an InputError (the CLI prints it), no temp file."""
    out = tmp_path / "result.xyz"
    with pytest.raises(InputError) as info:
        save_image(_noise(), out)
    assert str(out) in str(info.value)
    assert list(tmp_path.iterdir()) == []



def test_a_16_bit_photo_is_scaled_not_clipped(tmp_path):
    """A 16-bit grey PNG keeps its tones (convert("RGB") alone made 99.7 % of it white);
    more cases over the wire in tests/api/test_uploads.py."""
    ramp = np.tile(np.linspace(0, 65535, 256), (8, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    got = np.asarray(load_image(tmp_path / "deep.png"))
    assert got.shape == (8, 256, 3)
    assert np.abs(got[..., 1].astype(int) - np.round(ramp / 257)).max() <= 1
