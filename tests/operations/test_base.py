"""Requests resolve their defaults once: the class, the network size, the rules between fields."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from stylefill.errors import InputError
from stylefill.operations import (
    BuildPatchDBRequest,
    InsertRequest,
    InvertRequest,
    LearnStylesRequest,
    RetrieveRequest,
    SheetRequest,
    VisualizeRequest,
)

LADYBUG = 301


def test_class_names_and_indices_resolve_once_in_the_request():
    assert VisualizeRequest(cls="LADYBUG").index == LADYBUG
    assert VisualizeRequest(cls=301).index == VisualizeRequest(cls="301").index == LADYBUG
    with pytest.raises(InputError, match="ladybug"):
        VisualizeRequest(cls="ladybird")


def test_defaults_are_resolved_in_the_request():
    photo = Image.new("RGB", (40, 30))
    req = InvertRequest(image=photo)
    assert (req.size, req.iters, req.seed, req.backbone, req.fit, req.layer) == (
        224, 400, 0, "efficientnet-lite0", "stretch", "block15")
    assert InvertRequest(image=photo, backbone="alexnet").layer == "pool5"
    with pytest.raises(InputError, match="unknown layer 'conv9'.*block2, block4"):
        InvertRequest(image=photo, layer="conv9")
    assert req.params()["size"] == 224 and "image" not in req.params()
    assert InvertRequest(image=photo, backbone="alexnet", size=160).size == 160
    with pytest.raises(InputError, match="unknown backbone 'resnet'"):
        InvertRequest(image=photo, backbone="resnet")


def test_rules_between_fields_are_input_errors(tmp_path):
    photo = Image.new("RGB", (40, 30))
    with pytest.raises(InputError, match="--data-free"):
        LearnStylesRequest(cls="hay")
    with pytest.raises(InputError, match="one of them"):
        RetrieveRequest(folder=str(tmp_path), cls="hay", style=1, like="x.jpg")
    with pytest.raises(InputError, match="30x40|40x30"):
        InsertRequest(image=photo, selection=np.ones((40, 30), bool), cls="hay")
    with pytest.raises(InputError, match="empty"):
        InsertRequest(image=photo, selection=np.zeros((30, 40), bool), cls="hay")


def test_a_preset_database_request_takes_the_presets_settings():
    req = BuildPatchDBRequest(preset="open-photos")
    assert (req.name, req.scales, req.flips, req.patch_px) == ("open-photos", [1.0, 1.5], False, 32)
    assert BuildPatchDBRequest(preset="open-photos", name="mine", flips=True).flips
    own = BuildPatchDBRequest(photos=["a.jpg"], name="mine")
    assert (own.scales, own.flips, own.patch_px) == ([1.0, 1.5, 2.0], True, None)
    for bad in ({}, {"photos": ["a.jpg"], "preset": "open-photos"}, {"photos": ["a.jpg"]}):
        with pytest.raises(InputError):
            BuildPatchDBRequest(**bad)
    with pytest.raises(ValidationError):
        BuildPatchDBRequest(preset="held-out")  # the held-out photos never go into a database


def test_a_layers_sheet_takes_a_photo_where_class_sheets_take_a_class(tmp_path):
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "p.png")
    req = SheetRequest.model_validate({"class": str(tmp_path / "p.png"), "by": "layers"})
    assert req.image.size == (40, 30) and req.cls is None and req.iters == 400
    assert SheetRequest(cls="ladybug", by="cells").iters == 256
    with pytest.raises(InputError, match="give its name"):
        SheetRequest(by="styles")
    with pytest.raises(InputError, match="not a class"):
        SheetRequest(image=Image.new("RGB", (8, 8)), cls="ladybug", by="layers")
