"""Requests resolve their defaults once: the class, the network size, the rules between fields."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stylefill.errors import InputError
from stylefill.operations import (
    InsertRequest,
    InvertRequest,
    LearnStylesRequest,
    RetrieveRequest,
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
