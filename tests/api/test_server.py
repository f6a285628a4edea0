"""The engine's HTTP protocol (docs/protocol.md) against the real server and real weights."""

from __future__ import annotations

import base64
import io
import re
import struct
import time
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from stylefill import __version__

LONG = {"kind": "visualize", "params": {"class": "ladybug", "iters": 20_000, "size": 64}}
FINISHED = {"done", "failed", "cancelled"}


def b64_png(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height: the server must refuse it unread."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def noise(w: int = 64, h: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def decode_png(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def submit(client: httpx.Client, body: dict) -> dict:
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def wait(client: httpx.Client, job_id: str, until, timeout: float = 120) -> tuple[dict, list[dict]]:
    """Poll every 20 ms until `until(status)`; returns the last status and every one seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if until(seen[-1]):
            return seen[-1], seen
        assert time.monotonic() < deadline, f"job {job_id} stuck at {seen[-1]}"
        time.sleep(0.02)


def start_long(client: httpx.Client) -> str:
    """A job that would run for minutes, once it is inside the solver loop."""
    job = submit(client, LONG)
    wait(client, job["id"], lambda s: s["stage"].startswith("optimising ") or
         s["state"] in FINISHED)
    return job["id"]


def test_health_needs_no_token(engine):
    r = httpx.get(f"{engine.url}/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "name": "stylefill", "version": __version__, "api": 1}


def test_openapi_schema_lists_the_protocol(engine):
    r = httpx.get(f"{engine.url}/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert {"/v1/health", "/v1/backbones", "/v1/suggest", "/v1/classify", "/v1/styles/{cls}",
            "/v1/styles/{cls}/{style_id}/preview.png", "/v1/styles/{cls}/prefetch", "/v1/jobs",
            "/v1/jobs/{job_id}",
            "/v1/jobs/{job_id}/preview.png", "/v1/jobs/{job_id}/cancel",
            "/v1/jobs/{job_id}/result"} == set(schema["paths"])
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())
    assert "security" not in schema["paths"]["/v1/health"]["get"]
    assert "security" in schema["paths"]["/v1/jobs"]["post"]


@pytest.mark.parametrize("token, phrase", [(None, "missing token"), ("not-the-token", "wrong token")])
def test_missing_or_wrong_token_gets_401(engine, token, phrase):
    with engine.client(token) as c:
        for r in (c.get("/v1/backbones"), c.post("/v1/jobs", json=LONG),
                  c.get("/v1/jobs/0123456789abcdef"), c.get("/v1/styles/ladybug")):
            assert r.status_code == 401, r.text
            assert phrase in r.json()["detail"]
            assert r.headers["www-authenticate"] == "Bearer"


def test_backbones(client):
    r = client.get("/v1/backbones")
    assert r.status_code == 200
    data = r.json()
    assert data["default"] == "efficientnet-lite0"
    by_name = {b["name"]: b for b in data["backbones"]}
    assert set(by_name) == {"efficientnet-lite0", "alexnet", "vgg16"}
    assert by_name["efficientnet-lite0"] == {
        "name": "efficientnet-lite0", "input_size": 224, "weights_available": True,
        "layers": ["block2", "block4", "block10", "block15", "pool5", "fc7", "logits"]}
    assert by_name["alexnet"]["layers"][:5] == ["conv1", "conv2", "conv3", "conv4", "conv5"]


def test_visualize_job_reports_progress_preview_and_result(client):
    job = submit(client, {"kind": "visualize",
                          "params": {"class": "ladybug", "iters": 20, "size": 128}})
    assert job["state"] in ("queued", "running")
    previews = []

    def until(status: dict) -> bool:
        if status["state"] == "running" and status["progress"] > 0 and not previews:
            previews.append(client.get(f"/v1/jobs/{job['id']}/preview.png"))
        return status["state"] in FINISHED

    final, seen = wait(client, job["id"], until, timeout=60)
    assert final["state"] == "done", final
    assert final["progress"] == 100 and final["message"] is None
    progress = [s["progress"] for s in seen if s["state"] == "running"]
    assert progress == sorted(progress)
    assert any(0 < p < 100 for p in progress), progress
    assert any(s["stage"].startswith("optimising ") for s in seen)

    assert previews and previews[0].status_code == 200
    assert previews[0].headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(previews[0].content)).size == (128, 128)

    r = client.get(f"/v1/jobs/{job['id']}/result")
    assert r.status_code == 200
    res = r.json()
    assert res["offset"] == [0, 0] and res["size"] == [128, 128]
    assert res["metrics"]["class"] == "ladybug" and res["metrics"]["index"] == 301
    assert 0 <= res["metrics"]["prob"] <= 1
    img = decode_png(res["png"])
    assert img.mode == "RGBA" and img.size == (128, 128)
    assert np.asarray(img)[..., :3].std() > 5  # an optimised picture, not the flat start


def test_same_seed_same_picture(client):
    def picture(seed: int) -> str:
        job = submit(client, {"kind": "visualize",
                              "params": {"class": "goldfish", "iters": 4, "size": 64, "seed": seed}})
        final, _ = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=60)
        assert final["state"] == "done", final
        return client.get(f"/v1/jobs/{job['id']}/result").json()["png"]

    first = picture(3)
    assert picture(3) == first
    assert picture(4) != first


def cancel_and_count_steps(client: httpx.Client, job_id: str) -> int:
    """Cancel a job that is inside the solver; how many steps it made after its last reported
    one before stopping (it promises to stop at the next step, whatever the machine's speed)."""
    seen = client.get(f"/v1/jobs/{job_id}").json()["stage"]
    r = client.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200
    assert r.json()["state"] in ("running", "cancelled")
    final, _ = wait(client, job_id, lambda s: s["state"] in FINISHED, timeout=120)
    assert final["state"] == "cancelled" and final["progress"] < 100, final
    before = int(re.search(r"(\d+)/\d+", seen).group(1))
    stopped = int(re.search(r"cancelled at step (\d+) of", final["message"]).group(1))
    return stopped - before


def test_running_job_cancelled_stops_at_the_next_step(client):
    job_id = start_long(client)
    assert 0 <= cancel_and_count_steps(client, job_id) <= 10
    r = client.get(f"/v1/jobs/{job_id}/result")
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]


def test_second_job_waits_in_queue_and_a_full_queue_gets_429(client):
    running = start_long(client)
    short = {"kind": "visualize", "params": {"class": "goldfish", "iters": 3, "size": 64}}
    waiting = [submit(client, short) for _ in range(4)]
    try:
        assert [j["state"] for j in waiting] == ["queued"] * 4
        assert [j["position"] for j in waiting] == [1, 2, 3, 4]
        status = client.get(f"/v1/jobs/{waiting[0]['id']}").json()
        assert (status["state"], status["position"], status["progress"]) == ("queued", 1, 0)
        r = client.get(f"/v1/jobs/{waiting[0]['id']}/preview.png")
        assert r.status_code == 404 and "no preview yet" in r.json()["detail"]
        r = client.get(f"/v1/jobs/{waiting[0]['id']}/result")
        assert r.status_code == 409 and "queued" in r.json()["detail"]

        r = client.post("/v1/jobs", json=short)
        assert r.status_code == 429, r.text
        assert "busy" in r.json()["detail"]

        r = client.post(f"/v1/jobs/{waiting[1]['id']}/cancel")
        assert r.json()["state"] == "cancelled" and r.json()["position"] is None
        assert client.get(f"/v1/jobs/{waiting[2]['id']}").json()["position"] == 2
        assert client.get(f"/v1/jobs/{running}").json()["state"] == "running"
    finally:
        client.post(f"/v1/jobs/{running}/cancel")
    # The queue drains in order once the long job is gone.
    for j in (waiting[0], waiting[2], waiting[3]):
        final, _ = wait(client, j["id"], lambda s: s["state"] in FINISHED, timeout=60)
        assert final["state"] == "done", final


def test_job_failing_on_its_input_says_why(client):
    """Input only the network can judge (cells on its pool5 map) fails the job with a message."""
    job = submit(client, {"kind": "visualize",
                          "params": {"class": "ladybug", "cells": "5:9,0:2", "size": 64}})
    final, _ = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=60)
    assert final["state"] == "failed"
    assert final["message"] == "cells '5:9,0:2' do not fit the 2x2 pool5 map"
    r = client.get(f"/v1/jobs/{job['id']}/result")
    assert r.status_code == 409
    assert r.json()["detail"] == f"job {job['id']} has no result: it failed: {final['message']}"


