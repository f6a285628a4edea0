"""Object completion over HTTP (docs/protocol.md): suggest, insert and modify jobs against the
real server, on real photos (the held-out grass field, skimage's coffee), with few iterations.

Styles are learned for the engine's own models dir by the test, from a folder of photos with a
4-step preview (seconds), so nothing waits for data-free styles (a minute or two per class).
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from PIL import Image
from test_server import FINISHED, b64_png, cancel_and_count_steps, decode_png, submit, wait

from stylefill.operations import SuggestRequest, run

# The selection on the grass field that tests/test_completion.py fills with hay.
RECT = (170, 190, 128, 128)
# skimage's coffee (600 x 400): the cup of espresso.
CUP = (120, 40, 300, 220)


def ellipse(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """A bool mask (h, w) of the ellipse inscribed in box = x, y, w, h."""
    x, y, w, h = box
    yy, xx = np.mgrid[:size[1], :size[0]]
    return ((xx + 0.5 - x - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - y - h / 2) / (h / 2)) ** 2 <= 1


def mask_png(mask: np.ndarray, mode: str = "L") -> str:
    m = Image.fromarray(mask.astype(np.uint8) * 255)
    if mode == "RGBA":  # alpha decides: colour everywhere, transparent outside the selection
        rgba = Image.new("RGBA", m.size, (200, 30, 30, 0))
        rgba.putalpha(m)
        m = rgba
    return b64_png(m)


def step_of(stage: str) -> int | None:
    """The solver step in a stage text such as 'optimising at 224 px 12/20' (None elsewhere)."""
    found = re.fullmatch(r"optimising (?:.* )?(\d+)/(\d+)", stage)
    return int(found[1]) if found else None


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.fixture(scope="module")
def field(grass_field) -> Image.Image:
    return Image.open(grass_field).convert("RGB")


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.coffee())


@pytest.fixture(scope="module")
def espresso_styles(engine, backbone, coffee, tmp_path_factory):
    """One style of 'espresso', learned from four views of the coffee photo into the engine's
    models dir (the engine reads styles from disk on each job)."""
    from stylefill import styles

    folder = tmp_path_factory.mktemp("espresso")
    coffee.save(folder / "a.png")
    coffee.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b.png")
    coffee.crop((60, 0, 560, 400)).save(folder / "c.png")
    coffee.crop((100, 20, 460, 300)).save(folder / "d.png")
    return styles.learn("espresso", backbone, folder=folder, topics=1,
                        preview_settings=styles.PreviewSettings(iters=4), root=engine.models)


def check_layer(res: dict, photo: Image.Image, mask: np.ndarray) -> np.ndarray:
    """The result is the selection's bounding box at its offset, transparent outside the
    selection, opaque deep inside; returns its RGBA pixels."""
    x0, y0, x1, y1 = bbox(mask)
    assert res["offset"] == [x0, y0] and res["size"] == [x1 - x0, y1 - y0]
    layer = decode_png(res["png"])
    assert layer.mode == "RGBA" and layer.size == (x1 - x0, y1 - y0)
    rgba = np.asarray(layer)
    inside = mask[y0:y1, x0:x1]
    assert rgba[..., 3][~inside].max(initial=0) == 0
    assert rgba[..., 3][inside].min() > 0 and rgba[..., 3][inside].max() == 255
    m = res["metrics"]
    assert m["outside_changed_pixels"] == 0
    assert 0 <= m["prob_before"] <= 1 and 0 <= m["prob_after"] <= 1
    before = np.asarray(photo)[y0:y1, x0:x1]
    changed = np.abs(rgba[..., :3].astype(int) - before).max(-1)[inside]
    assert changed.mean() > 3, changed.mean()  # the selection got new content
    return rgba


def test_suggest_with_a_rect_and_with_a_mask(client, field, backbone):
    r = client.post("/v1/suggest", json={"image": b64_png(field), "rect": list(RECT), "top": 5})
    assert r.status_code == 200, r.text
    found = r.json()["suggestions"]
    assert len(found) == 5
    probs = [s["prob"] for s in found]
    assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
    # What the Python API answers for the same selection, class for class.
    mask = np.zeros((field.height, field.width), bool)
    mask[RECT[1]:RECT[1] + RECT[3], RECT[0]:RECT[0] + RECT[2]] = True
    direct = run(SuggestRequest(image=field, selection=mask, top=5)).metrics["suggestions"]
    assert [(s["class"], s["index"]) for s in found] == [(p["class"], p["index"]) for p in direct]
    assert probs == pytest.approx([p["prob"] for p in direct], abs=1e-4)

    oval = ellipse(field.size, RECT)
    for mode in ("L", "RGBA"):
        r = client.post("/v1/suggest", json={"image": b64_png(field), "mask": mask_png(oval, mode),
                                             "top": 3})
        assert r.status_code == 200, r.text
        got = r.json()["suggestions"]
        assert len(got) == 3 and [s["prob"] for s in got] == sorted(
            (s["prob"] for s in got), reverse=True)
        assert all(isinstance(s["class"], str) and isinstance(s["index"], int) for s in got)
        assert {s["class"] for s in got} & {s["class"] for s in found}  # the same context


def test_suggest_inside_says_what_the_selection_holds(client, coffee):
    """look=inside: the classes of the selected object (modify's default class), not of what
    would fit around it."""
    r = client.post("/v1/suggest", json={"image": b64_png(coffee), "rect": list(CUP), "top": 3,
                                         "look": "inside"})
    assert r.status_code == 200, r.text
    classes = [s["class"] for s in r.json()["suggestions"]]
    assert classes[0] in {"espresso", "cup", "coffee mug"}, classes
    r = client.post("/v1/suggest", json={"image": b64_png(coffee), "rect": list(CUP),
                                         "look": "under"})
    assert r.status_code == 422 and "look" in r.json()["detail"]


def test_insert_job_reports_progress_preview_and_places_the_layer(client, field):
    oval = ellipse(field.size, (150, 180, 150, 120))
    job = submit(client, {"kind": "insert", "image": b64_png(field), "mask": mask_png(oval),
                          "params": {"class": "hay", "iters": 20, "seed": 2}})
    previews = []

    def until(status: dict) -> bool:
        # The solver hands a preview every 10 steps: fetch one between step 10 and the end.
        done = step_of(status["stage"])
        if status["state"] == "running" and not previews and done is not None and 10 <= done < 20:
            previews.append(client.get(f"/v1/jobs/{job['id']}/preview.png"))
        return status["state"] in FINISHED

    final, seen = wait(client, job["id"], until, timeout=120)
    assert final["state"] == "done", final
    running = [s for s in seen if s["state"] == "running"]
    progress = [s["progress"] for s in running]
    assert progress == sorted(progress) and any(0 < p < 100 for p in progress), progress
    steps = [step_of(s["stage"]) for s in running if step_of(s["stage"]) is not None]
    assert steps and steps == sorted(steps) and steps[-1] <= 20, [s["stage"] for s in running]
    assert previews and previews[0].status_code == 200, previews
    assert previews[0].headers["content-type"] == "image/png"
    shown = Image.open(io.BytesIO(previews[0].content))
    # What the layer will hold: the selection's box at the solver's scale (224 px for the
    # 300 px context square), the selection as alpha.
    assert shown.mode == "RGBA" and abs(shown.width - 112) <= 1 and abs(shown.height - 90) <= 1, \
        (shown.mode, shown.size)
    alpha = np.asarray(shown)[..., 3]
    assert alpha[0, 0] == 0 and alpha[45, 56] == 255

    res = client.get(f"/v1/jobs/{job['id']}/result").json()
    check_layer(res, field, oval)
    m = res["metrics"]
    assert m["class"] == "hay" and m["style"] is None and m["iters"] == 20


def test_running_insert_cancelled_stops_at_the_next_step(client, field):
    job = submit(client, {"kind": "insert", "image": b64_png(field), "rect": list(RECT),
                          "params": {"class": "hay", "iters": 5000}})
    wait(client, job["id"], lambda s: s["stage"].startswith("optimising ") or
         s["state"] in FINISHED)
    assert 0 <= cancel_and_count_steps(client, job["id"]) <= 10
    r = client.get(f"/v1/jobs/{job['id']}/result")
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]


@pytest.mark.parametrize("kind", ["insert", "modify", "visualize"])
def test_a_style_the_class_does_not_have_fails_the_job_clearly(client, coffee, espresso_styles,
                                                              kind):
    body = {"kind": kind, "params": {"class": "espresso", "style": 3, "iters": 2}}
    if kind == "visualize":
        body["params"]["size"] = 64
    else:
        body.update(image=b64_png(coffee), rect=list(CUP))
    job = submit(client, body)
    final, _ = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=60)
    assert final["state"] == "failed", final
    assert final["message"] == "espresso has styles 0..0; there is no style 3"


def test_modify_job_restyles_the_selection(client, coffee, espresso_styles):
    listing = client.get("/v1/styles/espresso").json()
    assert [s["id"] for s in listing["styles"]] == [0]
    cup = ellipse(coffee.size, CUP)
    job = submit(client, {"kind": "modify", "image": b64_png(coffee), "mask": mask_png(cup),
                          "params": {"class": "espresso", "style": 0, "iters": 10}})
    final, seen = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
    assert final["state"] == "done", final
    assert any(s["stage"].startswith("optimising ") for s in seen), seen
    res = client.get(f"/v1/jobs/{job['id']}/result").json()
    check_layer(res, coffee, cup)
    m = res["metrics"]
    assert (m["class"], m["style"], m["iters"]) == ("espresso", 0, 10)
    assert m["prob_before"] > 0.5  # the cup was already there: modify keeps its class

    # Without a class: the top-1 class inside the selection (the cup is an espresso).
    job = submit(client, {"kind": "modify", "image": b64_png(coffee), "rect": list(CUP),
                          "params": {"style": 0, "iters": 4}})
    final, _ = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
    assert final["state"] == "done", final
    res = client.get(f"/v1/jobs/{job['id']}/result").json()
    assert res["offset"] == list(CUP[:2]) and res["size"] == list(CUP[2:])
    assert res["metrics"]["class"] == "espresso" and res["metrics"]["outside_changed_pixels"] == 0


def test_visualize_job_with_a_learned_style(client, espresso_styles):
    job = submit(client, {"kind": "visualize",
                          "params": {"class": "espresso", "style": 0, "iters": 8, "size": 96}})
    final, seen = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
    assert final["state"] == "done", final
    assert not any("learning" in s["stage"] for s in seen)  # stored styles are only read
    res = client.get(f"/v1/jobs/{job['id']}/result").json()
    assert res["offset"] == [0, 0] and res["size"] == [96, 96]
    assert res["metrics"]["style"] == 0 and res["metrics"]["class"] == "espresso"
    assert np.asarray(decode_png(res["png"]))[..., :3].std() > 5


def test_visualize_job_learns_missing_styles_first_with_progress(small_engine, tmp_path,
                                                                  monkeypatch):
    """A style of a class with none stored: data-free styles are learned inside the job, in the
    first half of its progress, then cached. (Learning is cut down from its 1-2 minutes here,
    and held at its sampling stage until the client has seen it, as a run this short could
    pass it between two polls; the in-process engine reads STYLEFILL_MODELS on each job.)"""
    import threading
    from functools import partial

    from harness import held_at_sampling

    from stylefill import styles

    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))
    quick = partial(styles.learn, data_free_settings=styles.DataFreeSettings(samples=4, size=64, iters=6),
                    preview_settings=styles.PreviewSettings(iters=3))
    sampling_seen = threading.Event()
    monkeypatch.setattr(styles, "learn", held_at_sampling(quick, sampling_seen))
    body = {"kind": "visualize", "params": {"class": "goldfish", "style": 1, "iters": 6, "size": 64}}
    with small_engine.client() as c:
        job = submit(c, body)
        _, before = wait(c, job["id"], lambda s: "sampling pathways" in s["stage"], timeout=60)
        sampling_seen.set()
        final, seen = wait(c, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
        seen = before + seen
        assert final["state"] == "done", final
        learning = [s for s in seen
                    if s["stage"].startswith("learning the styles of goldfish (one-time, cached): ")]
        assert learning and all(s["progress"] <= 50 for s in learning), seen
        assert any("sampling pathways" in s["stage"] for s in learning)
        after = seen[seen.index(learning[-1]):]
        assert any(s["stage"].startswith("optimising ") and s["progress"] >= 50 for s in after)
        res = c.get(f"/v1/jobs/{job['id']}/result").json()
        assert res["metrics"]["style"] == 1 and res["size"] == [64, 64]
        listing = c.get("/v1/styles/goldfish").json()
        assert listing["source"] == "data-free" and len(listing["styles"]) == 4

        job = submit(c, body)  # now they are stored: read, not learned again
        final, seen = wait(c, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
        assert final["state"] == "done", final
        assert not any("learning" in s["stage"] for s in seen)


@pytest.fixture
def learning_engine(tmp_path, monkeypatch):
    """An in-process engine that learns styles in the background, into a fresh models dir, with
    learning cut down to seconds."""
    from functools import partial

    from harness import serve_in_thread

    from stylefill import styles
    from stylefill.server import create_app

    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))
    monkeypatch.setattr(styles, "learn", partial(
        styles.learn, data_free_settings=styles.DataFreeSettings(samples=4, size=64, iters=40),
        preview_settings=styles.PreviewSettings(iters=3)))
    yield from serve_in_thread(create_app("learning-token", background_styles=True), "learning-token")


def wait_for_styles(c, cls: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (r := c.get(f"/v1/styles/{cls}")).status_code != 200:
        assert time.monotonic() < deadline, f"no styles of {cls} after {timeout} s"
        time.sleep(0.2)
    return r.json()


def test_a_cancelled_job_leaves_its_class_learning_and_prefetch_reports_it(learning_engine):
    """Styles are learned for the class, not for the job: cancelling the job that started the
    learning stops the job at once, the learning goes on, and the next job reads its styles."""
    body = {"kind": "visualize", "params": {"class": "tench", "style": 0, "iters": 6, "size": 64}}
    with learning_engine.client() as c:
        job = submit(c, body)
        _, seen = wait(c, job["id"], lambda s: "sampling pathways" in s["stage"], timeout=60)
        assert "(one-time, cached)" in seen[-1]["stage"]
        t0 = time.monotonic()
        c.post(f"/v1/jobs/{job['id']}/cancel")
        final, _ = wait(c, job["id"], lambda s: s["state"] in FINISHED, timeout=10)
        assert final["state"] == "cancelled" and time.monotonic() - t0 < 2.0, final
        assert "go on being learned in the background" in final["message"]
        status = c.post("/v1/styles/tench/prefetch").json()  # the same run, still going
        assert status["state"] == "learning" and "(one-time, cached)" in status["stage"], status
        assert len(wait_for_styles(c, "tench")["styles"]) == 4
        assert c.post("/v1/styles/tench/prefetch").json()["state"] == "learned"
        job = submit(c, body)
        final, seen = wait(c, job["id"], lambda s: s["state"] in FINISHED, timeout=60)
        assert final["state"] == "done" and not any("learning" in s["stage"] for s in seen)


def test_an_insert_in_any_style_starts_at_once_and_learns_styles_for_next_time(learning_engine, field):
    """No styles yet: the insert runs with the class's plain objective (no learning first),
    and the engine learns the class's styles in the background afterwards."""
    with learning_engine.client() as c:
        assert c.get("/v1/styles/hay").status_code == 404
        job = submit(c, {"kind": "insert", "image": b64_png(field), "rect": list(RECT),
                         "params": {"class": "hay", "iters": 6}})
        final, seen = wait(c, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
        assert final["state"] == "done" and not any("learning" in s["stage"] for s in seen)
        assert len(wait_for_styles(c, "hay")["styles"]) == 4


def test_prefetch_on_an_engine_that_learns_nothing_in_the_background_says_so(client):
    r = client.post("/v1/styles/tench/prefetch")
    assert r.status_code == 200 and r.json()["state"] == "off", r.text
    assert "STYLEFILL_BACKGROUND_STYLES=0" in r.json()["stage"] and r.json()["class"] == "tench"
