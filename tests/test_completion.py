"""Style-based object completion on real photos: suggest, insert, modify, and their CLI."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from stylefill.classification import object_view
from stylefill.cli import main
from stylefill.completion import (
    InsertSettings,
    _blurred,
    _context,
    _focus_sigma,
    _pasted_share,
    fill_selection,
    fill_tv,
    object_outline,
)
from stylefill.errors import Cancelled, InputError
from stylefill.operations import InsertRequest, ModifyRequest, SuggestRequest, run
from stylefill.photo_stats import around as around_stats
from stylefill.photo_stats import spectrum_stats
from stylefill.regions import selection_box
from stylefill.retrieval import mixtures
from stylefill.styles import fc7_features

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


def test_suggest_lists_grassland_objects(backbone, grass_field):
    photo = Image.open(grass_field).convert("RGB")
    found = run(SuggestRequest(image=photo, selection=_rect_mask(photo, RECT))).metrics["suggestions"]
    assert len(found) == 5 and found[0]["prob"] >= found[-1]["prob"]
    assert {p["class"] for p in found} & GRASSLAND, [p["class"] for p in found]


def test_insert_in_styles_reaches_both_networks_bars(backbone, grass_field, ladybug_styles,
                                                     models_root, monkeypatch):
    """A ladybug on the held-out grass field in each of its four data-free styles (the
    session's ladybug styles: one data-free learning serves every test). Every insert reaches
    Lite0's bar (p_after >= 0.5), and, as issue 14 asks ("in at least two styles"), at least
    two of them are named by the judge at p >= 0.5: EfficientNet-Lite2, which no objective uses
    (with Lite0 alone in the objective and a Poisson blend its top-1 was "Egyptian cat", p
    0.0007, on the install's self-check). The style set depends on the CPU's arithmetic: on the
    AVX512 VM of the earlier sessions styles 0 and 1 read 0.90 and 0.60 (the test then asked
    both of them); on a 2-core AMD EPYC without AVX512 (2026-12-06) 0.29 ("leaf beetle"), 0.36,
    0.59 and 0.80, so not every style of a class reaches the judge's bar (docs/evaluation.md)."""
    from stylefill.judge import load_judge
    from stylefill.naturalness import naturalness

    monkeypatch.setenv("STYLEFILL_MODELS", str(models_root))
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    original = np.asarray(photo).copy()
    fills, judged = [], []
    for style in range(len(ladybug_styles.styles)):
        stages = []
        res = run(InsertRequest(image=photo, selection=mask, cls="ladybug", style=style),
                  progress=lambda f, s, p, stages=stages: stages.append((f, s)))
        m = res.metrics
        assert m["prob_before"] < 0.1 and m["prob_after"] >= 0.5, m
        seen = naturalness(backbone, load_judge(), res.image, m["index"], mask)
        judged.append((style, round(seen.judge["clean"], 3), seen.judge_top1))
        assert m["outside_changed_pixels"] == 0
        out = np.asarray(res.image)
        assert np.array_equal(out[~mask], original[~mask]) and not np.array_equal(out[mask], original[mask])
        assert np.array_equal(np.asarray(photo), original)  # the input is never changed in place
        assert res.offset == RECT[:2] and res.layer.size == RECT[2:] and res.layer.mode == "RGBA"
        fractions = [f for f, _ in stages]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        fills.append(out[mask].astype(float))
    at_bar = [style for style, p, top1 in judged if top1 == "ladybug" and p >= 0.5]
    assert len(at_bar) >= 2, judged
    assert np.abs(fills[at_bar[0]] - fills[at_bar[1]]).mean() > 10  # visibly different (0-255)


def test_the_install_self_checks_ladybug_is_the_judges_top_1(backbone, ladybug_styles, models_root,
                                                             monkeypatch):
    """install.sh's self-check scene: a ladybug in style 0 on scikit-learn's dahlia, a 120 px
    square on its petals. The judge (EfficientNet-Lite2, in no objective) names it, and since
    the object is drawn first by default it also reaches the issue's bar, p >= 0.5: 0.77 on two
    torch threads (0.64 with the canvas from grey noise, 0.32 grown out of the photo; a real
    ladybird photo, MATE's LadyBird.jpg, pasted into the same square 0.17-0.20, top-1 ladybug).
    The earlier scene, beside the eye of skimage's cat, cannot be passed by a real ladybird
    either: judge p 0.006, top-1 "Egyptian cat" (docs/evaluation.md)."""
    from sklearn.datasets import load_sample_image

    from stylefill.judge import load_judge
    from stylefill.naturalness import naturalness

    monkeypatch.setenv("STYLEFILL_MODELS", str(models_root))
    photo = Image.fromarray(load_sample_image("flower.jpg"))
    mask = _rect_mask(photo, (300, 130, 120, 120))
    res = run(InsertRequest(image=photo, selection=mask, cls="ladybug", style=0))
    judged = naturalness(backbone, load_judge(), res.image, res.metrics["index"], mask)
    assert judged.judge_top1 == "ladybug" and judged.solver["clean"] >= 0.5, (judged.judge, judged.judge_top1)
    assert judged.judge["clean"] >= 0.5, judged.judge


def test_insert_respects_any_selection_shape_and_size(backbone):
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((1600, 1600))
    yy, xx = np.mgrid[:1600, :1600]
    refine = InsertSettings(iters=3, refine=True, refine_iters=2, render_first=2)
    for cx, cy, r in ((40, 40, 16), (900, 800, 600)):   # 32 px in a corner, 1200 px ellipse
        mask = (xx - cx) ** 2 / r ** 2 + (yy - cy) ** 2 / (0.7 * r) ** 2 <= 1
        res = fill_selection(photo, mask, 301, backbone, m7=None, prior_images=None, modify=False,
                             seed=0, settings=refine)
        assert res.metrics["outside_changed_pixels"] == 0
        assert res.metrics["refined"] == (r > 100) and res.metrics["work_size"] == (448 if r > 100 else 224)
        ys, xs = np.nonzero(mask)
        assert res.offset == (xs.min(), ys.min())
        assert res.layer.size == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        alpha = np.asarray(res.layer)[..., 3]
        inside = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert alpha[~inside].max() == 0 and alpha[inside].max() == 255


def test_the_object_drawn_first_fits_selections_with_little_or_no_photo_around(backbone):
    """The default draws the object first at the spectrum of the photo around the selection.
    A selection of the whole photo has none (its own pixels serve), one on the photo's edge or
    corner has photo on two sides only, and a strip 2 px high at the network's scale gets a
    canvas that thin; each insert is finite (a NaN fill would be cast to pixels with numpy's
    "invalid value" error, raised here) and changes nothing outside the selection."""
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut())
    shapes = {"whole photo": (slice(None), slice(None)), "corner": (slice(0, 4), slice(508, 512)),
              "edge strip": (slice(0, 500), slice(200, 202)), "thin strip": (slice(100, 106), slice(50, 450))}
    for name, where in shapes.items():
        mask = np.zeros((512, 512), bool)
        mask[where] = True
        with np.errstate(invalid="raise"):
            res = fill_selection(photo, mask, 301, backbone, m7=None, prior_images=None,
                                 modify=False, seed=0, settings=InsertSettings(iters=2, render_first=2))
        assert res.metrics["outside_changed_pixels"] == 0, name
        assert not np.array_equal(np.asarray(res.photo)[mask], np.asarray(photo)[mask]), name


def test_modify_restyles_an_inserted_object(backbone, grass_field, ladybug_styles, models_root,
                                            monkeypatch):
    """Insert a ladybug in style 0, then restyle it to style 1; the class comes from the
    selection. The insert takes its default 100 steps: at 60, with TV 75, the object alone
    (not yet finished) read as "sea snake" 0.26 against ladybug 0.20; at 100 as ladybug 0.71."""
    monkeypatch.setenv("STYLEFILL_MODELS", str(models_root))
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    inserted = run(InsertRequest(image=photo, selection=mask, cls="ladybug", style=0)).image
    res = run(ModifyRequest(image=inserted, selection=mask, style=1, iters=60))
    m = res.metrics
    assert m["class"] == "ladybug" and m["outside_changed_pixels"] == 0 and m["prob_after"] >= 0.5, m
    changed = np.abs(np.asarray(res.image, float) - np.asarray(inserted, float))[mask].mean()
    assert 1 < changed < 60, changed  # restyled, not replaced


def test_modify_auto_restyles_into_the_style_the_object_shows_least(
        backbone, grass_field, ladybug_styles, models_root, monkeypatch, tmp_path):
    """Modify without a style: of the class's learned styles, the one the selected object loads
    least on (a visible change); a class without styles gets its plain objective."""
    monkeypatch.setenv("STYLEFILL_MODELS", str(models_root))
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    inserted = run(InsertRequest(image=photo, selection=mask, cls="ladybug", style=0)).image
    view = object_view(inserted, mask, backbone.input_size)
    loads, _ = mixtures(ladybug_styles, fc7_features(backbone, view))
    assert loads[0].max() > 1.5 * loads[0].min(), loads  # the choice is not a coin toss
    res = run(ModifyRequest(image=inserted, selection=mask, iters=20))
    assert res.metrics["class"] == "ladybug" and res.metrics["style"] == int(loads[0].argmin())

    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))  # no styles learned here
    plain = run(ModifyRequest(image=photo, selection=mask, cls="hay", iters=3))
    assert plain.metrics["style"] is None and plain.metrics["outside_changed_pixels"] == 0
    assert not list(tmp_path.rglob("styles.json"))  # nothing learned while the user waits


