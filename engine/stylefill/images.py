"""One place where images enter and leave Stylefill: validation, orientation, tensors, saving."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .paths import atomic_write

MAX_PIXELS = 100_000_000  # about 10000 x 10000; an 8000 px photo fits, a decompression bomb does not
# What the server accepts per image (docs/protocol.md): a whole request must stay far below RAM.
MAX_SIDE = 8000
MAX_UPLOAD_PIXELS = 64_000_000


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open, fully decode and EXIF-orient an image as RGB, or raise InputError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    return _rgb(_decode(path, str(path), max_pixels))


def decode_image(data: bytes, label: str = "image", max_pixels: int = MAX_UPLOAD_PIXELS,
                 max_side: int = MAX_SIDE) -> Image.Image:
    """An encoded image sent over the wire (the server's limits) -> RGB, or InputError."""
    return _rgb(_decode(io.BytesIO(data), label, max_pixels, max_side))


def _rgb(img: Image.Image) -> Image.Image:
    """RGB without a copy of an RGB image (a 64-megapixel one is 192 MB)."""
    img = _eight_bit(img)
    return img if img.mode == "RGB" else img.convert("RGB")


def _eight_bit(img: Image.Image) -> Image.Image:
    """A grey image of more than 8 bits scaled to 0..255, where Pillow's convert would clip
    it: 16-bit (PNG, TIFF, also in a 32-bit container) by its depth; float images in 0..1 (the
    usual range) by 255; other 32-bit integer or float images stretched from their least to
    their greatest value. NaN becomes black."""
    if not img.mode.startswith(("I", "F")):
        return img
    values = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if img.mode.startswith("I") and low >= 0 and high <= 65535:
        low, high = 0.0, 65535.0
    elif img.mode == "F" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    scale = 255.0 / (high - low) if high > low else 0.0
    return Image.fromarray(np.round((values - low) * scale).astype(np.uint8), "L")


def decode_mask(data: bytes, size: tuple[int, int], label: str = "mask") -> np.ndarray:
    """An encoded mask of the image's `size` (w, h) -> bool array (h, w), True = selected.

    Alpha decides where there is one (RGBA, LA, PNG transparency), else any non-zero value.
    A mask of another size or one that selects nothing is an InputError.
    """
    img = _decode(io.BytesIO(data), label, MAX_UPLOAD_PIXELS, MAX_SIDE)
    if img.size != tuple(size):
        raise InputError(f"{label} is {img.width}x{img.height} but the image is "
                         f"{size[0]}x{size[1]}; the mask must have the image's size")
    if "A" in img.getbands() or "transparency" in img.info:
        values = np.asarray(img.convert("RGBA"))[..., 3]
    else:
        values = np.asarray(img.convert("L") if img.mode == "P" else img)
    mask = values != 0
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    if not mask.any():
        raise InputError(f"{label} selects nothing; select the area to fill")
    return mask


def rect_mask(rect: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """A rectangle (x, y, w, h) inside an image of `size` (w, h) -> bool array (h, w)."""
    x, y, w, h = (int(v) for v in rect)
    width, height = size
    if w <= 0 or h <= 0:
        raise InputError(f"rect {x},{y},{w},{h}: width and height must be positive")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise InputError(f"rect {x},{y},{w},{h} does not fit inside the {width}x{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[y:y + h, x:x + w] = True
    return mask


def selection_mask(size: tuple[int, int], mask: bytes | None = None,
                   rect: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The selection of an image of `size` (w, h), from an encoded mask or a rectangle (exactly
    one of them): what both the CLI (--mask FILE / --rect) and the server (mask / rect) send."""
    if mask is not None and rect is not None:
        raise InputError("give a 'mask' or a 'rect', not both")
    if mask is None and rect is None:
        raise InputError("a selection is needed: a 'mask' (a PNG of the image's size, non-zero = "
                         "selected) or a 'rect' x,y,w,h")
    return decode_mask(mask, size) if mask is not None else rect_mask(rect, size)


def _decode(source: Path | BinaryIO, label: str, max_pixels: int,
            max_side: int | None = None) -> Image.Image:
    """Check the declared size before decoding, then decode fully and EXIF-orient (mode kept)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                opened = Image.open(source)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
            with opened as img:
                if max_side is not None and max(img.size) > max_side:
                    raise InputError(f"{label}: {img.width}x{img.height} is larger than the limit "
                                     f"of {max_side} px per side")
                if img.width * img.height > max_pixels:
                    raise InputError(
                        f"{label}: {img.width}x{img.height} is larger than the limit of "
                        f"{max_pixels:,} pixels"
                    )
                img.load()
                ImageOps.exif_transpose(img, in_place=True)
                return img
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{label}: is larger than the limit of {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise InputError(f"{label}: not an image Stylefill can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{label}: broken or truncated image ({exc})") from None


def fit_square(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to `size` and centre-crop: the network-size view of a photo."""
    return ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor (1, 3, H, W) in [0, 1]."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(x: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> PIL RGB (rounded, clipped)."""
    x = x.detach().cpu()
    if x.dim() == 4:
        x = x[0]
    arr = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr)


def load_tensor(path: str | Path, size: int) -> torch.Tensor:
    """A photo as the network sees it: (1, 3, size, size) in [0, 1]."""
    return to_tensor(fit_square(load_image(path), size))


def save_image(img: Image.Image | torch.Tensor, path: str | Path) -> Path:
    """Save atomically (PNG unless the suffix says otherwise); a full disk leaves no half file."""
    pil = to_pil(img) if isinstance(img, torch.Tensor) else img
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower()) if path.suffix else "PNG"
    if fmt is None:
        raise InputError(f"{path}: unknown image format '{path.suffix}'; use .png or .jpg")
    try:
        return atomic_write(path, lambda tmp: pil.save(tmp, format=fmt))
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
