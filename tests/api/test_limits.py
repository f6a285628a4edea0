"""Every kind of work is bounded (docs/protocol.md, "Limits" and "Folders"): suggest's slots and
pixels, every number's range, strict types, complete validation at submit, the folders a
request may name, and no absolute path of the engine's machine in an answer."""

from __future__ import annotations

import base64
import io
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from harness import Engine, serve_in_thread
from PIL import Image
from test_server import FINISHED, b64_png, noise, submit, wait

from stylefill.server import create_app

MiB = 2**20


def status_kb(pid: int, field: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                if x.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def peak_growth(pid: int, action) -> float:
    """How far the process's resident memory rose above its start while `action` ran, in
    bytes: the kernel's high-water mark, reset first (Linux)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = status_kb(pid, "VmRSS")
    action()
    return status_kb(pid, "VmHWM") - before


def huge_flat_png() -> str:
    """8000 x 8000 RGB of one colour: about 190 KB of PNG, 192 MB of pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (8000, 8000), (90, 140, 60)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_suggests_of_huge_photos_take_slots_and_keep_only_their_context(engine):
    """Four suggests of an 8000 x 8000 photo at once: two compute, two wait for a slot, and
    each keeps only its context crop, so memory rises by a few hundred MB, not by gigabytes
    (0.75 GB each when all ran at once and kept the whole photo)."""
    image = huge_flat_png()

    def one(top: int) -> httpx.Response:
        with engine.client() as c:
            return c.post("/v1/suggest", json={"image": image, "top": top,
                                               "rect": [3900, 3900, 64, 64]})

    answers: list[httpx.Response] = []
    with ThreadPoolExecutor(4) as pool:
        grown = peak_growth(engine.pid, lambda: answers.extend(pool.map(one, (1, 2, 3, 4))))
    assert [r.status_code for r in answers] == [200] * 4, [r.text[:200] for r in answers]
    assert [len(r.json()["suggestions"]) for r in answers] == [1, 2, 3, 4]
    print(f"\nfour 8000x8000 suggests at once: server memory +{grown / MiB:.0f} MiB")
    assert grown < 900 * MiB


@pytest.fixture
def one_slot_engine() -> Iterator[Engine]:
    token = "one-slot-token"
    yield from serve_in_thread(create_app(token, slots=1, slot_wait=0.05,
                                          background_styles=False), token)


def test_a_busy_engine_answers_429_once_the_wait_for_a_slot_is_over(one_slot_engine):
    """One slot, a 50 ms wait: of three suggests sent at once, some are told to come back."""
    photo = b64_png(noise(1600, 1200))

    def one(_: int) -> httpx.Response:
        with one_slot_engine.client() as c:
            return c.post("/v1/suggest", json={"image": photo, "rect": [100, 100, 900, 900]})

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(one, range(3)))
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 200 and codes[-1] == 429, codes
    busy = next(r.json()["detail"] for r in answers if r.status_code == 429)
    assert busy == "the engine is busy: 1 requests are being computed; try again shortly"


NO_NUMBER_UNBOUNDED = [
    ({"kind": "visualize", "params": {"class": "ladybug", "style": 64}}, "params.style"),
    ({"kind": "visualize", "params": {"class": "ladybug", "dropout_seed": 2**40}},
     "params.dropout_seed"),
    ({"kind": "insert", "image": b64_png(noise()), "rect": [0, 0, 8, 8],
      "params": {"class": "hay", "style": 10**9}}, "params.style"),
    ({"kind": "learn_styles", "params": {"class": "tabby", "data_free": True,
                                         "samples": 10**9}}, "params.samples"),
    ({"kind": "learn_styles", "params": {"class": "tabby", "data_free": True, "topics": 10**9}},
     "params.topics"),
    ({"kind": "retrieve", "params": {"class": "tabby", "folder": ".", "style": 0,
                                     "top": 10**9}}, "params.top"),
    ({"kind": "table1", "params": {"folder": ".", "limit": 10**9}}, "params.limit"),
    ({"kind": "patchdb_build", "params": {"photos": ["."], "name": "x", "scales": [1e9]}},
     "params.scales.0"),
    ({"kind": "sheet", "params": {"class": "ladybug", "by": "dropout", "count": 10**9}},
     "params.count"),
]


@pytest.mark.parametrize("body, field", NO_NUMBER_UNBOUNDED)
def test_every_number_has_an_upper_bound(client, body, field):
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(field + ": Input should be less than"), r.text


