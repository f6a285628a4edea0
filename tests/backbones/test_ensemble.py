"""backbones.Ensemble: insert's class evidence under Lite0 and Lite1 at once (issue 14)."""

from __future__ import annotations

import torch

from stylefill.backbones import Ensemble, Masks, load_second_network
from stylefill.backbones.ensemble import _cells
from stylefill.classification import predict
from stylefill.images import load_tensor


def test_lite1_has_real_imagenet_weights(foolbox_images):
    """The second network is a trained classifier of its own (a broken weight mapping or
    normalisation drops to ~0 of 20), not Lite0 again."""
    lite1 = load_second_network()
    assert lite1.name == "efficientnet-lite1" and lite1.input_size == 240
    hits = [predict(lite1, load_tensor(path, 240), top=1)[0].index == label
            for path, label in foolbox_images]
    assert sum(hits) >= 15, f"top-1 on {sum(hits)}/20 foolbox samples"


def test_logits_are_the_mean_and_the_style_reaches_the_first_network_only(backbone, photo):
    lite1 = load_second_network()
    m5 = torch.zeros(7, 7)
    m5[2:5, 1:4] = 1.0
    m7 = (torch.arange(1280) % 3 == 0).float()  # a style pathway: a third of fc7
    out = Ensemble(backbone, lite1)(photo, Masks(m5=m5, m7=m7))
    first = backbone(photo, Masks(m5=m5, m7=m7))
    second = lite1(photo, Masks(m5=m5))
    assert torch.allclose(out.logits, (first.logits + second.logits) / 2, atol=1e-5)
    assert torch.equal(out.fc7, first.fc7) and torch.equal(out.pool5, first.pool5)
    # The m7 pathway is Lite0's units: Lite1 sees the cells, not the style.
    styled = lite1(photo, Masks(m5=m5, m7=m7))
    assert not torch.allclose(out.logits, (first.logits + styled.logits) / 2, atol=1e-3)


def test_gradients_reach_the_image_through_both_networks(backbone, photo):
    lite1 = load_second_network()
    x = photo.clone().requires_grad_(True)
    Ensemble(backbone, lite1)(x).logits[0, 301].backward()
    g_both = x.grad.clone()
    x.grad = None
    backbone(x).logits[0, 301].backward()
    assert g_both.abs().sum() > 0 and not torch.allclose(g_both, x.grad / 2, atol=1e-7)


def test_m5_is_resized_for_a_map_of_another_size():
    m5 = torch.zeros(7, 7)
    m5[3, 3] = 1.0
    assert _cells(m5, 7) is m5 and _cells(None, 8) is None
    big = _cells(m5, 14)
    assert big.shape == (1, 1, 14, 14) and big.sum() == 4 and big[0, 0, 6:8, 6:8].all()
