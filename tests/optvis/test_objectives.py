"""Objectives: their gradients through the real network, and their algebra."""

from __future__ import annotations

import copy

import pytest
import torch

from stylefill.backbones.base import Outputs
from stylefill.optvis import objectives as obj
from stylefill.optvis.objectives import Context

EPS = 1e-5  # in [0, 1] pixel units; small enough that ReLU6 kinks are rarely crossed in float64


@pytest.fixture(scope="module")
def net64(backbone):
    """A float64 copy of the real backbone, so finite differences are accurate."""
    return copy.deepcopy(backbone).double()


@pytest.fixture(scope="module")
def images64():
    """Two small random images (pool5 is 2x2 at 64 px): a start point and a target."""
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(1, 3, 64, 64, generator=gen, dtype=torch.float64) for _ in range(2)]


def _value(objective, net, image):
    return objective(Context(image=image, outputs=net(image), reg_image=image))


def _check_directional_derivatives(objective, net, x, directions=3):
    """Autograd's <grad, d> must match the central difference along random unit directions d."""
    xg = x.clone().requires_grad_(True)
    _value(objective, net, xg).backward()
    grad = xg.grad
    gen = torch.Generator().manual_seed(1)
    for _ in range(directions):
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        d /= d.norm()
        with torch.no_grad():
            numeric = (_value(objective, net, x + EPS * d) - _value(objective, net, x - EPS * d)) / (
                2 * EPS
            )
        analytic = (grad * d).sum()
        assert analytic.abs() > 1e-4 * grad.norm(), "direction nearly orthogonal to the gradient"
        torch.testing.assert_close(analytic, numeric, rtol=1e-3, atol=1e-7 * float(grad.norm()))


def test_feature_inversion_gradient_matches_finite_differences(net64, images64):
    x, other = images64
    with torch.no_grad():
        target = net64(other).pool5
    assert target.shape == (1, 1280, 2, 2)
    _check_directional_derivatives(obj.feature_inversion(target, "pool5"), net64, x)


def test_class_score_gradient_matches_finite_differences(net64, images64):
    x, _ = images64
    _check_directional_derivatives(obj.class_score(281), net64, x)


def _outputs(pool5: torch.Tensor) -> Outputs:
    return Outputs(pool5=pool5, fc7=pool5.mean((2, 3)), logits=torch.zeros(1, 1000))


def test_feature_inversion_is_the_relative_error():
    """0 at the target, 1 for an all-zero map, ||d||^2/||t||^2 in between (paper Eq. 1)."""
    target = torch.rand(1, 8, 3, 3) + 0.1
    loss = obj.feature_inversion(target)
    image = torch.zeros(1, 3, 4, 4)
    at = lambda p5: float(loss(Context(image, _outputs(p5), image)))  # noqa: E731
    assert at(target) == 0.0
    assert at(torch.zeros_like(target)) == pytest.approx(1.0)
    delta = torch.rand_like(target)
    assert at(target + delta) == pytest.approx(float(delta.pow(2).sum() / target.pow(2).sum()))


def test_feature_inversion_reads_the_named_layer():
    target = torch.rand(1, 8)
    loss = obj.feature_inversion(target, "fc7")
    image = torch.zeros(1, 3, 4, 4)
    outs = Outputs(pool5=torch.zeros(1, 8, 2, 2), fc7=target.clone(), logits=torch.zeros(1, 10))
    assert float(loss(Context(image, outs, image))) == 0.0
    with pytest.raises(KeyError, match="fc6"):
        obj.feature_inversion(target, "fc6")(Context(image, outs, image))


@pytest.fixture(scope="module")
def ctx(backbone, photo):
    """A context from the real network on a real photo (reg_image: a shifted copy)."""
    x = torch.nn.functional.interpolate(photo, size=64, mode="area")
    with torch.no_grad():
        return Context(image=x, outputs=backbone(x), reg_image=(x * 0.8 + 0.1), step=3)


def test_objective_algebra(ctx, backbone):
    with torch.no_grad():
        target = backbone(torch.full_like(ctx.image, 0.5)).pool5
    a = obj.feature_inversion(target)
    b = obj.total_variation(1.5)
    c = obj.class_score(281)
    va, vb, vc = float(a(ctx)), float(b(ctx)), float(c(ctx))
    assert min(abs(va), abs(vb), abs(vc)) > 1e-6
    assert float((a + 0.5 * b)(ctx)) == pytest.approx(va + 0.5 * vb, rel=1e-6)
    assert float((b * 2 + a)(ctx)) == pytest.approx(2 * vb + va, rel=1e-6)
    assert float((-a)(ctx)) == pytest.approx(-va, rel=1e-6)
    assert float((a - b)(ctx)) == pytest.approx(va - vb, rel=1e-6)
    assert float(sum([a, b, c])(ctx)) == pytest.approx(va + vb + vc, rel=1e-6)
    assert float((a + 1.5)(ctx)) == pytest.approx(va + 1.5, rel=1e-6)
    assert float((a - 1.5)(ctx)) == pytest.approx(va - 1.5, rel=1e-6)


