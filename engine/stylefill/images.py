"""One place where images enter and leave Stylefill: validation, orientation, tensors, saving."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .paths import atomic_write

MAX_PIXELS = 100_000_000  # about 10000 x 10000; an 8000 px photo fits, a decompression bomb does not


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open, fully decode and EXIF-orient an image as RGB, or raise InputError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                opened = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
            with opened as img:
                if img.width * img.height > max_pixels:
                    raise InputError(
                        f"{path}: {img.width}x{img.height} is larger than the limit of "
                        f"{max_pixels:,} pixels"
                    )
                img.load()
                img = ImageOps.exif_transpose(img)
                return img.convert("RGB")
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: is larger than the limit of {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image Stylefill can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: broken or truncated image ({exc})") from None


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
