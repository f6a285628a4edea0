"""Class lookup: the forms users type, and helpful errors for the ones that do not exist."""

from __future__ import annotations

import pytest

from stylefill.classes import imagenet_classes, resolve_class
from stylefill.errors import InputError


def test_the_1000_imagenet_classes():
    cats = imagenet_classes()
    assert len(cats) == 1000 and len(set(cats)) == 1000
    assert cats[0] == "tench" and cats[2] == "great white shark" and cats[999] == "toilet tissue"


@pytest.mark.parametrize(
    "query",
    ["great white shark", "Great White Shark", "GREAT WHITE SHARK", "great_white_shark",
     "  great white shark ", "2", 2],
)
def test_resolve_class_forms(query):
    assert resolve_class(query) == (2, "great white shark")


def test_resolve_keeps_the_official_spelling():
    assert resolve_class("loafer") == (630, "Loafer")
    assert resolve_class(999) == (999, "toilet tissue")
    assert resolve_class("0") == (0, "tench")


def test_resolve_against_given_categories():
    assert resolve_class("b", ("a", "b", "c")) == (1, "b")
    with pytest.raises(InputError, match="0..2"):
        resolve_class(3, ("a", "b", "c"))


@pytest.mark.parametrize("query", [1000, "1000", -1, "-1"])
def test_out_of_range_index(query):
    with pytest.raises(InputError, match=r"out of range 0\.\.999"):
        resolve_class(query)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(InputError, match="unknown class 'ladybird'") as info:
        resolve_class("ladybird")
    assert "ladybug" in str(info.value)


def test_partial_name_suggests_classes_containing_it():
    with pytest.raises(InputError) as info:
        resolve_class("shark")
    assert "great white shark" in str(info.value) and "tiger shark" in str(info.value)


def test_hopeless_name_explains_what_to_give():
    with pytest.raises(InputError, match="give a name or an index 0-999"):
        resolve_class("qqqqzzzzxxxx")
