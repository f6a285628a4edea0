"""EfficientNet-Lite0, the default backbone, with its real packaged weights."""

from __future__ import annotations

import pytest
import torch

from stylefill.backbones import load_backbone
from stylefill.backbones.base import Masks, apply_m5
from stylefill.backbones.efficientnet_lite import EfficientNetLite0
from stylefill.classes import imagenet_classes
from stylefill.classification import predict
from stylefill.errors import InputError
from stylefill.images import load_tensor


def test_classifies_imagenet_samples(backbone, foolbox_images):
    """The real weights are loaded and pre-processed correctly: most labels come out top-1
    (17/20 measured; a broken normalisation or weight mapping drops to ~0)."""
    hits = [predict(backbone, load_tensor(path, 224), top=1)[0].index == label
            for path, label in foolbox_images]
    assert sum(hits) >= 15, f"top-1 on {sum(hits)}/20 foolbox samples"


def test_predict_sorts(backbone, foolbox_images):
    path, label = foolbox_images[1]
    top = predict(backbone, load_tensor(path, 224), top=5)
    assert len(top) == 5 and top[0].index == label
    assert [p.prob for p in top] == sorted((p.prob for p in top), reverse=True)
    assert 0.0 < sum(p.prob for p in top) <= 1.0 + 1e-6
    with pytest.raises(InputError, match="top"):
        predict(backbone, load_tensor(path, 224), top=0)


def test_layers(backbone, photo):
    out = backbone(photo)
    assert out.pool5.shape == (1, 1280, 7, 7)
    assert out.fc7.shape == (1, 1280) and out.logits.shape == (1, 1000)
    assert out.fc6 is None and backbone.fc_layers == ("fc7",)
    assert float(out.pool5.min()) >= 0.0 and float(out.pool5.max()) <= 6.0  # ReLU6
    assert float(out.fc7.min()) >= 0.0
    torch.testing.assert_close(out.fc7, out.pool5.mean((2, 3)))
    assert backbone.feature_channels == 1280 and backbone.units("fc7") == 1280
    assert backbone.categories == imagenet_classes()
    assert not backbone.training and not any(p.requires_grad for p in backbone.parameters())


def test_folded_batch_norms_compute_the_packages_network(backbone, photo):
    """The backbone runs with its batch norms folded into the convs, channels last; its logits
    and its gradient w.r.t. the image (what every optimisation follows) are the package's
    unfolded network's to float rounding."""
    from efficientnet_lite_pytorch import EfficientNet

    from stylefill.backbones.efficientnet_lite import packaged_weights
    from stylefill.backbones.weights import load_into, load_state_dict

    package = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    load_into(package, load_state_dict(packaged_weights()), "efficientnet-lite0")
    package.eval().requires_grad_(False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())

    def logits_and_grad(fn):
        x = photo.clone().requires_grad_(True)
        logits = fn(x)
        logits[0, 281].backward()
        return logits.detach(), x.grad

    ours, our_grad = logits_and_grad(lambda x: backbone(x).logits)
    theirs, their_grad = logits_and_grad(lambda x: package(backbone.normalize(x)))
    torch.testing.assert_close(ours, theirs, atol=1e-3, rtol=1e-4)
    assert float((our_grad - their_grad).norm() / their_grad.norm()) < 1e-2


@pytest.mark.parametrize("side", [224, 113])
def test_padding_inside_the_convs_computes_the_same_function_to_the_bit(photo, side):
    """`pad_inside`: stride-1 convs pad inside the conv, not by an F.pad before it (what makes
    a Lite0 pass a fifth faster): the logits and the input gradient are the same to the bit,
    at the network's size and at an odd one; only strided convs keep the package's padding."""
    import copy

    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    from stylefill.backbones.efficientnet_lite import fold_batch_norms, packaged_weights, pad_inside
    from stylefill.backbones.weights import load_into, load_state_dict

    package = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    load_into(package, load_state_dict(packaged_weights()), "efficientnet-lite0")
    package.eval().requires_grad_(False)
    fold_batch_norms(package)
    inside = copy.deepcopy(package)
    pad_inside(inside)
    kept = [m for m in inside.modules() if isinstance(m, Conv2dDynamicSamePadding)]
    assert kept and all(tuple(m.stride) == (2, 2) for m in kept)

    def logits_and_grad(net):
        x = torch.nn.functional.interpolate(photo, size=side, mode="bilinear").requires_grad_(True)
        logits = net(x)
        logits[0, 281].backward()
        return logits.detach(), x.grad

    (ours, our_grad), (theirs, their_grad) = logits_and_grad(inside), logits_and_grad(package)
    assert torch.equal(ours, theirs) and torch.equal(our_grad, their_grad)


def test_map_size_follows_the_input(backbone):
    assert backbone.map_size(224) == 7
    assert backbone.map_size(320) == 10
    out = backbone(torch.rand(1, 3, 320, 320))
    assert out.pool5.shape == (1, 1280, 10, 10) and out.logits.shape == (1, 1000)


