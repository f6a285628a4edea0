"""How natural a result is: a real photo and an adversarial image told apart by the judge
network and the photo statistics, whole images and selections, through the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from stylefill.classification import TRANSFORMS
from stylefill.cli import main
from stylefill.images import to_pil
from stylefill.judge import load_judge
from stylefill.naturalness import naturalness
from stylefill.optvis import recipes

STRAWBERRY = 949
LADYBUG = 301
GOLDFISH = 1


def test_a_real_photo_is_recognised_by_both_networks_and_measures_as_a_photo(backbone,
                                                                             foolbox_images):
    path, label = foolbox_images[4]
    assert label == STRAWBERRY
    found = naturalness(backbone, load_judge(), Image.open(path), STRAWBERRY)
    print(found.markdown())
    assert list(found.solver) == list(found.judge) == list(TRANSFORMS)
    assert found.judge_top1 == "strawberry" and found.view == "image"
    assert found.solver["clean"] > 0.5 and found.judge["clean"] > 0.3
    assert 0.2 <= found.image.high_frequency_share <= 0.5 and 1.0 <= found.image.slope <= 2.0
    assert found.fill is None and found.surroundings is None


def test_adversarial_pixels_fool_the_solver_but_not_the_judge(backbone):
    """Unregularised pixel ascent: the solver is sure, the judge is not, and the spectrum is
    flatter than any photo's."""
    noisy = replace(recipes.VisualizationSettings(), param="pixel", robust=False, iters=40, lr=0.02)
    res = recipes.visualize(backbone, LADYBUG, settings=noisy, seed=0)
    found = naturalness(backbone, load_judge(), to_pil(res.image), LADYBUG)
    print(found.markdown())
    assert found.solver["clean"] >= 0.9
    assert found.judge["clean"] < 0.1 and found.judge_top1 != "ladybug"
    assert found.image.high_frequency_share > 0.5


def test_default_visualize_is_seen_by_the_judge_and_measures_as_a_photo(backbone):
    """The issue's bar for a class visualisation, on goldfish: p >= 0.9 clean, >= 0.5 under
    every transform, the judge's top-1, and a photo's spectrum; Lucid's Fourier basis with
    its usual views (the previous default) is recognised too, but is noisier than a photo.
    (Ladybug and lemon are the two of the ten classes the judge misses: docs/evaluation.md.)"""
    judge = load_judge()
    found = naturalness(backbone, judge, to_pil(recipes.visualize(backbone, GOLDFISH).image), GOLDFISH)
    print(found.markdown())
    assert found.solver["clean"] >= 0.9 and min(found.solver.values()) >= 0.5, found.solver
    assert found.judge_top1 == "goldfish"
    assert found.image.high_frequency_share <= 0.5 and found.image.slope >= 1.0, found.image
    lucid = replace(recipes.VisualizationSettings(), param="fourier", degrade=False)
    before = naturalness(backbone, judge, to_pil(recipes.visualize(backbone, GOLDFISH, settings=lucid).image),
                         GOLDFISH)
    assert before.image.high_frequency_share > 0.5 and before.image.slope < 1.0, before.image


def test_a_noisy_fill_stands_out_from_the_photo_around_it(backbone, foolbox_images):
    photo = np.asarray(Image.open(foolbox_images[5][0]).convert("RGB")).copy()
    selection = np.zeros(photo.shape[:2], bool)
    selection[80:144, 80:144] = True
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    edited = photo.copy()
    edited[selection] = noise.reshape(-1, 3)
    clean = naturalness(backbone, load_judge(), Image.fromarray(photo), 853, selection)
    noisy = naturalness(backbone, load_judge(), Image.fromarray(edited), 853, selection)
    assert clean.view.startswith("context crop 128x128")
    assert abs(clean.fill.high_frequency_share - clean.surroundings.high_frequency_share) < 0.15
    assert noisy.fill.high_frequency_share > noisy.surroundings.high_frequency_share + 0.3
    assert noisy.surroundings == clean.surroundings  # the tiles around it are untouched
    darker = photo.copy()
    darker[selection] //= 2
    dark = naturalness(backbone, load_judge(), Image.fromarray(darker), 853, selection)
    assert dark.fill.luminance == pytest.approx(clean.fill.luminance / 2, abs=0.01)
    assert dark.surroundings.luminance == clean.surroundings.luminance


def test_an_object_pasted_into_a_photo_is_the_class_alone_too(backbone, foolbox_images):
    """`alone`: an edit's object by itself (its selection's box, as modify reads it). A photo of
    a strawberry pasted into a thatched roof is a strawberry alone as well; the roof's own
    pixels there are not (measured: judge 0.16 and Lite0 0.50 against under 0.01)."""
    roof = np.asarray(Image.open(foolbox_images[5][0]).convert("RGB")).copy()
    strawberry_path, strawberry = foolbox_images[4]
    selection = np.zeros(roof.shape[:2], bool)
    selection[62:162, 62:162] = True
    pasted = roof.copy()
    berry = Image.open(strawberry_path).convert("RGB").resize((100, 100))
    pasted[selection] = np.asarray(berry).reshape(-1, 3)
    judge = load_judge()
    before = naturalness(backbone, judge, Image.fromarray(roof), strawberry, selection)
    after = naturalness(backbone, judge, Image.fromarray(pasted), strawberry, selection)
    assert after.alone["judge_top1"] == "strawberry", after.alone
    assert after.alone["judge"] > 10 * before.alone["judge"], (after.alone, before.alone)
    assert after.alone["solver"] > 10 * before.alone["solver"], (after.alone, before.alone)
    assert "The object alone" in after.markdown()
    assert naturalness(backbone, judge, Image.fromarray(pasted), strawberry).alone is None


def test_cli_writes_json_and_markdown_and_refuses_bad_input(foolbox_images, tmp_path, capsys):
    path = str(foolbox_images[4][0])
    report, js = tmp_path / "n.md", tmp_path / "n.json"
    assert main(["eval", "naturalness", path, "--class", "strawberry", "--rect", "50,50,100,80",
                 "-o", str(report), "--json", str(js), "-q"]) == 0
    data = json.loads(js.read_text())
    assert data["judge_network"] == "efficientnet-lite2" and data["class"] == "strawberry"
    assert set(data["solver"]) == set(TRANSFORMS) and data["fill"]["high_frequency_share"] > 0
    assert "| judge |" in report.read_text() and "| surroundings |" in report.read_text()
    assert main(["eval", "naturalness", path, "--class", "no such thing", "-q"]) == 2
    assert main(["eval", "naturalness", path, "--class", "strawberry", "--rect", "0,0,0,0",
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") >= 2 and "Traceback" not in err
