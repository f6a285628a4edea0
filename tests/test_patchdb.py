"""Patch databases built from real photos with the real backbone, in a temporary models dir."""

from __future__ import annotations

import json
import shutil

import faiss
import numpy as np
import pytest
import torch
from PIL import Image

from stylefill import atomic, patchdb, patchdb_index
from stylefill.errors import InputError
from stylefill.images import to_tensor
from stylefill.sample_photos import packaged_photos

PHOTOS = ("skimage:chelsea", "skimage:coffee")
# chelsea 451x300 and coffee 600x400 at shorter side 224: two crops across each, mirrored too
CROPS = 8
CELLS = 7 * 7


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    found = packaged_photos()
    return [found[name] for name in PHOTOS]


@pytest.fixture(scope="module")
def small(models, backbone, photos) -> patchdb.PatchDB:
    return patchdb.build(photos, backbone, "small", scales=(1.0,), flips=True, labels=list(PHOTOS))


@pytest.fixture(scope="module")
def ivfpq(models, backbone, photos):
    """The same photos indexed with IVF-PQ (threshold lowered so 392 cells count as large)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(patchdb, "IVFPQ_THRESHOLD", 100)
        return patchdb.build(photos, backbone, "pq", scales=(1.0,), flips=True)


def _features(db: patchdb.PatchDB) -> np.ndarray:
    return np.asarray(db.features, dtype=np.float32)


def test_counts_shapes_and_dtypes(small, photos):
    counted = sum(len(patchdb.network_crops(p, 224, (1.0,), True)) for p in photos)
    assert counted == CROPS
    n = CROPS * CELLS
    assert len(small) == n and small.meta["count"] == n and small.meta["crops"] == CROPS
    assert small.features.dtype == np.float16 and small.features.shape == (n, 1280)
    assert small.patches.dtype == np.uint8 and small.patches.shape == (n, 67, 67, 3)
    assert small.sources.dtype == np.int32 and small.sources.shape == (n,)
    np.testing.assert_array_equal(small.sources, np.repeat(np.arange(CROPS), CELLS))
    assert small.stats.dtype == np.float32 and small.stats.shape == (CROPS, 4, 3)
    assert small.index.ntotal == n and small.meta["index"] == "IndexFlatL2"
    assert small.meta["images"] == list(PHOTOS) and small.meta["map_size"] == 7


def test_cells_pair_pool5_features_with_centre_patches(small, photos, backbone):
    """Row k of the first crop is pool5 cell k of that crop, and its patch is the 67 px of the
    crop centred on the cell (checked for the middle cell, where no padding is involved)."""
    crop = patchdb.network_crops(photos[0], 224, (1.0,), True)[0]
    x = to_tensor(crop)
    with torch.no_grad():
        pool5 = backbone(x).pool5[0]
    stored = _features(small)[:CELLS].reshape(7, 7, -1)
    np.testing.assert_allclose(stored, pool5.permute(1, 2, 0).numpy(), atol=4e-3, rtol=1e-3)
    middle = 3 * 7 + 3  # centre at pixel 112: rows and columns 79..145
    np.testing.assert_array_equal(small.patches[middle], np.asarray(crop)[79:146, 79:146])
    mean = x[0].mean((1, 2)).numpy()
    np.testing.assert_allclose(small.stats[0, 0], mean, atol=1e-5)
    cov = np.cov(x[0].reshape(3, -1).numpy(), bias=True)
    np.testing.assert_allclose(small.stats[0, 1:], cov, atol=1e-5)


def test_load_memory_maps_the_same_content(small, backbone):
    db = patchdb.load(backbone.name, "small")
    for name in ("features", "patches", "sources"):
        assert isinstance(getattr(db, name), np.memmap), name
        np.testing.assert_array_equal(getattr(db, name), getattr(small, name))
    np.testing.assert_array_equal(db.stats, small.stats)
    assert db.meta == small.meta and db.index.ntotal == len(db)


def test_search_finds_each_stored_feature_first(small):
    ids = small.search(_features(small), 5)
    assert ids.shape == (len(small), 5)
    np.testing.assert_array_equal(ids[:, 0], np.arange(len(small)))


def _as_searched(db: patchdb.PatchDB, feats: np.ndarray) -> np.ndarray:
    """Features in the space the database searches: raw (L2) or unit rows (metric 'cosine')."""
    feats = np.asarray(feats, dtype=np.float64)
    if db.meta.get("metric", "l2") == "cosine":
        feats = feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-6)
    return feats


def test_search_equals_brute_force(small, backbone, photo):
    """Queries from another photo: the k nearest by faiss are the k nearest by numpy."""
    with torch.no_grad():
        pool5 = backbone(photo).pool5[0]
    queries = _as_searched(small, pool5.permute(1, 2, 0).reshape(CELLS, -1).numpy())
    base = _as_searched(small, _features(small))
    dist = ((queries[:, None, :] - base[None]) ** 2).sum(-1)
    ids = small.search(pool5.permute(1, 2, 0).reshape(CELLS, -1).numpy(), 5)
    found = np.take_along_axis(dist, ids, 1)
    np.testing.assert_allclose(found, np.sort(dist, 1)[:, :5], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(ids[:, 0], dist.argmin(1))


def test_knn_image_of_a_stored_crop_rebuilds_it(small, photos, backbone):
    """With k=1 every cell finds its own patch, and the patches tile the crop exactly."""
    crop = to_tensor(patchdb.network_crops(photos[0], 224, (1.0,), True)[0])
    with torch.no_grad():
        pool5 = backbone(crop).pool5
    img, ids = small.knn_image(pool5, 224, k=1)
    assert img.shape == (1, 3, 224, 224)
    np.testing.assert_array_equal(ids[:, 0], np.arange(CELLS))
    assert float((img - crop).abs().max()) < 1 / 255


def test_knn_image_of_a_new_photo(small, backbone, photo):
    with torch.no_grad():
        pool5 = backbone(photo).pool5
    img, ids = small.knn_image(pool5, 224, k=10)
    assert img.shape == (1, 3, 224, 224) and img.dtype == torch.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    assert ids.shape == (CELLS, 10)
    assert float(img.std()) > 0.02  # patches were placed, not just the fill colour
    small_img, _ = small.knn_image(pool5, 112, k=3)
    assert small_img.shape == (1, 3, 112, 112)


def test_patches_with_stats(small):
    ids = np.array([[5, 5, 60], [-1, 100, 5]])
    patches, means, covs = small.patches_with_stats(ids)
    assert patches.shape == (3, 67, 67, 3) and means.shape == (3, 3) and covs.shape == (3, 3, 3)
    np.testing.assert_array_equal(means[1], small.stats[1, 0])  # id 60 is in crop 60 // 49 = 1
    np.testing.assert_array_equal(covs[2], small.stats[2, 1:])  # id 100 is in crop 2


def test_ivfpq_index_keeps_recall(ivfpq, small):
    db = ivfpq
    assert db.meta["index"] == "IndexIVFPQ"
    assert isinstance(faiss.downcast_index(db.index), faiss.IndexIVFPQ)
    ids = db.search(_features(small), 10)
    recall = np.mean([i in row for i, row in enumerate(ids)])
    assert recall >= 0.7


def test_ivfpq_search_is_reranked_exactly(ivfpq, small):
    """The compressed index only proposes candidates; the order comes from the exact features,
    so the result equals exact cosine search (the flat database) nearly everywhere."""
    db = ivfpq
    queries = _features(small)[::7]
    got, exact = db.search(queries, 10), small.search(queries, 10)
    raw = db.index.search(patchdb.unit_rows(queries), 10)[1]

    def recall(ids):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact, strict=True)])

    print("recall@10 vs exact: index alone", recall(raw), "re-ranked", recall(got))
    assert recall(got) >= 0.95 and recall(got) > recall(raw)
    unit = patchdb.unit_rows(_features(db))
    sims = np.einsum("qc,qkc->qk", patchdb.unit_rows(queries), unit[got])
    assert np.all(np.diff(sims, axis=1) <= 1e-6)


def test_ivfpq_build_skips_polysemous_training(small, monkeypatch):
    """Polysemous training is unused at search time and costs ~95 s per build for PQ64 (it is
    forced off here too: ~1.5 s per PQ sub-quantiser whatever the data size)."""
    seen = []
    original = faiss.IndexIVFPQ.train

    def train(index, x):
        seen.append(bool(index.do_polysemous_training))
        index.do_polysemous_training = False
        return original(index, x)

    monkeypatch.setattr(faiss.IndexIVFPQ, "train", train)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # faiss's OpenMP beside torch's spinning one is 50x slower here
    try:
        patchdb_index.make_index(1280, len(small), _features(small), threshold=100)
    finally:
        faiss.omp_set_num_threads(threads)
    assert seen == [False]


def test_colour_statistics_are_those_of_all_crop_pixels(small):
    """colour.npz (for --whiten) must agree with the per-crop stats: same-size crops, so the
    pooled mean is the mean of means and the pooled covariance adds the spread of the means."""
    data = np.load(small.path / "colour.npz")
    means, covs = small.stats[:, 0].astype(np.float64), small.stats[:, 1:].astype(np.float64)
    mean = means.mean(0)
    cov = (covs + means[:, :, None] * means[:, None, :]).mean(0) - np.outer(mean, mean)
    np.testing.assert_allclose(data["mean"], mean, atol=1e-5)
    np.testing.assert_allclose(data["cov"], cov, atol=1e-5)
    w = patchdb.colour_whitening(small)
    torch.testing.assert_close(w.mean.flatten(), torch.from_numpy(mean).float())


@pytest.fixture
def damaged(small):
    """A copy of the small database to break; removed afterwards so listings stay clean."""
    path = small.path.parent.parent / "broken"
    shutil.copytree(small.path, path)
    yield path
    atomic.remove(path)


@pytest.mark.parametrize(
    "file, how",
    [("index.faiss", "delete"), ("index.faiss", "truncate"), ("meta.json", "truncate"),
     ("meta.json", "delete"), ("features.npy", "truncate"), ("stats.npy", "delete")],
)
def test_damaged_database_asks_for_a_rebuild(damaged, backbone, file, how):
    target = damaged / file
    if how == "delete":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(InputError, match=r"build .*--name broken") as info:
        patchdb.load(backbone.name, "broken")
    assert "broken" in str(info.value)


def test_index_out_of_step_with_the_arrays_is_incomplete(damaged, backbone, small):
    index = faiss.IndexFlatL2(1280)
    index.add(_features(small)[:10])
    faiss.write_index(index, str(damaged / "index.faiss"))
    with pytest.raises(InputError, match="incomplete.*rebuild"):
        patchdb.load(backbone.name, "broken")


def test_missing_colour_statistics_ask_for_a_rebuild(damaged, backbone):
    """`invert --whiten` reads colour.npz; a missing one must not end in a traceback."""
    (damaged / "colour.npz").unlink()
    with pytest.raises(InputError, match="rebuild"):
        patchdb.colour_whitening(patchdb.load(backbone.name, "broken"))


def test_list_dbs(small, ivfpq, backbone):
    names = {d["name"] for d in patchdb.list_dbs(backbone.name)}
    assert {"small", "pq"} <= names
    everything = patchdb.list_dbs()
    assert {"small", "pq"} <= {d["name"] for d in everything}
    assert all(d["backbone"] == backbone.name for d in everything)
    assert patchdb.list_dbs("alexnet") == []


def test_list_dbs_survives_a_damaged_database(damaged, backbone):
    """One broken meta.json must not stop `patchdb list` from showing the others."""
    (damaged / "meta.json").write_text("{ not json")
    names = {d.get("name") for d in patchdb.list_dbs(backbone.name)}
    assert "small" in names


def test_build_rejects_bad_names(models, backbone, photos):
    for name in ("", "../escape", ".hidden"):
        with pytest.raises(InputError, match="not a valid database name"):
            patchdb.build(photos, backbone, name)


def test_models_dir_follows_the_environment(models, backbone):
    assert patchdb.db_root(backbone.name) == models / "patchdb" / backbone.name


def test_collect_images_keeps_only_images(tmp_path):
    for name in ("b.png", "a.jpg", "sub/c.JPG", "notes.txt", "sub/data.npy"):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    single = tmp_path / "notes.txt"
    found = patchdb.collect_images([tmp_path])
    assert found == [tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "sub" / "c.JPG"]
    assert patchdb.collect_images([single]) == [single]  # a file named explicitly is kept


def test_collect_images_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images found in .*empty"):
        patchdb.collect_images([empty])
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "readme.md").write_text("hello")
    with pytest.raises(InputError, match="no images found"):
        patchdb.collect_images([only_text])
    with pytest.raises(InputError, match="no such file or folder"):
        patchdb.collect_images([tmp_path / "missing"])


def test_meta_is_json_on_disk(small):
    meta = json.loads((small.path / "meta.json").read_text())
    assert meta["backbone"] == "efficientnet-lite0" and meta["flips"] is True
    assert meta["scales"] == [1.0] and meta["cell_patch"] == meta["patch_px"] == 67


def test_feather_window_fades_to_its_floor_without_reaching_zero():
    w = patchdb.feather_window(9)
    assert w.shape == (9, 9)
    torch.testing.assert_close(w, w.T)
    torch.testing.assert_close(w, w.flip(0))
    assert float(w[4, 4]) == pytest.approx(1.0, abs=0.02)
    assert patchdb.FEATHER_FLOOR ** 2 <= float(w.min()) < 0.1


def test_knn_image_has_no_seams_at_patch_edges(small, backbone, photo):
    """The start image of a new photo changes no faster where a cell's patch ends than
    elsewhere (a box window made steps there: a mosaic of cell-sized blocks)."""
    with torch.no_grad():
        pool5 = backbone(photo).pool5
    img, _ = small.knn_image(pool5, 224, k=10)
    step = (img[..., 1:] - img[..., :-1]).abs().mean(dim=(0, 1, 2))  # per column boundary
    half, cells = 67 // 2, [round((j + 0.5) * 32) for j in range(7)]
    edges = sorted({c + d for c in cells for d in (-half - 1, half) if 0 <= c + d < 223})
    inner = [i for i in range(223) if all(abs(i - e) > 2 for e in edges)]
    assert float(step[edges].mean()) < 1.5 * float(step[inner].mean())


def test_auto_takes_a_built_preset_and_unknown_names_ask_for_a_build(models, backbone, photos):
    built = patchdb.build(photos[:1], backbone, "open-photos", scales=(1.0,), flips=False)
    assert patchdb.open_db(backbone).meta["name"] == "open-photos" == built.meta["name"]
    with pytest.raises(InputError, match="patchdb build"):
        patchdb.open_db(backbone, "nowhere")
    atomic.remove(built.path.parent)