def test_cancel_and_bad_selections(backbone, grass_field):
    photo = Image.open(grass_field).convert("RGB")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run(InsertRequest(image=photo, selection=_rect_mask(photo, RECT), cls="hay"), cancel=cancel)
    with pytest.raises(InputError, match="selection is empty"):
        InsertRequest(image=photo, selection=np.zeros((photo.height, photo.width), bool), cls="hay")
    with pytest.raises(InputError, match="photo's size"):
        SuggestRequest(image=photo, selection=np.ones((10, 10), bool))
    with pytest.raises(InputError, match="unknown class"):
        InsertRequest(image=photo, selection=_rect_mask(photo, RECT), cls="haystack")


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


def test_grain_gives_an_upscaled_fill_the_photos_detail(backbone, held_out_photos):
    """A fill solved at 224 px and upscaled 2.7x into a 1350 px photo (palapeli's citrus
    fruits) is far smoother than the fruit around it; grain adds the photo's own finer detail
    and brings its high-frequency share near the surroundings', and levelling its finest band
    (the default) onto it. A MACO fill runs too. Nothing outside the selection changes."""
    photo = Image.open(next(p for p in held_out_photos if p.name == "citrus-fruits.jpg")).convert("RGB")
    mask = _rect_mask(photo, (400, 300, 300, 300))
    around = around_stats(np.asarray(photo) / 255.0, selection_box(mask)).high_frequency_share
    gaps = {}
    for label, settings in (("plain", InsertSettings(iters=30, render_first=0, grain=False)),
                            ("photo's grain", InsertSettings(iters=30, render_first=0, level_grain=0.0)),
                            ("levelled", InsertSettings(iters=30, render_first=0)),
                            ("maco", InsertSettings(iters=30, render_first=0, param="maco", degrade=True))):
        res = fill_selection(photo, mask, 958, backbone, m7=None, prior_images=None, modify=False,
                             seed=0, settings=settings)
        assert res.metrics["outside_changed_pixels"] == 0
        gaps[label] = spectrum_stats(np.asarray(res.photo) / 255.0, mask).high_frequency_share - around
    assert gaps["plain"] < -0.1 and abs(gaps["photo's grain"]) < 0.05, gaps
    assert abs(gaps["levelled"]) < 0.005 < abs(gaps["photo's grain"]), gaps
    with pytest.raises(InputError, match="fourier or maco"):
        fill_selection(photo, mask, 958, backbone, m7=None, prior_images=None, modify=False, seed=0,
                       settings=InsertSettings(iters=1, render_first=0, param="pixel"))


