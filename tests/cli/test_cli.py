"""The CLI surface other tools rely on: commands, JSON metrics, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.models import alexnet

from stylefill import atomic
from stylefill.cli import main


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh interpreter, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "stylefill", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_classify_json(foolbox_images, tmp_path):
    path, label = foolbox_images[0]
    out = tmp_path / "c.json"
    proc = run_cli("classify", str(path), "--top", "3", "--json", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["backbone"] == "efficientnet-lite0"
    assert [set(t) for t in data["top"]] == [{"class", "index", "prob"}] * 3
    assert data["top"][0]["index"] == label
    assert data["top"][0]["prob"] >= data["top"][1]["prob"]


def test_invert_and_visualize_write_png_and_metrics(foolbox_images, tmp_path):
    path, _ = foolbox_images[1]
    png, js = tmp_path / "inv.png", tmp_path / "inv.json"
    assert main(["invert", str(path), "-o", str(png), "--iters", "15", "--json", str(js),
                 "-q"]) == 0
    data = json.loads(js.read_text())
    assert {"relative_l2", "feature_error", "seconds"} <= set(data)
    assert 0 < data["relative_l2"] < 2 and 0 <= data["feature_error"] < 2
    assert Image.open(png).size == Image.open(path).size  # the whole photo, stretched back
    assert data["fit"] == "stretch" and data["size"] == 224 and data["iters"] == 15
    assert main(["invert", str(path), "-o", str(png), "--iters", "2", "--fit", "crop", "-q"]) == 0
    assert Image.open(png).size == (224, 224)  # the network's centre square

    png, js = tmp_path / "vis.png", tmp_path / "vis.json"
    assert main(["visualize", "LadyBug", "-o", str(png), "--iters", "10", "--size", "160",
                 "--json", str(js), "-q"]) == 0
    data = json.loads(js.read_text())
    assert data["class"] == "ladybug" and data["index"] == 301
    assert {"prob", "top1", "seconds"} <= set(data)
    assert Image.open(png).size == (160, 160)


def test_patchdb_build_and_list(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path / "models"))
    photo = tmp_path / "photos" / "p.png"
    photo.parent.mkdir()
    import skimage.data

    Image.fromarray(skimage.data.coffee()).save(photo)
    (photo.parent / "notes.txt").write_text("not a photo")
    js = tmp_path / "db.json"
    assert main(["patchdb", "build", str(photo.parent), "--name", "mine", "--scales", "1",
                 "--json", str(js), "-q"]) == 0
    data = json.loads(js.read_text())
    assert data["count"] > 0 and data["images"] == [str(photo)]
    js2 = tmp_path / "list.json"
    assert main(["patchdb", "list", "--json", str(js2), "-q"]) == 0
    assert [d["name"] for d in json.loads(js2.read_text())["databases"]] == ["mine"]
    mine = tmp_path / "models" / "patchdb" / "efficientnet-lite0" / "mine"
    (atomic.current(mine) / "meta.json").write_text("{broken")
    assert main(["patchdb", "list", "--json", str(js2), "-q"]) == 0
    assert json.loads(js2.read_text())["databases"][0]["damaged"] is True


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    text = tmp_path / "notes.png"
    text.write_text("hello")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(good, quality=95)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    wrong = tmp_path / "alexnet.pth"
    torch.save(alexnet().state_dict(), wrong)
    out = str(tmp_path / "o.png")
    return {
        "missing": (["classify", str(tmp_path / "nope.jpg")], "no such file"),
        "non-image": (["classify", str(text)], "not an image"),
        "truncated": (["invert", str(truncated), "-o", out], "truncated"),
        "unknown class": (["visualize", "ladybird", "-o", out], "ladybug"),
        "unknown backbone": (["classify", str(good), "--backbone", "resnet"], "unknown backbone"),
        "wrong weights": (["classify", str(good), "--weights", str(wrong)], "efficientnet-lite0"),
        "unknown layer": (["invert", str(good), "--layer", "conv5", "-o", out],
                          "choose one of: block2, block4, block10, block15, pool5"),
        "layers sheet of a class": (["sheet", "ladybug", "--by", "layers", "-o", out],
                                    "ladybug"),
    }


@pytest.mark.parametrize("case", ["missing", "non-image", "truncated", "unknown class",
                                  "unknown backbone", "wrong weights", "unknown layer",
                                  "layers sheet of a class"])
def test_bad_input_one_line_exit_2(case, tmp_path, capsys):
    argv, expected = _bad_inputs(tmp_path)[case]
    assert main(argv + ["-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("stylefill: error:") and expected in err


def test_backbones_lists_the_layers_invert_takes(tmp_path, capsys):
    assert main(["backbones", "--json", str(tmp_path / "b.json")]) == 0
    listed = {b["name"]: b["layers"] for b in json.loads((tmp_path / "b.json").read_text())["backbones"]}
    assert listed["efficientnet-lite0"][:5] == ["block2", "block4", "block10", "block15", "pool5"]
    assert listed["vgg16"][0] == "conv1_1" and "pool5" in listed["alexnet"]
    assert "layers: block2, block4" in capsys.readouterr().out


def test_console_script_reports_errors_with_exit_2(tmp_path):
    proc = run_cli("classify", str(tmp_path / "missing.png"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("stylefill: error:")
