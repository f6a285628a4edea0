"""The natural-patch prior: its normalisation, its gradient and its nearest-patch matching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from stylefill.images import fit_square, to_tensor
from stylefill.optvis.patch_prior import (
    LocalPatchPrior,
    PatchPrior,
    dense_patches,
    normalize_global,
)
from stylefill.optvis.regularizers import Whitening

SIZE = 64


def _photo_u8(name: str) -> np.ndarray:
    import skimage.data

    return np.asarray(fit_square(Image.fromarray(getattr(skimage.data, name)()), SIZE))


def _stats(u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB mean (1, 3) and population covariance (1, 3, 3) of a uint8 image, as a database has."""
    px = u8.reshape(-1, 3).astype(np.float64) / 255.0
    return px.mean(0)[None], np.cov(px.T, bias=True)[None]


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return _photo_u8("chelsea")


@pytest.fixture(scope="module")
def coffee() -> torch.Tensor:
    return to_tensor(Image.fromarray(_photo_u8("coffee")))


def _tensor(u8: np.ndarray) -> torch.Tensor:
    return to_tensor(Image.fromarray(u8))


def test_normalize_global_is_standardised_per_channel(photo):
    xn = normalize_global(photo)
    torch.testing.assert_close(xn.mean((2, 3)), torch.zeros(1, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(xn.std((2, 3), correction=0), torch.ones(1, 3), atol=1e-4, rtol=0)


def test_normalize_global_ignores_per_channel_gain_and_offset(photo):
    """Patches are compared after normalisation, so exposure and colour cast do not matter."""
    a = torch.tensor([0.5, 1.3, 2.0]).view(1, 3, 1, 1)
    b = torch.tensor([0.1, -0.2, 0.05]).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize_global(a * photo + b), normalize_global(photo),
                               atol=1e-4, rtol=0)


def test_distance_gradient_matches_finite_differences(cat, coffee):
    """With the matched target fixed (after `update`), the distance is smooth in the image."""
    prior = PatchPrior.from_patches(cat[None], *_stats(cat), size=8, stride=4)
    x = coffee[..., 20:44, 16:40].double().clone().requires_grad_(True)
    prior.update(x)
    assert float(prior.distance(x).detach()) > 0.01  # a real mismatch, so the gradient is not trivial
    assert torch.autograd.gradcheck(prior.distance, (x,))


def test_own_patches_give_zero_distance(cat, coffee):
    """A prior built from an image's own patches matches that image exactly, and no other."""
    prior = PatchPrior.from_patches(cat[None], *_stats(cat), size=8, stride=8)
    x = _tensor(cat)
    prior.update(x)
    assert float(prior.distance(x)) < 1e-8
    prior.update(coffee)
    assert float(prior.distance(coffee)) > 0.01


def test_distance_is_invariant_to_exposure(cat):
    """The image side is normalised globally, so a darker copy still matches its own patches."""
    prior = PatchPrior.from_patches(cat[None], *_stats(cat), size=8, stride=8)
    darker = _tensor(cat) * 0.6 + 0.05
    prior.update(darker)
    assert float(prior.distance(darker)) < 1e-8


def test_whitened_prior_uses_whitened_statistics(cat):
    """With `whiten`, database patches are normalised by the whitened image's statistics, so
    the whitened image (what the solver passes as reg_image) matches its own patches."""
    import skimage.data

    w = Whitening.fit(torch.from_numpy(skimage.data.astronaut().reshape(-1, 3) / 255.0))
    x = w(_tensor(cat))
    prior = PatchPrior.from_patches(cat[None], *_stats(cat), size=8, stride=8, whiten=w)
    prior.update(x)
    assert float(prior.distance(x)) < 1e-8
    plain = PatchPrior.from_patches(cat[None], *_stats(cat), size=8, stride=8)
    plain.update(x)
    assert float(plain.distance(x)) > 0.01  # whitening changes the patches: the test can tell


def test_from_patches_cuts_at_half_stride(cat):
    prior = PatchPrior.from_patches(cat[None], *_stats(cat), size=8, stride=8)
    per_side = (SIZE - 8) // 4 + 1
    assert prior.database.shape == (per_side**2, 3 * 8 * 8)
    assert prior.database.dtype == np.float32


def test_from_patches_subsamples_reproducibly(cat):
    a = PatchPrior.from_patches(cat[None], *_stats(cat), max_patches=50, seed=1)
    b = PatchPrior.from_patches(cat[None], *_stats(cat), max_patches=50, seed=1)
    c = PatchPrior.from_patches(cat[None], *_stats(cat), max_patches=50, seed=2)
    assert len(a.database) == 50
    np.testing.assert_array_equal(a.database, b.database)
    assert not np.array_equal(a.database, c.database)


def test_flat_index_neighbours_equal_brute_force():
    rng = np.random.default_rng(0)
    database = rng.standard_normal((2000, 48)).astype(np.float32)
    queries = rng.standard_normal((100, 48)).astype(np.float32)
    prior = PatchPrior(database, size=4, stride=4)
    _, ids = prior.index.search(queries, 3)
    dist = ((queries[:, None, :] - database[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(ids, np.argsort(dist, axis=1)[:, :3])


@pytest.fixture
def voted():
    """A random 18 px image matched against random patches (size 4, stride 4), and the
    target computed by hand: the fold of each grid patch's nearest database patch."""
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((1, 3, 18, 18), dtype=np.float32))
    database = rng.standard_normal((300, 3 * 4 * 4)).astype(np.float32)
    prior = PatchPrior(database, size=4, stride=4)
    prior.update(image)
    query = dense_patches(normalize_global(image), 4, 4).numpy()
    nearest = ((query[:, None] - database[None]) ** 2).sum(-1).argmin(1)
    expected = torch.nn.functional.fold(torch.from_numpy(database[nearest]).T[None], (18, 18),
                                        4, stride=4)
    return prior, image, expected


def test_update_votes_the_nearest_patches(voted):
    """Pixels no grid patch covers (the 2 px border at stride 4) are marked uncovered."""
    prior, _, expected = voted
    torch.testing.assert_close(prior.target, expected)
    assert bool((prior.cover[..., :16, :16] == 1).all())
    assert bool((prior.cover[..., 16:, :] == 0).all() and (prior.cover[..., :, 16:] == 0).all())


def test_distance_is_the_mean_over_covered_pixels_and_channels(voted):
    """The documented value, so the prior's weight means what it says."""
    prior, image, expected = voted
    manual = ((normalize_global(image) - expected)[..., :16, :16] ** 2).mean()
    assert float(prior.distance(image)) == pytest.approx(float(manual), rel=1e-5)


def test_a_region_matches_again_only_the_patches_over_it():
    """With a `region` (the pixels an insert can change), the first step matches every patch;
    later steps match again, with the same search, only the patches that overlap the region,
    and the others keep their first match: the fold is that of the whole search wherever a
    patch overlaps the region, and the first step's elsewhere."""
    rng = np.random.default_rng(2)
    database = rng.standard_normal((300, 3 * 4 * 4)).astype(np.float32)
    first, later = (torch.from_numpy(rng.random((1, 3, 16, 16), dtype=np.float32)) for _ in range(2))
    region = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    region[..., 5:7, 9:11] = True            # overlaps the patches at (4, 8) only
    prior = PatchPrior(database, size=4, stride=4, region=region)
    searched = []
    match = prior.match
    prior.match = lambda query: searched.append(query.shape[-1]) or match(query)
    prior.update(first)
    kept = prior.target.clone()
    prior.update(later)
    assert searched == [16, 1]
    whole = PatchPrior(database, size=4, stride=4)
    whole.update(later)
    box = (..., slice(4, 8), slice(8, 12))
    torch.testing.assert_close(prior.target[box], whole.target[box])
    rest = torch.ones(16, 16, dtype=torch.bool)
    rest[4:8, 8:12] = False
    torch.testing.assert_close(prior.target[..., rest], kept[..., rest])
    assert not torch.allclose(kept[box], whole.target[box])


def test_trust_weights_matches_by_closeness(photo):
    """With `trust`, a close match votes at full weight and a far one barely counts."""
    own = LocalPatchPrior(normalize_global(photo), trust=0.5)
    own.update(photo)
    assert float(own.cover.min()) > 0.999
    other = normalize_global(torch.flip(photo, dims=[-1, -2]))
    loose, strict = LocalPatchPrior(other, trust=5.0), LocalPatchPrior(other, trust=0.05)
    loose.update(photo)
    strict.update(photo)
    assert float(strict.cover.mean()) < float(loose.cover.mean()) < 1.0
    plain = LocalPatchPrior(other)
    plain.update(photo)
    assert float(plain.cover.min()) == 1.0


def test_temperature_votes_the_expected_candidate(photo):
    """Soft voting: a cold temperature picks the matching candidate, a hot one averages all K,
    and in between the target lies between the two (each patch's softmax-weighted mean)."""
    own = normalize_global(photo)
    other = normalize_global(torch.flip(photo, dims=[-1, -2]))
    candidates = torch.cat([own, other])
    targets = {}
    for temperature in (1e-4, 0.5, 1e6):
        prior = LocalPatchPrior(candidates, temperature=temperature)
        prior.update(photo)
        targets[temperature] = prior.target
    torch.testing.assert_close(targets[1e-4], own, atol=1e-4, rtol=0)
    torch.testing.assert_close(targets[1e6], (own + other) / 2, atol=1e-4, rtol=0)
    to_own = float((targets[0.5] - own).abs().mean())
    assert 1e-3 < to_own < float(((own + other) / 2 - own).abs().mean())