def test_invert_job_on_a_photo(client):
    import skimage.data

    photo = Image.fromarray(skimage.data.chelsea())  # 451 x 300, not square
    job = submit(client, {"kind": "invert", "image": b64_png(photo), "params": {"iters": 8}})
    final, seen = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
    assert final["state"] == "done", final
    res = client.get(f"/v1/jobs/{job['id']}/result").json()
    assert res["offset"] == [0, 0] and res["size"] == [451, 300]
    img = decode_png(res["png"])
    assert img.size == (451, 300) and img.mode == "RGBA"
    assert res["metrics"]["prior"] == "patch"
    assert 0 < res["metrics"]["relative_l2"] < 1 and res["metrics"]["feature_error"] >= 0


def test_learn_styles_job_then_list_and_preview(client, tmp_path, tmp_path_factory):
    import skimage.data

    cat = Image.fromarray(skimage.data.chelsea())  # the network ranks tabby in its top 3
    folder = tmp_path / "cats"
    folder.mkdir()
    cat.save(folder / "a.png")
    cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b.png")
    cat.crop((60, 0, 420, 300)).save(folder / "c.png")
    r = client.get("/v1/styles/tabby")
    assert r.status_code == 404 and "no styles learned for 'tabby'" in r.json()["detail"]

    job = submit(client, {"kind": "learn_styles",
                          "params": {"class": "tabby", "folder": str(folder), "topics": 1}})
    final, seen = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=300)
    assert final["state"] == "done", final
    assert len({s["stage"] for s in seen}) > 2  # the job tells what it is doing
    res = client.get(f"/v1/jobs/{job['id']}/result").json()
    assert res["png"] is None and res["offset"] is None and res["size"] is None
    listing = res["metrics"]
    assert listing["class"] == "tabby" and [s["id"] for s in listing["styles"]] == [0]
    # Files are named relative to the folder they are allowed in, never by absolute paths.
    allowed = tmp_path_factory.getbasetemp().resolve()
    assert listing["source"] == f"folder:{folder.resolve().relative_to(allowed)}"
    named = [p for s in listing["styles"] for p in (s["preview"], *s["images"])]
    assert named and not [p for p in named if p.startswith("/")], named

    assert listing["dropped"] == [] and listing["seconds"] > 0
    r = client.get("/v1/styles/tabby")
    assert r.status_code == 200
    assert r.json() == {k: v for k, v in listing.items() if k not in ("dropped", "seconds")}
    r = client.get("/v1/styles/281/0/preview.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (224, 224)
    r = client.get("/v1/styles/tabby/3/preview.png")
    assert r.status_code == 404 and "there is no style 3" in r.json()["detail"]
    r = client.get("/v1/styles/tabbby")
    assert r.status_code == 400 and "did you mean: tabby" in r.json()["detail"]



def test_style_listing_says_which_styles_look_alike(engine, client, backbone, tmp_path):
    """GET /v1/styles/CLASS lists styles farthest-first with how far each is from its nearest
    other and which ones look alike: real styles (learned here in seconds from four views of a
    photo), whose previews are then two different photos and a slight crop of the first."""
    import skimage.data

    from stylefill import styles

    coffee = Image.fromarray(skimage.data.coffee())
    folder = tmp_path / "coffee"
    folder.mkdir()
    for i, box in enumerate([(0, 0, 600, 400), (40, 0, 600, 380), (0, 30, 560, 400), (80, 60, 520, 360)]):
        coffee.crop(box).save(folder / f"{i}.png")
    ss = styles.learn("espresso", backbone, folder=folder, topics=3, keep_all=True,
                      preview_settings=styles.PreviewSettings(iters=4), root=engine.models)
    astronaut = Image.fromarray(skimage.data.astronaut())
    coffee.resize((224, 224)).save(ss.root / "preview_0.png")
    astronaut.resize((224, 224)).save(ss.root / "preview_1.png")
    coffee.crop((6, 4, 600, 400)).resize((224, 224)).save(ss.root / "preview_2.png")

    listing = client.get("/v1/styles/espresso").json()
    assert listing["order"] == [0, 1, 2] and listing["distinct"] == 2
    assert [s["id"] for s in listing["styles"]] == [0, 1, 2]
    first, other, alike = listing["styles"]
    assert alike["looks_like"] == 0 and alike["near_duplicate"] and alike["nearest"] == 0
    assert other["looks_like"] is None and not other["near_duplicate"] and other["distance"] > 1
    assert first["nearest"] == 2 and first["distance"] == alike["distance"] < 1
    coffee.crop((6, 4, 600, 400)).resize((224, 224)).save(ss.root / "preview_1.png")
    listing = client.get("/v1/styles/espresso").json()
    assert listing["distinct"] == 1 and [s["looks_like"] for s in listing["styles"][1:]] == [0, 0]


PHOTO = noise()


@pytest.mark.parametrize("body, status, phrase", [
    ({"kind": "invert", "image": base64.b64encode(png_claiming(9000, 10)).decode()},
     400, "9000x10 is larger than the limit of 8000 px per side"),
    ({"kind": "invert", "image": "this is not base64!"}, 400, "image: not valid base64"),
    ({"kind": "invert", "image": base64.b64encode(b"GIF89a but not really").decode()},
     400, "image: not an image Stylefill can read"),
    ({"kind": "invert", "image": base64.b64encode(
        base64.b64decode(b64_png(PHOTO))[:200]).decode()}, 400, "image: broken or truncated"),
    ({"kind": "invert"}, 400, "an 'image' is needed"),
    ({"kind": "insert", "image": b64_png(PHOTO), "mask": b64_png(Image.new("L", (32, 32), 255)),
      "params": {"class": "hay"}}, 400, "mask is 32x32 but the image is 64x48"),
    ({"kind": "insert", "image": b64_png(PHOTO), "mask": b64_png(Image.new("L", (64, 48), 0)),
      "params": {"class": "hay"}}, 400, "mask selects nothing"),
    ({"kind": "insert", "image": b64_png(PHOTO), "mask": b64_png(Image.new("RGBA", (64, 48),
                                                                           (255, 255, 255, 0))),
      "params": {"class": "hay"}}, 400, "mask selects nothing"),
    ({"kind": "insert", "image": b64_png(PHOTO), "rect": [40, 10, 30, 10],
      "params": {"class": "hay"}}, 400, "rect 40,10,30,10 does not fit inside the 64x48 image"),
    ({"kind": "insert", "image": b64_png(PHOTO), "rect": [0, 0, 8, 8],
      "mask": b64_png(Image.new("L", (64, 48), 255)), "params": {"class": "hay"}},
     400, "a 'mask' or a 'rect', not both"),
    ({"kind": "insert", "image": b64_png(PHOTO), "params": {"class": "hay"}},
     400, "a selection is needed"),
    ({"kind": "modify", "image": b64_png(PHOTO), "rect": [0, 0, 8, 8], "params": {"style": 64}},
     422, "params.style: Input should be less than 64"),
    ({"kind": "visualize", "params": {"class": "ladybugg"}}, 400,
     "unknown class 'ladybugg'; did you mean: ladybug"),
    ({"kind": "visualize", "params": {"class": "ladybug", "backbone": "resnet"}}, 400,
     "unknown backbone 'resnet'"),
    ({"kind": "visualize", "params": {"class": "ladybug", "clas": "x"}}, 422,
     "params.clas: Extra inputs are not permitted"),
    ({"kind": "visualize", "params": {"class": "ladybug", "iters": 0}}, 422,
     "params.iters: Input should be greater than or equal to 1"),
    ({"kind": "visualize", "params": {"class": "ladybug", "style": -1}}, 422,
     "params.style: Input should be greater than or equal to 0"),
    ({"kind": "insert", "image": b64_png(PHOTO), "rect": [0, 0, 8, 8],
      "params": {"class": "hay", "style": "dotted"}}, 422, "params.style: Input should be a valid integer"),
    ({"kind": "insert", "image": b64_png(PHOTO), "rect": [0, 0, 8, 8],
      "params": {"class": "hay", "object_share": 0.6, "render_first": 0}}, 400,
     "object_share needs render_first above 0"),
    ({"kind": "insert", "image": b64_png(PHOTO), "rect": [0, 0, 8, 8],
      "params": {"class": "hay", "style_start": True}}, 400, "style_start needs a style"),
    ({"kind": "visualize", "image": b64_png(PHOTO), "params": {"class": "ladybug"}}, 400,
     "visualize takes no 'image'"),
    ({"kind": "invert", "image": b64_png(PHOTO), "rect": [0, 0, 8, 8]}, 400,
     "invert works on the whole image"),
    ({"kind": "paint", "params": {}}, 422, "kind: Input should be 'invert', 'invert_code'"),
])
def test_bad_job_requests_get_4xx_with_a_clear_message(client, body, status, phrase):
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == status, r.text
    assert phrase in r.json()["detail"]


def test_bad_suggest_request_and_broken_json(client):
    r = client.post("/v1/suggest", json={"image": b64_png(PHOTO),
                                         "mask": b64_png(Image.new("L", (48, 64), 255))})
    assert r.status_code == 400 and "mask is 48x64 but the image is 64x48" in r.json()["detail"]
    r = client.post("/v1/jobs", content=b'{"kind": "visualize",', headers={
        "content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]


def test_unknown_job_is_404(client):
    for r in (client.get("/v1/jobs/feedfacefeedface"),
              client.post("/v1/jobs/feedfacefeedface/cancel"),
              client.get("/v1/jobs/feedfacefeedface/result")):
        assert r.status_code == 404 and "no job 'feedfacefeedface'" in r.json()["detail"]


def test_body_over_the_limit_gets_413(small_engine):
    big = {"kind": "invert", "image": "A" * (100 * 1024)}
    with small_engine.client() as c:
        r = c.post("/v1/jobs", json=big)
        assert r.status_code == 413 and "larger than the limit of 0.0625 MiB" in r.json()["detail"]

        def chunks():  # no Content-Length: the server must count what arrives
            for _ in range(100):
                yield b"A" * 1024

        r = c.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        # Under the limit the body reaches the route unchanged (here: refused on its content).
        r = c.post("/v1/jobs", json={"kind": "visualize", "params": {"class": "ladybug",
                                                                      "iters": 0}})
        assert r.status_code == 422 and "params.iters" in r.json()["detail"]


def test_naturalness_job_with_and_without_a_selection(client):
    """An operation whose selection is optional: a rect makes it judge the context crop and
    measure the fill; none judges the whole image; a rect on a selection-less kind is refused."""
    import skimage.data

    photo = b64_png(Image.fromarray(skimage.data.chelsea()))
    results = []
    for extra in ({}, {"rect": [150, 40, 120, 120]}):
        job = submit(client, {"kind": "naturalness", "image": photo,
                              "params": {"class": "Egyptian cat"}, **extra})
        final, _ = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
        assert final["state"] == "done", final
        results.append(client.get(f"/v1/jobs/{job['id']}/result").json()["metrics"])
    whole, selected = results
    assert whole["view"] == "image" and whole["fill"] is None
    assert selected["view"].startswith("context crop") and selected["fill"]["slope"] > 0
    assert whole["judge_network"] == "efficientnet-lite2" and whole["judge_top1"] == "Egyptian cat"
    r = client.post("/v1/jobs", json={"kind": "invert_code", "image": photo, "rect": [0, 0, 8, 8]})
    assert r.status_code == 400 and "no mask or rect" in r.text, r.text
