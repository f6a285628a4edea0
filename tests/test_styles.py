"""Styles: NMF topics of fc7, learned data-free and from photos; storage; retrieval."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylefill import retrieval, styles
from stylefill.classification import predict
from stylefill.errors import InputError
from stylefill.images import to_tensor
from stylefill.photo_stats import spectrum_stats


def _fc7_unit(backbone, images: torch.Tensor) -> np.ndarray:
    f = styles.fc7_features(backbone, images)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def test_data_free_ladybug_gives_four_ladybug_styles(backbone, ladybug_styles):
    ss = ladybug_styles
    assert ss.source == "data-free" and len(ss.styles) >= 4
    listing = ss.listing()
    assert {"class", "backbone", "source", "styles"} <= set(listing)
    assert {"id", "preview", "images", "weight"} <= set(listing["styles"][0])
    assert abs(sum(s.weight for s in ss.styles) - 1) < 1e-4
    for s in ss.styles:
        preview = to_tensor(Image.open(ss.preview_path(s.id)).convert("RGB"))
        top = predict(backbone, preview, 1)[0]
        assert top.cls == "ladybug", (s.id, top)
        assert 0 < ss.masks[s.id].sum() < ss.masks.shape[1]
        assert all(p.is_file() for p in ss.image_paths(s.id))
    # different styles take different pathways
    assert not np.array_equal(ss.masks[0], ss.masks[1])


def test_style_previews_differ_more_than_reruns_of_one_style(backbone, ladybug_styles):
    """Pairwise fc7 cosine distance between styles' previews is clearly above the distance
    between two runs of the same style with different seeds."""
    ss = ladybug_styles
    stored = torch.cat([to_tensor(Image.open(ss.preview_path(s.id)).convert("RGB")) for s in ss.styles])
    f = _fc7_unit(backbone, stored)
    between = (1 - f @ f.T)[np.triu_indices(len(f), 1)]
    same = []
    for k in (0, 1):
        rerun = styles.draw_preview(backbone, 301, ss.m7(k), styles.top_image(ss, k), seed=1)
        same.append(float(1 - _fc7_unit(backbone, rerun)[0] @ f[k]))
    assert max(same) < 0.75 * between.min(), (same, between)


def test_folder_styles_separate_photos_from_drawings_and_retrieve_them(backbone, strawberry_folder,
                                                                      models_root):
    ss = styles.learn("strawberry", backbone, folder=strawberry_folder, topics=2, root=models_root)
    assert [Path(p).name for p in ss.meta["dropped"]] == ["zz-cat.jpg"]
    group = np.array([Path(n).name.startswith("photo") for n in ss.image_names])
    assert len(group) == 24
    topic = ss.loadings.argmax(1)
    photo_topic = int(np.bincount(topic[group]).argmax())
    assert (topic[group] == photo_topic).all() and (topic[~group] != photo_topic).all()

    ranked = retrieval.rank(ss, backbone, strawberry_folder, style=photo_topic)
    names = [Path(m.image).name for m in ranked]
    assert all(n.startswith("photo") for n in names[:12]), names
    cat = next(m for m in ranked if m.image.endswith("zz-cat.jpg"))
    assert cat.in_cone < 0.5 * min(m.in_cone for m in ranked if m is not cat)  # outside the cone

    like = retrieval.rank(ss, backbone, strawberry_folder, like=strawberry_folder / "cartoon-03.jpg",
                          top=12)
    assert all(Path(m.image).name.startswith("cartoon") for m in like)


def test_learning_is_reproducible_with_a_seed(backbone, strawberry_folder, tmp_path):
    quick = styles.PreviewSettings(iters=8)
    a = styles.learn("strawberry", backbone, folder=strawberry_folder, topics=2, seed=3,
                     preview_settings=quick, root=tmp_path / "a")
    b = styles.learn("strawberry", backbone, folder=strawberry_folder, topics=2, seed=3,
                     preview_settings=quick, root=tmp_path / "b")
    assert np.array_equal(a.directions, b.directions) and np.array_equal(a.masks, b.masks)
    pa, pb = (np.asarray(Image.open(s.preview_path(0))) for s in (a, b))
    assert np.array_equal(pa, pb)


def test_missing_or_damaged_styles_say_how_to_relearn(ladybug_styles, tmp_path):
    with pytest.raises(InputError, match="no styles learned for 'tabby'.*styles learn"):
        styles.load("tabby", root=tmp_path)
    src = ladybug_styles.root

    def damaged(breaking) -> str:
        shutil.rmtree(tmp_path / "styles", ignore_errors=True)
        dest = styles.class_dir(301, "ladybug", "efficientnet-lite0", tmp_path)
        shutil.copytree(src, dest)
        breaking(dest)
        with pytest.raises(InputError, match="damaged") as info:
            styles.load("ladybug", root=tmp_path)
        return str(info.value)

    assert "relearn" in damaged(lambda d: (d / "masks.npy").unlink())
    damaged(lambda d: (d / "styles.json").write_text('{"format": 1, "sty'))
    damaged(lambda d: np.save(d / "directions.npy", np.zeros((2, 3), np.float32)))
    damaged(lambda d: (d / "preview_0.png").unlink())
    damaged(lambda d: (d / "features.npy").write_bytes(b"not numpy"))
    meta = json.loads((src / "styles.json").read_text())
    assert meta["format"] == styles.FORMAT and "pickle" not in json.dumps(meta)


def test_bad_requests_are_input_errors(backbone, ladybug_styles, strawberry_folder, tmp_path):
    with pytest.raises(InputError, match="either a folder"):
        styles.learn("strawberry", backbone, root=tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        styles.learn("strawberry", backbone, folder=tmp_path / "nope", root=tmp_path)
    with pytest.raises(InputError, match="only 0 image"):
        styles.learn("ladybug", backbone, folder=strawberry_folder, root=tmp_path)
    with pytest.raises(InputError, match="no style 9"):
        ladybug_styles.style(9)


def test_listing_shows_far_apart_styles_first_and_marks_near_duplicates(ladybug_styles, photo,
                                                                       tmp_path):
    """The real learned styles, listed farthest-first with ids unchanged; then the same set
    with one preview swapped for a photo (visibly different) and one for a slight jitter of
    another preview (the same picture): the photo comes second, the jitter is marked."""
    listing = ladybug_styles.listing()
    ids = [s["id"] for s in listing["styles"]]
    assert ids == listing["order"] and sorted(ids) == list(range(len(ladybug_styles.styles)))
    assert ids[0] == 0                                       # the heaviest style leads
    for s in listing["styles"]:
        assert s["preview"].endswith(f"preview_{s['id']}.png")   # ids are the stored ones
        assert s["nearest"] != s["id"] and s["near_duplicate"] == (s["distance"] < 1)
    assert listing["distinct"] == sum(s["looks_like"] is None for s in listing["styles"])
    assert all(s["looks_like"] is None for s in listing["styles"][:listing["distinct"]])

    dest = styles.class_dir(301, "ladybug", "efficientnet-lite0", tmp_path)
    shutil.copytree(ladybug_styles.root, dest)
    preview_0 = Image.open(dest / "preview_0.png").convert("RGB")
    Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(dest / "preview_1.png")
    preview_0.crop((3, 2, 224, 224)).resize((224, 224)).save(dest / "preview_3.png")
    edited = styles.load("ladybug", root=tmp_path).listing()
    by_id = {s["id"]: s for s in edited["styles"]}
    assert edited["order"][:2] == [0, 1] and by_id[1]["distance"] > 1.2
    assert by_id[3]["nearest"] == 0 and by_id[3]["distance"] < 0.8
    assert by_id[3]["looks_like"] == 0 and by_id[3]["near_duplicate"]
    assert edited["order"].index(3) >= edited["distinct"]    # shown after the distinct ones


def test_data_free_samples_can_keep_a_photos_spectrum(backbone):
    """The sampling settings a researcher can switch (docs/tuning.md, fifth round): MACO with
    blurred and resampled views draws samples with a photo's balance of detail, Lucid's Fourier
    basis (the default) finer ones."""
    natural = styles.DataFreeSettings(samples=2, size=128, iters=16, param="maco", gain=2.5,
                                      degrade=True)
    stats = {settings.param: [spectrum_stats(img) for img in
                              styles.sample_data_free(backbone, 301, settings, seed=0)]
             for settings in (natural, replace(natural, param="fourier", gain=1.0, degrade=False))}
    assert all(s.high_frequency_share <= 0.5 and s.slope >= 1.0 for s in stats["maco"]), stats
    assert max(s.high_frequency_share for s in stats["maco"]) < min(
        s.high_frequency_share for s in stats["fourier"]), stats