def test_a_context_crop_leaving_the_photo_mirrors_the_selection_instead_of_filling_it():
    """Only the photo's own selection is filled: its mirrored copy in a crop that leaves the
    photo is a reflection of the fill (MaskedParam's bands), never a second object the paste
    would drop."""
    photo = Image.new("RGB", (400, 200), (90, 120, 60))
    mask = np.zeros((200, 400), bool)
    mask[130:190, 150:280] = True  # 130 wide: a 260 px context square, taller than the photo
    ctx = _context(photo, mask, InsertSettings())
    assert ctx.bands() == (0, 90, 0, 0) and ctx.side == 260  # rows 30-290 of a 200 px photo
    assert ctx.crop_mask.sum() == mask.sum() and not ctx.crop_mask[170:].any()
    assert ctx.mirror_at(130) == (0, 45, 0, 0)


def test_keep_photo_leaves_more_of_the_photo_in_the_selection(backbone, grass_field):
    """An L1 cost on change (`keep_photo`, a field of the request on every surface): the fill
    takes fewer of the selection's pixels, and the rest stays near the grass it replaced.
    Nothing outside the selection changes either way."""
    from pydantic import ValidationError

    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    original = np.asarray(photo).astype(float)
    changed = {}
    for keep in (0.0, 60.0):
        res = run(InsertRequest(image=photo, selection=mask, cls="ladybug", iters=30, render_first=0,
                                keep_photo=keep))
        assert res.metrics["outside_changed_pixels"] == 0 and res.metrics["keep_photo"] == keep
        diff = np.abs(np.asarray(res.image).astype(float) - original)[mask].mean(axis=1)
        changed[keep] = float((diff > 25).mean())
    assert changed[60.0] < 0.8 * changed[0.0], changed
    with pytest.raises(ValidationError, match="keep_photo"):
        InsertRequest(image=photo, selection=mask, cls="ladybug", keep_photo=-1)