def test_class_score_is_the_negated_logit(ctx):
    assert float(obj.class_score(281)(ctx)) == pytest.approx(-float(ctx.outputs.logits[0, 281]))


def test_regulariser_objectives_act_on_reg_image(ctx):
    """With whitening the priors must see the whitened image, not the raw one."""
    from stylefill.optvis import regularizers

    tv = obj.total_variation(2.0)(ctx)
    assert float(tv) == pytest.approx(float(regularizers.total_variation(ctx.reg_image, 2.0)))
    assert float(tv) != pytest.approx(float(regularizers.total_variation(ctx.image, 2.0)))
    an = obj.alpha_norm(6.0)(ctx)
    assert float(an) == pytest.approx(float(regularizers.alpha_norm(ctx.reg_image, 6.0)))


def test_colour_statistics_acts_on_the_unwhitened_image(ctx):
    """Its targets are RGB statistics, so it must see the image, not the whitened one."""
    from stylefill.optvis import regularizers

    mean, std = ctx.image.mean((2, 3)), ctx.image.std((2, 3))
    assert float(obj.colour_statistics(mean, std)(ctx)) < 1e-10
    assert float(obj.colour_statistics(mean, std)(ctx)) != pytest.approx(
        float(regularizers.colour_statistics(ctx.reg_image, mean, std)))


def test_a_scheduled_objective_is_weighted_by_step_and_keeps_what_it_carries():
    weight = obj.anneal(iters=10, final=0.1)
    assert [round(weight(s), 3) for s in (0, 4, 5, 9)] == [1.0, 1.0, 1.0, 0.1]
    assert obj.anneal(10, 1.0)(9) == 1.0
    tv = obj.total_variation().scheduled(weight)
    image = torch.rand(1, 3, 8, 8)
    early, late = (float(tv(Context(image, None, image, step=s))) for s in (0, 9))
    assert late == pytest.approx(0.1 * early)
    inverted = obj.feature_inversion(torch.ones(1, 2, 3, 3), "block15").scheduled(weight)
    assert inverted.layers == ("block15",)


def test_change_from_is_the_mean_absolute_change_where_weighted(ctx):
    """Change outside `where` costs nothing; inside, the mean over pixels and channels."""
    where = torch.zeros(1, 1, *ctx.image.shape[-2:])
    where[..., :32, :] = 1.0
    change = obj.change_from(ctx.image, where)
    moved = ctx.image.clone()
    moved[..., 32:, :] += 0.5
    assert float(change(Context(moved, ctx.outputs, moved))) == 0.0
    moved[..., :32, :] += 0.1
    assert float(change(Context(moved, ctx.outputs, moved))) == pytest.approx(0.1, rel=1e-5)
    assert float(change(Context(moved, ctx.outputs, moved * 0.0))) == pytest.approx(0.1, rel=1e-5)


def test_coverage_holds_an_alpha_at_its_share(ctx):
    """|mean alpha - share|: a target, so descent moves a too-small alpha up and a too-large
    one down, until the object covers `share` of the canvas."""
    from stylefill.optvis.param import Overlay, PixelParam

    param = Overlay(PixelParam(ctx.image), torch.zeros_like(ctx.image), cell=8)
    for share in (0.2, 0.8):
        logits = param.logits.detach().clone().requires_grad_(True)
        param.logits = logits
        coverage = obj.coverage(param.alpha, share)
        start = abs(float(param.alpha().mean()) - share)
        assert float(coverage(ctx)) == pytest.approx(start, rel=1e-5)
        optimiser = torch.optim.Adam([logits], lr=0.1)
        for _ in range(200):
            optimiser.zero_grad()
            coverage(ctx).backward()
            optimiser.step()
        assert float(coverage(ctx)) < 0.02 < start


def test_whole_network_class_score_ignores_the_pathway_the_pass_took(backbone):
    """Through a style's m7 the class score is the pathway's; the whole-network score of the
    same pass is the unmasked network's logit."""
    from stylefill.backbones import Masks

    image = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    m7 = torch.zeros(1280)
    m7[::4] = 1.0
    through = backbone(image, Masks(m7=m7))
    ctx = Context(image, through, image)
    whole = float(obj.whole_network_class_score(backbone, 301)(ctx))
    assert whole == pytest.approx(-float(backbone(image).logits[0, 301]), abs=1e-4)
    assert abs(float(obj.class_score(301)(ctx)) - whole) > 0.1
