"""Neural pathways: m5 cell windows (where) and m6-7 dropout members, on the real network."""

from __future__ import annotations

import json

import pytest
import torch

from stylefill.cli import main
from stylefill.errors import InputError
from stylefill.masks import cell_mask, cell_window, pathway


def test_named_positions_and_ranges_on_a_7x7_map():
    assert cell_window("top-left", 7) == (slice(0, 3), slice(0, 3))
    assert cell_window("Centre", 7) == (slice(2, 5), slice(2, 5))
    assert cell_window("bottom-right", 7) == (slice(4, 7), slice(4, 7))
    assert cell_window("1:3, 2:6", 7) == (slice(1, 3), slice(2, 6))
    mask = cell_mask("0:1,6:7", 7)
    assert mask.sum() == 1 and mask[0, 6] == 1


@pytest.mark.parametrize("spec", ["middle", "3:3,0:2", "0:8,0:2", "1-3,2-4"])
def test_bad_cell_specs_are_input_errors(spec):
    with pytest.raises(InputError, match="cells"):
        cell_window(spec, 7)


def test_pathway_combines_cells_and_dropout(backbone):
    assert pathway(backbone, 224) is None
    a = pathway(backbone, 224, "top", dropout_seed=5)
    b = pathway(backbone, 224, dropout_seed=5)
    assert a.m5.shape == (7, 7) and a.m5.sum() == 9
    assert torch.equal(a.m7, b.m7) and b.m5 is None
    assert not torch.equal(b.m7, pathway(backbone, 224, dropout_seed=6).m7)


def test_m5_pathway_moves_the_class_gradient_to_its_corner(backbone, photo):
    """Only the open cells pass gradient: the image gradient concentrates where they look."""

    def energy(spec: str) -> tuple[float, float]:
        x = photo.clone().requires_grad_(True)
        masks = pathway(backbone, 224, spec)
        backbone(x, masks).logits[0, 301].backward()
        g = x.grad.abs().sum(1)[0]
        return float(g[:112, :112].sum()), float(g[112:, 112:].sum())

    tl, tl_far = energy("top-left")
    br_far, br = energy("bottom-right")
    assert tl > 3 * tl_far and br > 3 * br_far, (tl, tl_far, br, br_far)


def test_cli_visualize_with_pathway_records_it(tmp_path):
    out, js = tmp_path / "v.png", tmp_path / "v.json"
    assert main(["visualize", "ladybug", "-o", str(out), "--iters", "4", "--cells", "centre",
                 "--dropout-seed", "3", "--json", str(js), "-q"]) == 0
    data = json.loads(js.read_text())
    assert data["cells"] == "centre" and data["dropout_seed"] == 3
    assert main(["visualize", "ladybug", "-o", str(out), "--cells", "9:9,0:1", "-q"]) == 2
