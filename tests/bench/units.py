"""What the benches measure against, in the same run: U, 100 bare forward+backward passes of
the backbone at 224 px (after one warm-up pass), the --threads option and the photo they share."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from stylefill.backbones import Backbone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from debian_files import fetch  # noqa: E402


def bare_passes(net: Backbone, index: int = 958, size: int = 224) -> float:
    """Seconds for 100 forward+backward passes of a class logit on a random image."""
    x = torch.rand(1, 3, size, size, requires_grad=True)
    net(x).logits[0, index].backward()  # warm-up
    t0 = time.perf_counter()
    for _ in range(100):
        x.grad = None
        net(x).logits[0, index].backward()
    return time.perf_counter() - t0


def parse_with_threads(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments, with --threads applied to torch (0: torch's default)."""
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def grass_field() -> Image.Image:
    """A real grass field (Debian scratch, held out), upscaled 3x to 1440x1080 so that a 512 px
    selection fits with its context."""
    field = Image.open(fetch("scratch") / "Sports/playing-field.jpg").convert("RGB")
    return field.resize((field.width * 3, field.height * 3), Image.Resampling.BICUBIC)
