"""Several networks seen as one by an objective (issue 14).

A fill optimised against one network alone becomes texture that only that network reads as the
class; the judge (another network) does not. Averaging the class evidence of two networks
trained apart keeps what they agree on, which is what a third network sees too
(docs/tuning.md: insert's judge probability went from 0.04 to 0.5 on the tuning photos).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, Masks, Outputs


class Ensemble(nn.Module):
    """`first`'s outputs with the logits averaged over `first` and `others`. The m5 cells
    (where) go to every network, resized to its map where it differs; the style's m7 only to
    `first`, the network whose fc7 the styles were learned on. Taps come from `first`."""

    def __init__(self, first: Backbone, *others: Backbone):
        super().__init__()
        self.first, self.others = first, nn.ModuleList(others)

    @property
    def device(self) -> torch.device:
        return self.first.device

    def forward(self, x: torch.Tensor, masks: Masks | None = None,
                taps: tuple[str, ...] = ()) -> Outputs:
        out = self.first(x, masks, taps)
        m5 = masks.m5 if masks is not None else None
        logits = [out.logits] + [net(x, Masks(m5=_cells(m5, net.map_size(x.shape[-1])))).logits
                                 for net in self.others]
        return replace(out, logits=torch.stack(logits).mean(0))


def _cells(m5: torch.Tensor | None, side: int) -> torch.Tensor | None:
    """An m5 mask for a map of `side` x `side` cells (nearest cells where the sizes differ)."""
    if m5 is None or m5.shape[-1] == side:
        return m5
    grid = m5[None, None] if m5.dim() == 2 else m5
    return F.interpolate(grid.float(), size=(side, side), mode="nearest")
