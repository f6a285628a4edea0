"""Progress and cancellation of long engine calls: one signature, one token, everywhere.

`progress(fraction 0..1, stage text, preview image (1, 3, H, W) or None)` is what the CLI's bar,
the server's jobs and the Python API consume; `cancel` is a `threading.Event` that a long call
checks between steps (a set event makes it raise `Cancelled`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from .errors import Cancelled

Progress = Callable[[float, str, "torch.Tensor | None"], None]
Cancel = threading.Event


def report(progress: Progress | None, fraction: float, stage: str,
           preview: torch.Tensor | None = None) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), stage, preview)


def scaled(progress: Progress | None, lo: float, hi: float, prefix: str = "") -> Progress | None:
    """A sub-task's 0..1 mapped onto lo..hi of the whole (its stages prefixed with `prefix`)."""
    if progress is None:
        return None
    return lambda f, stage, preview: progress(lo + (hi - lo) * f, prefix + stage, preview)


def check(cancel: Cancel | None, where: str = "") -> None:
    """Raise Cancelled when the caller has asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"cancelled{' ' + where if where else ''}")
