"""Style-based object completion on real photos: suggest, insert, modify, and their CLI."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

from stylefill import api, styles
from stylefill.cli import main
from stylefill.completion import InsertSettings
from stylefill.errors import Cancelled, InputError

# Objects a person would accept on a grass field, fixed before the held-out photo was classified.
GRASSLAND = {"hay", "ox", "sorrel", "ram", "lawn mower", "soccer ball", "golf ball", "croquet ball",
             "rugby ball", "football helmet", "ballplayer", "worm fence", "picket fence", "plow",
             "harvester", "tractor", "umbrella", "park bench", "mountain tent", "kite", "hog",
             "bison", "hartebeest", "gazelle", "impala", "maze", "tennis ball", "lakeside", "tee"}
RECT = (170, 190, 128, 128)


def _rect_mask(photo: Image.Image, rect) -> np.ndarray:
    x, y, w, h = rect
    mask = np.zeros((photo.height, photo.width), bool)
    mask[y:y + h, x:x + w] = True
    return mask


@pytest.fixture(scope="session")
def hay_styles(backbone, models_root):
    return styles.learn("hay", backbone, data_free=True, root=models_root)


def test_suggest_lists_grassland_objects(backbone, grass_field):
    photo = Image.open(grass_field).convert("RGB")
    found = api.suggest(photo, _rect_mask(photo, RECT), top=5, backbone=backbone)
    assert len(found) == 5 and found[0].prob >= found[-1].prob
    assert {p.cls for p in found} & GRASSLAND, [p.cls for p in found]


def test_insert_hay_in_two_styles(backbone, grass_field, hay_styles, models_root, monkeypatch):
    monkeypatch.setenv("STYLEFILL_MODELS", str(models_root))
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    original = np.asarray(photo).copy()
    fills = []
    for style in (0, 1):
        stages = []
        res = api.insert(photo, mask, "hay", style, backbone=backbone,
                         progress=lambda f, s, p, stages=stages: stages.append((f, s)))
        m = res.metrics
        assert m["prob_before"] < 0.1 and m["prob_after"] >= 0.5, m
        assert m["outside_changed_pixels"] == 0
        out = np.asarray(res.photo)
        assert np.array_equal(out[~mask], original[~mask]) and not np.array_equal(out[mask], original[mask])
        assert np.array_equal(np.asarray(photo), original)  # the input is never changed in place
        assert res.offset == RECT[:2] and res.layer.size == RECT[2:] and res.layer.mode == "RGBA"
        fractions = [f for f, _ in stages]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        fills.append(out[mask].astype(float))
    assert np.abs(fills[0] - fills[1]).mean() > 10  # visibly different fills (0-255 scale)


def test_insert_respects_any_selection_shape_and_size(backbone):
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((1600, 1600))
    yy, xx = np.mgrid[:1600, :1600]
    refine = InsertSettings(refine=True, refine_iters=2)
    for cx, cy, r in ((40, 40, 16), (900, 800, 600)):   # 32 px in a corner, 1200 px ellipse
        mask = (xx - cx) ** 2 / r ** 2 + (yy - cy) ** 2 / (0.7 * r) ** 2 <= 1
        res = api.insert(photo, mask, "ladybug", None, backbone=backbone, iters=3, settings=refine)
        assert res.metrics["outside_changed_pixels"] == 0
        assert res.metrics["refined"] == (r > 100) and res.metrics["work_size"] == (448 if r > 100 else 224)
        ys, xs = np.nonzero(mask)
        assert res.offset == (xs.min(), ys.min())
        assert res.layer.size == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        alpha = np.asarray(res.layer)[..., 3]
        inside = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert alpha[~inside].max() == 0 and alpha[inside].max() == 255


def test_modify_restyles_an_inserted_object(backbone, grass_field, hay_styles, models_root,
                                            monkeypatch):
    """Insert hay in style 0, then restyle it to style 1; the class comes from the selection."""
    monkeypatch.setenv("STYLEFILL_MODELS", str(models_root))
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    inserted = api.insert(photo, mask, "hay", 0, backbone=backbone, iters=60).photo
    res = api.modify(inserted, mask, 1, backbone=backbone, iters=60)
    m = res.metrics
    assert m["class"] == "hay" and m["outside_changed_pixels"] == 0 and m["prob_after"] >= 0.5, m
    changed = np.abs(np.asarray(res.photo, float) - np.asarray(inserted, float))[mask].mean()
    assert 1 < changed < 60, changed  # restyled, not replaced


def test_cancel_and_bad_selections(backbone, grass_field):
    photo = Image.open(grass_field).convert("RGB")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        api.insert(photo, _rect_mask(photo, RECT), "hay", None, backbone=backbone, cancel=cancel)
    with pytest.raises(InputError, match="selection is empty"):
        api.insert(photo, np.zeros((photo.height, photo.width), bool), "hay", backbone=backbone)
    with pytest.raises(InputError, match="photo's size"):
        api.suggest(photo, np.ones((10, 10), bool), backbone=backbone)
    with pytest.raises(InputError, match="unknown class"):
        api.insert(photo, _rect_mask(photo, RECT), "haystack", backbone=backbone)


def test_cli_suggest_and_insert(grass_field, tmp_path):
    js = tmp_path / "s.json"
    assert main(["suggest", str(grass_field), "--rect", "170,190,128,128", "--json", str(js), "-q"]) == 0
    data = json.loads(js.read_text())
    assert len(data["suggestions"]) == 5 and set(data["suggestions"][0]) == {"class", "index", "prob"}

    photo = Image.open(grass_field)
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (100, 100, 164, 180))
    mask.save(tmp_path / "m.png")
    out, layer = tmp_path / "o.png", tmp_path / "l.png"
    assert main(["insert", str(grass_field), "--mask", str(tmp_path / "m.png"), "--class", "hay",
                 "--iters", "3", "-o", str(out), "--layer", str(layer), "--json", str(js), "-q"]) == 0
    data = json.loads(js.read_text())
    assert data["outside_changed_pixels"] == 0 and data["offset"] == [100, 100]
    assert Image.open(out).size == photo.size and Image.open(layer).size == (64, 80)
    # bad selections: one line, exit 2
    assert main(["insert", str(grass_field), "--class", "hay", "-o", str(out), "-q"]) == 2
    assert main(["insert", str(grass_field), "--rect", "1,2,3", "--class", "hay", "-o", str(out), "-q"]) == 2
    assert main(["insert", str(grass_field), "--rect", "400,300,200,200", "--class", "hay",
                 "-o", str(out), "-q"]) == 2
    Image.new("L", (10, 10)).save(tmp_path / "small.png")
    assert main(["suggest", str(grass_field), "--mask", str(tmp_path / "small.png"), "-q"]) == 2