def test_a_fill_on_a_smooth_background_is_drawn_smoother_with_a_tv_for_the_photo(backbone, grass_field):
    """`tv_photo`: TV weighs more where the photo around the selection is smoother than it. On
    the grass field out of focus (a Gaussian blur, as behind a shallow depth of field) the
    weight rises 5-10x and the fill varies less from pixel to pixel (by a fifth) than with the plain
    weight, which is the default (`tv_photo` 0). Both are pasted unsoftened (`soften` 0: the
    default would blur both to the photo's focus), so the difference is the drawing's. Nothing
    outside the selection changes."""
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    blurred = photo.filter(ImageFilter.GaussianBlur(2))
    assert fill_tv(*_context(blurred, mask, InsertSettings()).at(224), InsertSettings()) == 75.0
    index = backbone.categories.index("ladybug")
    variation, tv = {}, {}
    for label, settings in (("default", InsertSettings(iters=30, render_first=0, soften=0.0)),
                            ("photo's", InsertSettings(iters=30, render_first=0, soften=0.0,
                                                       tv_photo=0.004))):
        res = fill_selection(blurred, mask, index, backbone, m7=None, prior_images=None, modify=False,
                             seed=0, settings=settings)
        assert res.metrics["outside_changed_pixels"] == 0
        grey = np.asarray(res.photo.convert("L")).astype(float)
        variation[label] = float(np.abs(np.diff(grey, axis=1))[mask[:, 1:] & mask[:, :-1]].mean())
        tv[label] = res.metrics["tv"]
    assert tv["default"] == 75.0 and 5 * 75.0 < tv["photo's"] <= 10 * 75.0, tv
    assert variation["photo's"] < 0.85 * variation["default"], variation


