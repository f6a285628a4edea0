"""What the benches measure against, in the same run: U, 100 bare forward+backward passes of
the backbone at 224 px (after one warm-up pass), and the --threads option they share."""

from __future__ import annotations

import argparse
import time

import torch

from stylefill.backbones import Backbone


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
