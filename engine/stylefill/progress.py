"""Progress of long engine calls, as the CLI bars and the server's jobs consume it:
`progress(fraction 0..1, stage text, preview image (1, 3, H, W) or None)`."""

from __future__ import annotations

from collections.abc import Callable

import torch

Progress = Callable[[float, str, "torch.Tensor | None"], None]


def report(progress: Progress | None, fraction: float, stage: str,
           preview: torch.Tensor | None = None) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), stage, preview)


def scaled(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """A sub-task's 0..1 mapped onto lo..hi of the whole."""
    if progress is None:
        return None
    return lambda f, stage, preview: progress(lo + (hi - lo) * f, stage, preview)


def solver_steps(progress: Progress | None, lo: float, hi: float, stage: str, preview_every: int):
    """A solver step callback reporting "<stage> step/total" over lo..hi, with the current
    image (first of a batch) as preview every `preview_every` steps and at the end."""

    def cb(step: int, total: int, _loss: float, image: torch.Tensor) -> None:
        preview = image[:1] if step % preview_every == 0 or step == total else None
        report(progress, lo + (hi - lo) * step / total, f"{stage} {step}/{total}", preview)

    return cb