@pytest.mark.parametrize("path, body, field", [
    ("/v1/jobs", {"kind": "visualize", "params": {"class": True}}, "params.class"),
    ("/v1/jobs", {"kind": "visualize", "params": {"class": "ladybug", "style": True}},
     "params.style"),
    ("/v1/jobs", {"kind": "visualize", "params": {"class": "ladybug", "iters": True}},
     "params.iters"),
    ("/v1/jobs", {"kind": "visualize", "params": {"class": "ladybug", "seed": 1.0}},
     "params.seed"),
    ("/v1/jobs", {"kind": "visualize", "params": {"class": "ladybug", "size": "64"}},
     "params.size"),
    ("/v1/jobs", {"kind": "learn_styles", "params": {"class": "tabby", "data_free": 1}},
     "params.data_free"),
    ("/v1/suggest", {"image": b64_png(noise()), "rect": [0, 0, 8, 8], "top": True}, "top"),
    ("/v1/suggest", {"image": b64_png(noise()), "rect": [0, 0, 8, True]}, "rect.3"),
])
def test_types_are_strict(client, path, body, field):
    """`true` is no number (it was class 1, style 1, one iteration), 1.0 no integer, "64" no
    size: what JSON says is what counts."""
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(field), r.text


@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b'{"kind": "visualize", "params": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001,
    b'{"kind": "visualize", "params": {"class": ' + b"7" * 5_000 + b"}}",
])
def test_json_nested_too_deeply_is_invalid_json(client, body):
    r = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": "the body is not valid JSON (nested too deeply or a number too "
                                  "long)"}


@pytest.mark.parametrize("body, phrase", [
    ({"kind": "learn_styles", "params": {"class": "tabby"}}, "give either a folder of photos"),
    ({"kind": "retrieve", "params": {"class": "tabby", "folder": "."}}, "rank by --style K"),
    ({"kind": "patchdb_build", "params": {}}, "give photos or folders, or --preset"),
    ({"kind": "sheet", "params": {"by": "styles"}}, "--by styles shows a class"),
])
def test_fields_that_do_not_go_together_are_refused_at_submit(client, body, phrase):
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert phrase in r.json()["detail"]


def refusal(client, folder: str, kind: str = "learn_styles") -> str:
    params = {"class": "tabby", "folder": folder}
    if kind == "retrieve":
        params["style"] = 0
    r = client.post("/v1/jobs", json={"kind": kind, "params": params})
    assert r.status_code == 400, r.text
    return r.json()["detail"].replace(folder, "FOLDER")


def test_folders_outside_the_allowed_ones_are_not_allowed_or_not_found(client, tmp_path):
    """The engine of these tests allows the tests' temporary folders (relative paths start
    there): anything else is refused, existing or not, with one message, so an answer never
    tells what exists outside."""
    outside = tempfile.mkdtemp(prefix="stylefill-outside-")  # /tmp, beside the allowed folder
    try:
        messages = {refusal(client, folder, kind)
                    for folder in ("/usr", "/etc", "/nonexistent", outside, "no-such-folder",
                                   "../../../../etc", "a\x00b")
                    for kind in ("learn_styles", "retrieve")}
    finally:
        os.rmdir(outside)
    assert len(messages) == 1, messages
    assert messages.pop().startswith("folder 'FOLDER': not allowed or not found; the engine")


def test_a_folder_with_a_link_out_of_the_allowed_ones_is_refused(client, tmp_path):
    """Readers follow links to files: a link leading out of the allowed folders fails the job
    before anything is read, named relative to the allowed folder."""
    outside = Path(tempfile.mkdtemp(prefix="stylefill-outside-"))
    try:
        noise(40, 40).save(outside / "secret.png")
        folder = tmp_path / "photos"
        folder.mkdir()
        for i in range(3):
            noise(40 + i, 40).save(folder / f"p{i}.png")
        (folder / "leak.png").symlink_to(outside / "secret.png")
        job = submit(client, {"kind": "learn_styles",
                              "params": {"class": "tabby", "folder": str(folder), "topics": 1}})
        final, _ = wait(client, job["id"], lambda s: s["state"] in FINISHED, timeout=120)
    finally:
        (outside / "secret.png").unlink()
        outside.rmdir()
    assert final["state"] == "failed", final
    assert final["message"].startswith(f"folder: {tmp_path.name}/photos/leak.png is a link to a "
                                       "place that is not allowed or not found"), final
    assert str(tmp_path) not in final["message"]


def test_write_paths_stay_inside_the_allowed_folders(client):
    for body in ({"kind": "table1", "params": {"folder": ".", "out": "/etc/stylefill"}},
                 {"kind": "naturalness", "image": b64_png(noise()),
                  "params": {"class": "tabby", "report": "../../../../etc/report.md"}}):
        r = client.post("/v1/jobs", json=body)
        assert r.status_code == 400, r.text
        assert "not allowed or not found" in r.json()["detail"]