def test_an_insert_is_drawn_in_the_photos_light_and_a_modify_keeps_the_objects(backbone, grass_field):
    """`light`: the fill's mean luminance moves that share of the way to the photo's around the
    selection, inside the solver. On the grass field washed out (as an overexposed or hazy
    photo), a ladybug drawn in its own light (0) came out 0.07 lighter than the field around
    it, at 0.5 (the default since docs/tuning.md's twenty-sixth round) 0.03, fully matched (1.0)
    0.00. Modify leaves an object's light as it is."""
    photo = Image.open(grass_field).convert("RGB").point(lambda v: 255 - int((255 - v) * 0.35))
    mask = _rect_mask(photo, RECT)
    index = backbone.categories.index("ladybug")
    box = selection_box(mask)
    gap = {}
    for light in (0.0, 0.5, 1.0):
        res = fill_selection(photo, mask, index, backbone, m7=None, prior_images=None, modify=False,
                             seed=0, settings=InsertSettings(iters=30, render_first=0, light=light))
        assert res.metrics["outside_changed_pixels"] == 0
        edited = np.asarray(res.photo) / 255.0
        gap[light] = spectrum_stats(edited, mask).luminance - around_stats(edited, box).luminance
    assert InsertSettings().light == 0.5
    assert gap[0.0] > 0.04, gap
    assert abs(gap[0.5]) < 0.6 * gap[0.0] and abs(gap[1.0]) < 0.02, gap
    modified = [fill_selection(photo, mask, index, backbone, m7=None, prior_images=None, modify=True,
                               seed=0, settings=InsertSettings(iters=3, light=light)).photo
                for light in (0.0, 1.0)]
    assert np.array_equal(np.asarray(modified[0]), np.asarray(modified[1]))


def test_an_insert_can_draw_the_object_alone_first_then_in_the_photo(backbone, grass_field):
    """`render_first`: the object is drawn on a canvas of its own, the selection's box with the
    grass's spectrum, and placed as the start of the solve in context. Progress shows that
    stage first, its previews the layer the editor lays over the selection. On this photo the
    object alone (its box, as modify reads it) is then more surely the class than one grown out
    of the photo with the same steps in context: Lite0 0.41 against 0.05, the judge 0.14 against
    0.05 (top-1 "lacewing" against "nematode"), no style, in the object's own light (`light`
    0, the default then: half way to the grass's light the one grown out of the photo reads
    0.59 alone), two torch threads; on the six
    held-out photos of docs/evaluation.md it was not (docs/tuning.md, twelfth round). Nothing
    outside the selection changes either way. On by default since docs/tuning.md's nineteenth
    round (100 steps, then 80 in the photo); a request's `render_first` 0 turns it off."""
    from pydantic import ValidationError

    from stylefill.judge import load_judge
    from stylefill.naturalness import naturalness

    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    index = backbone.categories.index("ladybug")
    alone = {}
    for first in (0, 60):
        stages = []
        res = fill_selection(photo, mask, index, backbone, m7=None, prior_images=None, modify=False,
                             seed=0, settings=InsertSettings(iters=30, render_first=first, light=0.0),
                             progress=lambda f, s, p, stages=stages: stages.append((f, s, p)))
        assert res.metrics["outside_changed_pixels"] == 0
        fractions = [f for f, _, _ in stages]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        drawing = [s for _, s, _ in stages if s.startswith("drawing the object")]
        assert drawing == [f"drawing the object {i}/{first}" for i in range(1, first + 1)]
        assert stages[0][1] == "preparing" and stages[first + 1][1].startswith("optimising at 224 px")
        assert len({p.shape for _, _, p in stages if p is not None}) == 1  # one layer, RGBA
        assert stages[1][2].shape[1] == 4
        alone[first] = naturalness(backbone, load_judge(), res.photo, index, mask).alone
    assert alone[60]["solver"] > 4 * alone[0]["solver"], alone
    assert alone[60]["judge"] > 1.5 * alone[0]["judge"], alone
    assert InsertSettings().render_first == 100 and InsertSettings().iters == 80
    stages = []
    run(InsertRequest(image=photo, selection=mask, cls="ladybug", iters=2, render_first=3),
        progress=lambda f, s, p: stages.append(s))
    assert [s for s in stages if s.startswith("drawing")] == [f"drawing the object {i}/3" for i in (1, 2, 3)]
    with pytest.raises(ValidationError, match="render_first"):
        InsertRequest(image=photo, selection=mask, cls="ladybug", render_first=-1)


