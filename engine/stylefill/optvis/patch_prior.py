"""The natural-patch prior, Rg * sum_p ||I~_p - D~_p||^2 (paper Sec. 3).

I~ is the image normalised by the mean and std of the *whole* image (per channel); database
patches D~ are normalised the same way by their own source image. The solver alternates
continuous steps on I with a discrete step (`update`) that finds the nearest database patch of
every dense image patch and votes them into a target image.

Two ways to choose D~_p: `PatchPrior` searches all database patches with faiss (global);
`LocalPatchPrior` only considers the k database centre patches retrieved for the cells that
cover p, at p's position (location-aware; the default for inversion, see docs/tuning.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import faiss
import numpy as np
import torch
import torch.nn.functional as F

from .objectives import Objective
from .regularizers import Whitening

FLAT_LIMIT = 50_000  # exact search up to this many database patches, HNSW above


def normalize_global(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> the same normalised by each image's own per-channel mean and std."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True, correction=0).clamp_min(1e-3)
    return (x - mean) / std


def normalize_sources(patches: np.ndarray, means: np.ndarray, covs: np.ndarray,
                      whiten: Whitening | None = None) -> torch.Tensor:
    """uint8 (N, P, P, 3) patches -> (N, 3, P, P), normalised by the RGB mean (N, 3) and
    covariance (N, 3, 3) of the whole image each came from; whitened first if asked (the
    statistics of a whitened image follow exactly from the unwhitened ones)."""
    x = torch.from_numpy(np.asarray(patches, dtype=np.float32) / 255.0).permute(0, 3, 1, 2)
    mean = torch.from_numpy(np.asarray(means, np.float32))
    cov = torch.from_numpy(np.asarray(covs, np.float32))
    if whiten is not None:
        x = whiten(x)
        mean = whiten(mean[:, :, None, None])[:, :, 0, 0]
        cov = whiten.matrix @ cov @ whiten.matrix.T
    std = torch.diagonal(cov, dim1=1, dim2=2).clamp_min(1e-6).sqrt()
    return (x - mean[:, :, None, None]) / std[:, :, None, None]


def dense_patches(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """(1, 3, H, W) -> (L, 3*size*size) patches on a grid."""
    return F.unfold(x, size, stride=stride)[0].T


class VotedPrior(ABC):
    """A prior whose discrete step votes chosen normalised patches into a target image.

    With `trust` (a distance scale), each match votes with weight exp(-d / trust), d its mean
    squared distance per element: where the database has nothing close, the prior steps back
    (measured: it stops the prior from adding contrast the photo never had, docs/tuning.md).
    `cover` is then each pixel's mean trust, and the loss weights residuals by it.
    With a `region` (1, 1, H, W), the pixels the optimiser can change (a masked visualisation's
    selection), only the patches that overlap it are matched again after the first step; the
    others are fixed pixels and keep their first match (in an insert two thirds of the
    patches, and of the matching's time, lie outside the selection).
    """

    def __init__(self, size: int, stride: int, every: int, trust: float | None = None,
                 region: torch.Tensor | None = None):
        self.size, self.stride, self.every, self.trust = size, stride, every, trust
        self.target: torch.Tensor | None = None
        self.cover: torch.Tensor | None = None
        self.live = None if region is None else (
            F.unfold(region.detach().float().cpu(), size, stride=stride)[0].amax(0) > 0)
        self.matches: tuple[torch.Tensor, torch.Tensor] | None = None

    @abstractmethod
    def match(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, d, L) normalised image patches -> (1, d, L) chosen database patches and their
        (L,) mean squared distances per element."""

    def update(self, image: torch.Tensor) -> None:
        """The discrete step: match every patch of the normalised image, vote a target."""
        with torch.no_grad():
            xn = normalize_global(image.detach().float().cpu())
            h, w = xn.shape[-2:]
            matched, dist = self._match_changing(F.unfold(xn, self.size, stride=self.stride))
            weight = torch.ones_like(dist) if self.trust is None else torch.exp(-dist / self.trust)
            weight = weight[None, None, :].expand_as(matched)

            def fold(t: torch.Tensor) -> torch.Tensor:
                return F.fold(t, (h, w), self.size, stride=self.stride)

            votes, total, count = fold(matched * weight), fold(weight), fold(torch.ones_like(weight))
            self.target = (votes / total.clamp_min(1e-6)).to(image.device)
            self.cover = (total / count.clamp_min(1)).to(image.device)

    def _match_changing(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`match`, after the first step only for the patches over the region."""
        if self.live is None or self.matches is None:
            self.matches = self.match(query)
            return self.matches
        matched, dist = (t.clone() for t in self.matches)
        if self.live.any():
            matched[..., self.live], dist[self.live] = self.match(query[..., self.live])
        return matched, dist

    def distance(self, image: torch.Tensor) -> torch.Tensor:
        """Squared distance of the normalised image to the voted patches, weighted by cover."""
        if self.target is None:
            self.update(image)
        diff = (normalize_global(image) - self.target) * self.cover
        return diff.pow(2).sum() / self.cover.sum().clamp_min(1)

    def objective(self) -> Objective:
        """The prior's term; it carries the prior, so the render loop runs its matching step."""
        return Objective(lambda c: self.distance(c.reg_image), f"patch{self.size}", (self,))


class PatchPrior(VotedPrior):
    """Global matching: any database patch may serve any image patch (faiss search)."""

    def __init__(self, database: np.ndarray, size: int = 8, stride: int = 4, every: int = 10,
                 trust: float | None = None, region: torch.Tensor | None = None):
        super().__init__(size, stride, every, trust, region)
        self.database = np.ascontiguousarray(database, dtype=np.float32)
        dim = self.database.shape[1]
        if len(self.database) <= FLAT_LIMIT:
            self.index = faiss.IndexFlatL2(dim)
        else:
            self.index = faiss.IndexHNSWFlat(dim, 32)
            self.index.hnsw.efSearch = 48
        self.index.add(self.database)

    @classmethod
    def from_patches(
        cls,
        patches: np.ndarray,
        means: np.ndarray,
        covs: np.ndarray,
        size: int = 8,
        stride: int = 4,
        every: int = 10,
        max_patches: int = 200_000,
        whiten: Whitening | None = None,
        seed: int = 0,
        trust: float | None = None,
        region: torch.Tensor | None = None,
    ) -> PatchPrior:
        """Cut `size` px patches (stride size/2) out of uint8 (N, P, P, 3) source patches,
        each normalised by its source image's statistics (see `normalize_sources`)."""
        xn = normalize_sources(patches, means, covs, whiten)
        step = max(1, size // 2)
        cut = F.unfold(xn, size, stride=step).permute(0, 2, 1).reshape(-1, 3 * size * size)
        if len(cut) > max_patches:
            rng = np.random.default_rng(seed)
            cut = cut[torch.from_numpy(np.sort(rng.choice(len(cut), max_patches, replace=False)))]
        return cls(cut.numpy(), size, stride, every, trust, region)

    @classmethod
    def from_images(cls, images: torch.Tensor, **kwargs) -> PatchPrior:
        """Patches of whole (N, 3, H, W) images in [0, 1], each normalised by its own statistics
        (e.g. the images of one style)."""
        pixels = images.detach().float().cpu().flatten(2)                   # (N, 3, HW)
        means = pixels.mean(-1)
        centred = pixels - means[..., None]
        covs = centred @ centred.transpose(1, 2) / pixels.shape[-1]
        u8 = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        return cls.from_patches(u8.numpy(), means.numpy(), covs.numpy(), **kwargs)

    def match(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist, ids = self.index.search(query[0].T.contiguous().numpy(), 1)
        matched = torch.from_numpy(self.database[ids[:, 0]]).T[None]
        return matched, torch.from_numpy(dist[:, 0]) / query.shape[1]


class LocalPatchPrior(VotedPrior):
    """Location-aware matching: `candidates` (K, 3, H, W) are K normalised images made of the
    database patches retrieved for each cell, placed where the cell is; each image patch is
    matched against the K candidates at its own position (exhaustive, K is small).

    Without `temperature` the nearest candidate is chosen. With it, the target is the
    softmax(-d / temperature)-weighted mean of the K candidates: the expected patch given the
    current one rather than one guess, which is what a pixel error rewards (measured closer to
    the photo on held-out photos, docs/tuning.md).
    """

    def __init__(self, candidates: torch.Tensor, size: int = 8, stride: int = 4, every: int = 10,
                 trust: float | None = None, temperature: float | None = None):
        super().__init__(size, stride, every, trust)
        self.temperature = temperature
        self.candidates = F.unfold(candidates.float().cpu(), size, stride=stride)  # (K, d, L)

    def match(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist = (self.candidates - query).pow(2).mean(1)  # (K, L)
        if self.temperature is None:
            best_dist, best = dist.min(0)
            return self.candidates[best, :, torch.arange(query.shape[-1])].T[None], best_dist
        weight = torch.softmax(-dist / self.temperature, dim=0)
        return (self.candidates * weight[:, None]).sum(0, keepdim=True), (weight * dist).sum(0)
