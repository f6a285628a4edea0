"""How visibly two thumbnails differ (stylefill/looks.py), on real photos: a photo and a slight
jitter of it are near-duplicates, two different photos never are, and edits a person sees at a
glance cross the threshold while ones nobody sees do not (numbers: docs/styles.md)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import skimage.data
from harness import slight_jitter
from PIL import Image, ImageEnhance, ImageFilter

from stylefill import looks


@pytest.fixture(scope="module")
def photos(foolbox_images) -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p, _label in foolbox_images]


def test_a_photo_and_its_jitter_are_alike_two_photos_are_not(photos):
    rnd = random.Random(0)
    same = [looks.difference(looks.look(p), looks.look(slight_jitter(p, rnd))).distance for p in photos]
    shown = [looks.look(p) for p in photos]
    other = [looks.difference(a, b).distance for a, b in itertools.combinations(shown, 2)]
    assert len(other) == 190
    assert max(same) < 0.8 and min(other) > 1.2, (max(same), min(other))


@pytest.mark.parametrize("edit, seen", [
    (lambda i: ImageEnhance.Brightness(i).enhance(1.04), False),
    (lambda i: i.filter(ImageFilter.GaussianBlur(0.7)), False),
    (lambda i: i.crop((4, 4, i.width, i.height)).resize(i.size), False),
    (lambda i: ImageEnhance.Brightness(i).enhance(1.25), True),
    (lambda i: ImageEnhance.Contrast(i).enhance(0.6), True),
    (lambda i: ImageEnhance.Color(i).enhance(0.5), True),
])
def test_edits_seen_at_a_glance_cross_the_threshold(edit, seen):
    coffee = Image.fromarray(skimage.data.coffee())
    d = looks.difference(looks.look(coffee), looks.look(edit(coffee)))
    assert (d.distance >= 1) == seen, d


def test_spread_orders_far_apart_first_and_groups_near_duplicates(photos):
    rnd = random.Random(1)
    a, b = photos[0], photos[5]
    shown = [looks.look(x) for x in (a, slight_jitter(a, rnd), b, slight_jitter(b, rnd),
                                     slight_jitter(a, rnd))]
    s = looks.spread(shown)
    assert s.order[:2] == [0, 2] and s.distinct == 2            # one of each photo first
    assert s.looks_like == [None, 0, None, 2, 0]
    assert s.nearest[2] == 3 and s.distance[2] < 1 and s.distance[0] < 1
    d = looks.distances(shown)
    assert np.allclose(d, d.T) and (np.diag(d) == 0).all()
    gaps = [min(d[i, j] for j in s.order[:k]) for k, i in enumerate(s.order) if k]
    assert gaps == sorted(gaps, reverse=True)                   # each next one is nearer
    one = looks.spread(shown[:1])
    assert one.order == [0] and one.nearest == [None] and one.distinct == 1