def test_an_insert_drawn_from_its_styles_image_is_an_object_of_that_style(
        backbone, grass_field, ladybug_styles, models_root, monkeypatch):
    """`style_start` (the default): the object's canvas starts from the style's top image, so each
    style draws an object of its own. On the grass field, a ladybug in style 0 follows the
    layout of style 0's image more than style 1's (grey levels of the object's box against each
    image), and its rerun with another seed is nearer to it (Lite0 fc7 cosine of the box) than
    the same insert in style 1 is; the class holds under Lite0. Without it the styles' objects
    look much alike (docs/tuning.md, twenty-third and twenty-fourth rounds). Asked for by name,
    it needs a style and the object drawn first."""
    import torch.nn.functional as F

    from stylefill.images import to_tensor

    monkeypatch.setenv("STYLEFILL_MODELS", str(models_root))
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    x, y, w, h = RECT

    def box(style: int, seed: int):
        res = run(InsertRequest(image=photo, selection=mask, cls="ladybug", style=style, seed=seed))
        assert res.metrics["prob_after"] >= 0.5 and res.metrics["outside_changed_pixels"] == 0
        return to_tensor(res.image.crop((x, y, x + w, y + h)))

    def unit(images):
        return F.normalize(torch.from_numpy(fc7_features(backbone, images)), dim=1)

    def grey(image):
        g = F.interpolate(image, size=(64, 64), mode="area").mean(1).flatten()
        return (g - g.mean()) / g.std()

    drawn, rerun, other = box(0, 0), box(0, 1), box(1, 0)
    first = [to_tensor(Image.open(ladybug_styles.image_paths(k, 1)[0]).convert("RGB"))
             for k in (0, 1)]
    own, theirs = (float((grey(drawn) * grey(image)).mean()) for image in first)
    assert own > theirs + 0.1, (own, theirs)
    f = unit(torch.cat([drawn, rerun, other]))
    assert float(f[0] @ f[1]) > float(f[0] @ f[2]), f @ f.T
    with pytest.raises(InputError, match="style_start needs a style"):
        run(InsertRequest(image=photo, selection=mask, cls="ladybug", style_start=True))
    with pytest.raises(InputError, match="style_start needs a style"):
        run(InsertRequest(image=photo, selection=mask, cls="ladybug", style=0, style_start=True,
                          render_first=0))
    assert InsertSettings().style_start


def test_object_outline_is_the_object_without_specks_or_holes():
    alpha = np.zeros((60, 80), np.float32)
    alpha[10:50, 10:60] = 0.9   # the object
    alpha[25:30, 30:35] = 0.2   # a hole in it
    alpha[2:4, 70:72] = 0.8     # a speck
    outline = object_outline(alpha)
    assert outline[10:50, 10:60].all() and outline.sum() == 40 * 50
    assert not object_outline(np.zeros((8, 8), np.float32)).any()


def test_an_insert_cut_to_its_outline_leaves_the_photo_in_the_rest_of_the_selection(backbone, grass_field):
    """`object_share`: the object drawn first, then cut out of its canvas on the grass by an
    alpha of its own that covers about that share of the box, and the selection cut to its
    outline. The rest of the selection, its rim above all, stays the photo's own pixels, so
    there is no rectangle of the fill's own; the result layer's alpha is the outline. On the
    held-out photos 0.6 left the rim at 0.034 mean change against the default's 0.165
    (docs/tuning.md, twenty-first round)."""
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    index = backbone.categories.index("ladybug")
    res = fill_selection(photo, mask, index, backbone, m7=None, prior_images=None, modify=False,
                         seed=0, settings=InsertSettings(iters=30, render_first=60, object_share=0.6))
    share = res.metrics["object_share"]
    assert 0.3 < share < 0.9, share
    before, after = (np.asarray(p).astype(np.float32) / 255 for p in (photo, res.photo))
    changed = np.any(before != after, axis=2)
    assert not (changed & ~mask).any() and res.metrics["outside_changed_pixels"] == 0
    x, y, w, h = RECT
    layer_alpha = np.asarray(res.layer)[..., 3]
    assert layer_alpha.shape == (h, w)
    photo_kept = layer_alpha == 0
    assert photo_kept.mean() > 0.1 and not changed[y:y + h, x:x + w][photo_kept].any()
    change = np.abs(after - before).mean(2)[y:y + h, x:x + w]
    edge = np.abs((np.arange(h) + 0.5) / h * 2 - 1)[:, None]
    edge = np.maximum(edge, np.abs((np.arange(w) + 0.5) / w * 2 - 1)[None, :])
    rim, centre = float(change[edge > 0.8].mean()), float(change[edge < 0.5].mean())
    print("outline share", share, "rim", rim, "centre", centre)
    assert rim < 0.03 and centre > 0.1, (rim, centre)
    with pytest.raises(InputError, match="render_first"):
        InsertRequest(image=photo, selection=mask, cls="ladybug", object_share=0.6, render_first=0)


