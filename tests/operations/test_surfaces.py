"""Every surface runs the same operation for the same request: the CLI's flags, the HTTP job's
`params` and the Python request are the same fields, and they give the same pixels and metrics
(a non-square photo included)."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from harness import serve_in_thread
from PIL import Image

from stylefill import server
from stylefill.cli import build_parser, main
from stylefill.operations import OPERATIONS, InsertRequest, InvertRequest, VisualizeRequest, run

SURFACE_ONLY = {"output", "layer_file", "json", "quiet", "weights", "mask", "rect", "image", "func",
                "command", "styles_command", "patchdb_command", "eval_command",
                # styles learn --ray (cluster/): options of the run, not of one class's request
                "ray", "all_classes", "classes_file", "force", "compare", "class_threads",
                # patchdb build --ray (cluster/patchdb.py): how the build is sharded
                "shards"}


def _subparser(words: tuple[str, ...]):
    parser = build_parser()
    for word in words:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[word]
    return parser


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_option_is_the_same_field_on_every_surface(name):
    op = OPERATIONS[name]
    options = op.request.option_fields()
    protocol = {info.alias or field for field, info in options.items()}
    cli = _subparser(op.words)
    dests = {a.dest for a in cli._actions if a.dest != "help"} - SURFACE_ONLY
    assert dests == set(options), f"CLI {op.words}: {dests ^ set(options)}"
    flags = {s[2:] for a in cli._actions for s in a.option_strings if s.startswith("--")}
    positional = {a.dest for a in cli._actions if not a.option_strings} - SURFACE_ONLY
    for field, info in options.items():
        assert field in positional or (info.alias or field).replace("_", "-") in flags, field
    http = server.PARAMS.get(name) or server.BODIES[name]
    http_fields = {info.alias or f for f, info in http.model_fields.items()} - {"image", "mask", "rect"}
    assert http_fields == protocol
    assert (name in server.BODIES) == op.immediate


@pytest.fixture(scope="module")
def http():
    yield from serve_in_thread(server.create_app("surfaces-token", background_styles=False), "surfaces-token")


def _b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _http_job(http, body: dict) -> dict:
    with http.client() as c:
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        while (state := c.get(f"/v1/jobs/{job}").json())["state"] not in ("done", "failed",
                                                                          "cancelled"):
            time.sleep(0.05)
        assert state["state"] == "done", state
        return c.get(f"/v1/jobs/{job}/result").json()


def _pixels(png: str | Path) -> np.ndarray:
    data = base64.b64decode(png) if isinstance(png, str) else png.read_bytes()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def _same(cli_json: Path, http_metrics: dict, python_metrics: dict) -> None:
    cli = json.loads(cli_json.read_text())
    for metrics in (cli, http_metrics, python_metrics):
        metrics.pop("seconds", None)
    assert {k: v for k, v in cli.items() if k not in ("output", "layer_file")} == http_metrics
    assert json.loads(json.dumps(python_metrics)) == http_metrics


def test_invert_of_a_non_square_photo_is_the_same_everywhere(http, tmp_path):
    photo = Image.fromarray(skimage.data.chelsea()).resize((256, 160))
    photo.save(tmp_path / "p.png")
    params = {"prior": "tv", "init": "rand", "iters": 4, "seed": 3}
    assert main(["invert", str(tmp_path / "p.png"), "--prior", "tv", "--init", "rand", "--iters",
                 "4", "--seed", "3", "-o", str(tmp_path / "o.png"), "--json",
                 str(tmp_path / "o.json"), "-q"]) == 0
    res = _http_job(http, {"kind": "invert", "image": _b64(photo), "params": params})
    py = run(InvertRequest(image=photo, **params))
    assert res["size"] == [256, 160] and py.image.size == (256, 160)
    assert np.array_equal(_pixels(tmp_path / "o.png"), _pixels(res["png"]))
    assert np.array_equal(np.asarray(py.image.convert("RGBA")), _pixels(res["png"]))
    _same(tmp_path / "o.json", res["metrics"], py.metrics)


def test_visualize_is_the_same_everywhere(http, tmp_path):
    params = {"class": "goldfish", "iters": 4, "size": 64, "seed": 5, "cells": "top",
              "dropout_seed": 2}
    assert main(["visualize", "goldfish", "--iters", "4", "--size", "64", "--seed", "5",
                 "--cells", "top", "--dropout-seed", "2", "-o", str(tmp_path / "v.png"),
                 "--json", str(tmp_path / "v.json"), "-q"]) == 0
    res = _http_job(http, {"kind": "visualize", "params": params})
    py = run(VisualizeRequest(cls="goldfish", iters=4, size=64, seed=5, cells="top", dropout_seed=2))
    assert np.array_equal(_pixels(tmp_path / "v.png"), _pixels(res["png"]))
    assert np.array_equal(np.asarray(py.image.convert("RGBA")), _pixels(res["png"]))
    _same(tmp_path / "v.json", res["metrics"], py.metrics)


def test_insert_is_the_same_everywhere(http, grass_field, tmp_path):
    photo = Image.open(grass_field).convert("RGB")
    rect = (170, 190, 96, 64)
    assert main(["insert", str(grass_field), "--rect", ",".join(map(str, rect)), "--class", "hay",
                 "--iters", "3", "--seed", "1", "-o", str(tmp_path / "i.png"), "--layer",
                 str(tmp_path / "l.png"), "--json", str(tmp_path / "i.json"), "-q"]) == 0
    res = _http_job(http, {"kind": "insert", "image": _b64(photo), "rect": list(rect),
                           "params": {"class": "hay", "iters": 3, "seed": 1}})
    mask = np.zeros((photo.height, photo.width), bool)
    mask[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]] = True
    py = run(InsertRequest(image=photo, selection=mask, cls="hay", iters=3, seed=1))
    assert res["offset"] == list(rect[:2]) and res["size"] == list(rect[2:])
    assert np.array_equal(_pixels(tmp_path / "l.png"), _pixels(res["png"]))
    assert np.array_equal(np.asarray(py.layer), _pixels(res["png"]))
    _same(tmp_path / "i.json", res["metrics"], py.metrics)
