"""The named photo sets: what they list, and that the held-out set stays out of databases."""

from __future__ import annotations

import pytest
from debian_files import HELD_OUT

from stylefill import photo_sets
from stylefill.errors import InputError


def _keys(name: str) -> set[tuple[str, str]]:
    return {(r["package"], r["path"].lstrip("/")) for r in photo_sets.listing(name)}


def test_the_sets_are_disjoint_named_and_licensed():
    held_out, database = _keys("held-out"), _keys("open-photos")
    assert len(held_out) == 138 and len(database) == 405
    assert not held_out & database
    for name in photo_sets.SETS:
        for row in photo_sets.listing(name):
            assert row["licence"] and row["version"] and int(row["width"]) >= 100
    assert "held-out" not in photo_sets.DATABASE_SETS


def test_the_ci_photos_are_held_out():
    inner = {"kphotoalbum": "usr/share/kphotoalbum/demo", "palapeli-data":
             "usr/share/palapeli/collection", "tuxpaint-data": "usr/share/tuxpaint/templates"}
    held_out = _keys("held-out")
    for package, name in HELD_OUT:
        assert (package, f"{inner[package]}/{name}") in held_out


def test_unknown_set_is_an_input_error():
    with pytest.raises(InputError, match="held-out, open-photos"):
        photo_sets.listing("imagenet")
