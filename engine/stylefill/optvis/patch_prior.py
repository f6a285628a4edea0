"""The natural-patch prior, Rg * sum_p ||I~_p - D~_p||^2 (paper Sec. 3).

I~ is the image normalised by the mean and std of the *whole* image (per channel); database
patches D~ are normalised the same way by their own source image. The solver alternates
continuous steps on I with a discrete step (`update`) that finds, with faiss, the nearest
database patch of every dense image patch and votes them into a target image.
"""

from __future__ import annotations

import faiss
import numpy as np
import torch
import torch.nn.functional as F

from .objectives import Objective

FLAT_LIMIT = 50_000  # exact search up to this many database patches, HNSW above


def normalize_global(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> the same normalised by each image's own per-channel mean and std."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True, correction=0).clamp_min(1e-3)
    return (x - mean) / std


def dense_patches(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """(1, 3, H, W) -> (L, 3*size*size) patches on a grid."""
    return F.unfold(x, size, stride=stride)[0].T


class PatchPrior:
    """Patches of `size` px at `stride`, matched every `every` solver steps."""

    def __init__(self, database: np.ndarray, size: int = 8, stride: int = 4, every: int = 10):
        self.size, self.stride, self.every = size, stride, every
        self.database = np.ascontiguousarray(database, dtype=np.float32)
        dim = self.database.shape[1]
        if len(self.database) <= FLAT_LIMIT:
            self.index = faiss.IndexFlatL2(dim)
        else:
            self.index = faiss.IndexHNSWFlat(dim, 32)
            self.index.hnsw.efSearch = 48
        self.index.add(self.database)
        self.target: torch.Tensor | None = None
        self.cover: torch.Tensor | None = None

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
        whiten=None,
        seed: int = 0,
    ) -> PatchPrior:
        """Cut `size` px patches (stride size/2) out of uint8 (N, P, P, 3) source patches.

        Each is normalised by the RGB mean (N, 3) and covariance (N, 3, 3) of the whole image
        it came from, whitened first when `whiten` is given (its stats follow exactly).
        """
        x = torch.from_numpy(np.asarray(patches, dtype=np.float32) / 255.0).permute(0, 3, 1, 2)
        mean = torch.from_numpy(np.asarray(means, np.float32))
        cov = torch.from_numpy(np.asarray(covs, np.float32))
        if whiten is not None:
            x = whiten(x)
            mean = whiten(mean[:, :, None, None])[:, :, 0, 0]
            w = whiten.matrix
            cov = w @ cov @ w.T
        std = torch.diagonal(cov, dim1=1, dim2=2).clamp_min(1e-6).sqrt()
        xn = (x - mean[:, :, None, None]) / std[:, :, None, None]
        step = max(1, size // 2)
        cut = F.unfold(xn, size, stride=step).permute(0, 2, 1).reshape(-1, 3 * size * size)
        if len(cut) > max_patches:
            rng = np.random.default_rng(seed)
            cut = cut[torch.from_numpy(np.sort(rng.choice(len(cut), max_patches, replace=False)))]
        return cls(cut.numpy(), size, stride, every)

    def update(self, image: torch.Tensor) -> None:
        """The discrete step: nearest database patch per image patch, voted into a target."""
        with torch.no_grad():
            xn = normalize_global(image.detach().float().cpu())
            h, w = xn.shape[-2:]
            query = dense_patches(xn, self.size, self.stride).contiguous().numpy()
            _, ids = self.index.search(query, 1)
            matched = torch.from_numpy(self.database[ids[:, 0]]).T[None]
            votes = F.fold(matched, (h, w), self.size, stride=self.stride)
            cover = F.fold(torch.ones_like(matched), (h, w), self.size, stride=self.stride)
            self.target = (votes / cover.clamp_min(1)).to(image.device)
            self.cover = (cover > 0).float().to(image.device)

    def distance(self, image: torch.Tensor) -> torch.Tensor:
        """Mean squared distance of the normalised image to the voted patches (where covered)."""
        if self.target is None:
            self.update(image)
        diff = (normalize_global(image) - self.target) * self.cover
        return diff.pow(2).sum() / (self.cover.sum() * 3).clamp_min(1)

    def objective(self) -> Objective:
        return Objective(lambda c: self.distance(c.reg_image), f"patch{self.size}")