def test_a_fill_sharper_than_the_photo_around_it_is_softened_to_its_focus(grass_field):
    """`soften`: on the grass field out of focus (a Gaussian blur, as behind a shallow depth of
    field) a fill of the sharp grass is blurred just enough for its high-frequency share to come
    down to its surroundings' (the issue's measure); a fill already smoother than them, and one
    no blur within the limit brings down, are left as they are."""
    photo = Image.open(grass_field).convert("RGB")
    mask = _rect_mask(photo, RECT)
    ctx = _context(photo.filter(ImageFilter.GaussianBlur(1.5)), mask, InsertSettings())
    sel = ctx.sel
    target = around_stats(ctx.rgb / 255.0, sel).high_frequency_share
    sharp = np.asarray(photo, np.float32)[sel.y0:sel.y1, sel.x0:sel.x1]
    alpha, grain = np.ones(sharp.shape[:2], np.float32), np.zeros_like(sharp)

    def share(fill: np.ndarray) -> float:
        return spectrum_stats(np.clip(fill, 0, 255) / 255.0).high_frequency_share

    assert share(sharp) > target + 0.08
    measure = _pasted_share(ctx, alpha)
    sigma = _focus_sigma(measure, sharp, grain, most=2.0)
    softened = share(_blurred(sharp, sigma))
    assert 0 < sigma < 2.0 and target - 0.01 < softened <= target, (sigma, softened, target)
    smooth = ctx.rgb[sel.y0:sel.y1, sel.x0:sel.x1].astype(np.float32)
    assert _focus_sigma(measure, smooth, grain, most=2.0) == 0.0
    assert _focus_sigma(measure, sharp, grain, most=0.1) == 0.0


def test_an_insert_takes_a_blurred_photos_focus_and_a_modify_keeps_the_objects(backbone, grass_field):
    """On the grass field out of focus the default insert's fill (drawn sharper than the blurred
    grass) is softened to its surroundings' high-frequency share, and the JSON says how much
    (`softened`, sigma in photo pixels); modifying that object keeps its own focus. Nothing
    outside the selection changes."""
    photo = Image.open(grass_field).convert("RGB").filter(ImageFilter.GaussianBlur(2))
    mask = _rect_mask(photo, RECT)
    index = backbone.categories.index("ladybug")
    res = fill_selection(photo, mask, index, backbone, m7=None, prior_images=None, modify=False,
                         seed=0, settings=InsertSettings(iters=30, render_first=0))
    around = around_stats(np.asarray(photo) / 255.0, selection_box(mask)).high_frequency_share
    share = spectrum_stats(np.asarray(res.photo) / 255.0, mask).high_frequency_share
    assert res.metrics["softened"] > 0 and res.metrics["outside_changed_pixels"] == 0
    assert abs(share - around) < 0.01, (share, around)
    restyled = fill_selection(res.photo, mask, index, backbone, m7=None, prior_images=None,
                              modify=True, seed=0, settings=InsertSettings(iters=5))
    assert restyled.metrics["softened"] == 0.0
