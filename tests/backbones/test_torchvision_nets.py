"""AlexNet / VGG16 backbones against torchvision's own forward pass, on weights written here."""

from __future__ import annotations

import socket

import pytest
import torch
from torch import nn
from torchvision.models import alexnet, vgg16

from stylefill.backbones.base import Masks
from stylefill.backbones.torchvision_nets import build_torchvision_backbone, conv_geometry
from stylefill.errors import InputError

ARCHITECTURES = {"alexnet": alexnet, "vgg16": vgg16}
POOL5 = {"alexnet": (256, 6, 6), "vgg16": (512, 7, 7)}
RECEPTIVE_FIELD = {"alexnet": 195, "vgg16": 212}


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """Build each backbone once: (backbone, torchvision model, weights path) on random weights."""
    made = {}

    def build(name):
        if name not in made:
            torch.manual_seed(0)
            reference = ARCHITECTURES[name](weights=None).eval()
            path = tmp_path_factory.mktemp(name) / f"{name}.pth"
            torch.save(reference.state_dict(), path)
            made[name] = build_torchvision_backbone(name, path), reference, path
        return made[name]

    return build


@pytest.fixture(scope="module", params=["alexnet", "vgg16"])
def built(request, make):
    return make(request.param)


@pytest.fixture(scope="module")
def alex(make):
    backbone, _, path = make("alexnet")
    return backbone, path


def test_layer_shapes(built):
    backbone, _, _ = built
    out = backbone(torch.rand(1, 3, 224, 224))
    assert out.pool5.shape == (1, *POOL5[backbone.name])
    assert out.fc6.shape == out.fc7.shape == (1, 4096)
    assert out.logits.shape == (1, 1000)
    assert (out.pool5 >= 0).all() and (out.fc7 >= 0).all()
    assert len(backbone.categories) == 1000
    assert not any(p.requires_grad for p in backbone.parameters())
    assert not backbone.training


STAGES = {
    "alexnet": ("conv1", "conv2", "conv3", "conv4", "conv5"),
    "vgg16": ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"),
}


def test_stages_are_the_papers_conv_layers(built):
    backbone, _, _ = built
    assert backbone.stages == STAGES[backbone.name]
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        out = backbone(x, taps=(backbone.stages[0], backbone.stages[-1]))
        plain = backbone(x)
    assert torch.equal(out.pool5, plain.pool5)
    first, last = out.layer(backbone.stages[0]), out.layer(backbone.stages[-1])
    assert (first >= 0).all() and first.shape[-1] > last.shape[-1] > out.pool5.shape[-1]


def test_logits_match_torchvision(built):
    backbone, reference, _ = built
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        ours = backbone(x).logits
        theirs = reference(backbone.normalize(x))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_normalize_is_imagenet_mean_std(built):
    backbone, _, _ = built
    grey = torch.full((1, 3, 2, 2), 0.5)
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(backbone.normalize(grey)[0, :, 0, 0], expected)


def test_receptive_field_and_stride(built):
    backbone, reference, _ = built
    assert backbone.receptive_field == RECEPTIVE_FIELD[backbone.name]
    assert backbone.stride == 32
    assert conv_geometry(reference.features) == (RECEPTIVE_FIELD[backbone.name], 32)


def test_conv_geometry_counts_dilation_and_ignores_other_layers():
    layers = [nn.Conv2d(1, 1, 3, dilation=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)]
    assert conv_geometry(layers) == (1 + 4 + 1 + 2 * 2, 2)


def test_other_input_sizes_keep_true_stride(alex):
    backbone, _ = alex
    out = backbone(torch.rand(1, 3, 320, 320))
    assert out.pool5.shape[-2:] == (9, 9)
    assert out.logits.shape == (1, 1000)


def test_m7_mask_closes_units(alex):
    backbone, _ = alex
    m7 = torch.ones(4096)
    m7[:100] = 0.0
    out = backbone(torch.rand(1, 3, 224, 224), Masks(m7=m7))
    assert (out.fc7[:, :100] == 0).all()
    open_fc7 = backbone(torch.rand(1, 3, 224, 224)).fc7
    assert (open_fc7[:, 100:] > 0).any()


def test_m5_closed_leaves_only_the_bias_path(alex):
    backbone, _ = alex
    x = torch.rand(1, 3, 224, 224, requires_grad=True)
    out = backbone(x, Masks(m5=torch.zeros(6, 6)))
    fc6 = torch.relu(backbone.fc6.bias)
    fc7 = torch.relu(backbone.fc7(fc6))
    torch.testing.assert_close(out.logits[0], backbone.fc8(fc7), atol=1e-5, rtol=1e-5)
    out.logits[0, 3].backward()
    assert x.grad is not None and (x.grad == 0).all()


def test_dropout_masks_cover_fc6_and_fc7(alex):
    backbone, _ = alex
    masks = backbone.dropout_masks(seed=3)
    assert masks.m6.shape == masks.m7.shape == (4096,)
    assert set(masks.m6.unique().tolist()) == {0.0, 2.0}
    out = backbone(torch.rand(1, 3, 224, 224), masks)
    assert (out.fc7[:, masks.m7 == 0] == 0).all()


def test_weights_of_another_architecture_name_the_backbone(alex):
    _, alexnet_path = alex
    with pytest.raises(InputError, match="vgg16"):
        build_torchvision_backbone("vgg16", alexnet_path)


def test_non_weights_file_is_an_input_error(tmp_path):
    bogus = tmp_path / "notes.pth"
    bogus.write_text("not a checkpoint")
    with pytest.raises(InputError, match="alexnet.*not a PyTorch weights file"):
        build_torchvision_backbone("alexnet", bogus)
    with pytest.raises(InputError, match="not found"):
        build_torchvision_backbone("alexnet", tmp_path / "missing.pth")


def test_unknown_name():
    with pytest.raises(InputError, match="alexnet, vgg16"):
        build_torchvision_backbone("resnet50", None)


def test_default_weights_come_from_the_cache(alex, tmp_path, monkeypatch):
    _, path = alex
    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))
    cached = tmp_path / "weights" / "alexnet-owt-7be5be79.pth"
    cached.parent.mkdir()
    cached.write_bytes(path.read_bytes())
    assert build_torchvision_backbone("alexnet", None).name == "alexnet"


def test_missing_weights_without_network_say_what_to_do(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STYLEFILL_MODELS", str(tmp_path))
    monkeypatch.setenv("STYLEFILL_WEIGHTS_URL_ALEXNET", f"http://127.0.0.1:{port}/alexnet.pth")
    with pytest.raises(InputError) as info:
        build_torchvision_backbone("alexnet", None)
    message = str(info.value)
    assert "\n" not in message
    assert "--weights FILE" in message
    assert str(tmp_path / "weights" / "alexnet-owt-7be5be79.pth") in message