def test_normalize_maps_unit_range_to_the_networks_range(backbone):
    x = torch.tensor([0.0, 127 / 255, 1.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(backbone.normalize(x).flatten(), torch.tensor([-127, 0, 128]) / 128)


def test_m7_mask_closes_units(backbone, photo):
    m7 = torch.ones(1280)
    m7[::3] = 0.0
    clean = backbone(photo)
    out = backbone(photo, Masks(m7=m7))
    assert bool((out.fc7[:, ::3] == 0).all())
    torch.testing.assert_close(out.fc7[:, m7 == 1], clean.fc7[:, m7 == 1])
    assert float(clean.fc7[:, ::3].abs().sum()) > 0  # the mask really removed something
    torch.testing.assert_close(out.logits, backbone.net._fc(clean.fc7 * m7))


def test_m5_mask_blocks_the_gradient_of_closed_cells(backbone, photo):
    """A closed cell ("where") contributes nothing: its pool5 gradient is exactly zero."""
    m5 = torch.ones(7, 7)
    m5[:, :3] = 0.0
    masks = Masks(m5=m5)
    pool5 = backbone.features(backbone.normalize(photo)).detach().requires_grad_(True)
    out = backbone.head(apply_m5(pool5, m5), masks)
    torch.testing.assert_close(out.logits, backbone(photo, masks).logits)
    out.logits[0, 281].backward()
    grad = pool5.grad[0].abs().sum(0)
    assert bool((grad[:, :3] == 0).all())
    assert bool((grad[:, 3:] > 0).all())


def test_m5_single_open_cell(backbone, photo):
    """Only one cell open: fc7 is that cell's feature / 49, and the logits change."""
    m5 = torch.zeros(7, 7)
    m5[3, 4] = 1.0
    clean = backbone(photo)
    one = backbone(photo, Masks(m5=m5))
    torch.testing.assert_close(one.fc7, clean.pool5[:, :, 3, 4] / 49)
    assert float((one.logits - clean.logits).abs().max()) > 0.1
    with pytest.raises(ValueError, match="m5 mask"):
        backbone(photo, Masks(m5=torch.ones(6, 6)))


def test_dropout_masks(backbone, photo):
    a, again, b = backbone.dropout_masks(1), backbone.dropout_masks(1), backbone.dropout_masks(2)
    assert a.m6 is None and a.m5 is None
    assert a.m7.shape == (1280,)
    torch.testing.assert_close(a.m7, again.m7, rtol=0, atol=0)
    assert not torch.equal(a.m7, b.m7)
    assert set(a.m7.unique().tolist()) == {0.0, 1.0 / (1.0 - backbone.dropout_rate)} == {0.0, 2.0}
    assert 0.4 < float((a.m7 > 0).float().mean()) < 0.6
    out = backbone(photo, a)
    assert bool((out.fc7[:, a.m7 == 0] == 0).all())


def test_weights_of_another_architecture_name_the_backbone(tmp_path):
    from torchvision.models import mobilenet_v3_small

    path = tmp_path / "other.pth"
    torch.save(mobilenet_v3_small(weights=None).state_dict(), path)
    with pytest.raises(InputError, match="efficientnet-lite0"):
        EfficientNetLite0(imagenet_classes(), path)
    with pytest.raises(InputError, match="efficientnet-lite0"):
        load_backbone("efficientnet-lite0", weights=path)


def test_non_weights_file_names_the_backbone(tmp_path):
    """As for AlexNet/VGG16: the message must say which backbone the file was meant for."""
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(InputError, match="efficientnet-lite0.*not a PyTorch weights file"):
        load_backbone("efficientnet-lite0", weights=path)
    with pytest.raises(InputError, match="efficientnet-lite0.*not found"):
        load_backbone("efficientnet-lite0", weights=tmp_path / "missing.pth")


def test_unknown_backbone():
    with pytest.raises(InputError, match="efficientnet-lite0, alexnet, vgg16"):
        load_backbone("resnet50")


def test_load_backbone_is_cached(backbone):
    assert load_backbone() is backbone


def test_named_stages_are_tapped_without_changing_the_pass(backbone, photo):
    """Tapping layers returns the blocks at strides 4, 8, 16 and 32 and leaves pool5 exactly
    as the package's own extract_features makes it."""
    assert backbone.stages == ("block2", "block4", "block10", "block15")
    assert backbone.layers[-4:] == ("block15", "pool5", "fc7", "logits")
    with torch.no_grad():
        out = backbone(photo, taps=backbone.stages)
        plain = backbone.net.extract_features(backbone.normalize(photo))
    assert torch.equal(out.pool5, plain)
    shapes = {name: tuple(out.layer(name).shape) for name in backbone.stages}
    assert shapes == {"block2": (1, 24, 56, 56), "block4": (1, 40, 28, 28),
                      "block10": (1, 112, 14, 14), "block15": (1, 320, 7, 7)}
    with pytest.raises(InputError, match="block99.*choose one of: block2, block4"):
        backbone(photo, taps=("block99",))
    with pytest.raises(KeyError, match="not tapped"):
        backbone(photo).layer("block4")
