from __future__ import annotations

import pytest
import torch

from hold.data.sequence import LABEL_BACKGROUND, LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT
from hold.render.compositing import (
    NodeSamples,
    composite,
    render_node,
    volume_weights,
)
from hold.render.density import LaplaceDensity, laplace_density

R, S = 6, 200


def plane_node(
    label: int, depth: float, beta: float | torch.Tensor = 0.005, color=(1.0, 0.0, 0.0)
) -> NodeSamples:
    """A node whose SDF is the plane z = depth (d = depth − z, free space in front), sampled uniformly on [0, 3] along R rays."""
    z = torch.linspace(0.0, 3.0, S).expand(R, S).contiguous()
    return NodeSamples(
        label=label,
        z=z,
        sigma=laplace_density(depth - z, beta),
        rgb=torch.tensor(color).expand(R, S, 3),
        normal=torch.tensor([0.0, 0.0, -1.0]).expand(R, S, 3),
        far=torch.full((R,), 3.0),
    )


def test_front_node_takes_the_class_distribution():
    obj, hand = plane_node(LABEL_OBJECT, 1.0), plane_node(LABEL_RIGHT, 2.0, color=(0.0, 1.0, 0.0))
    out = composite([hand, obj], bg_rgb=torch.zeros(R, 3))
    assert torch.all(out.class_probs[:, LABEL_OBJECT] > 0.99)
    torch.testing.assert_close(out.class_probs.sum(-1), torch.ones(R))
    torch.testing.assert_close(out.rgb, torch.tensor([1.0, 0.0, 0.0]).expand(R, 3), atol=1e-2, rtol=0)
    assert torch.all(out.visible[:, 0] < 0.01) and torch.all(out.visible[:, 1] > 0.99)
    assert torch.all((out.depth - 1.0).abs() < 0.03)
    # Amodal: the occluded hand is still fully opaque on its own.
    assert torch.all(out.amodal > 0.99)
    assert out.node(LABEL_RIGHT) is out.nodes[0]


def test_amodal_masks_equal_the_single_node_opacity():
    sigma = torch.rand(R, 40) * 3
    z = torch.sort(torch.rand(R, 40) * 2, -1).values
    a = NodeSamples(LABEL_OBJECT, z, sigma, torch.rand(R, 40, 3), torch.rand(R, 40, 3), torch.full((R,), 2.0))
    z2 = torch.sort(torch.rand(R, 30) * 2 + 0.5, -1).values
    b = NodeSamples(
        LABEL_LEFT, z2, torch.rand(R, 30), torch.rand(R, 30, 3), torch.rand(R, 30, 3), torch.full((R,), 2.5)
    )
    out = composite([a, b])
    for node, alone in zip((a, b), out.nodes):
        single = composite([node])
        torch.testing.assert_close(alone.opacity, single.opacity)
        torch.testing.assert_close(render_node(node).rgb, single.fg_rgb)
    torch.testing.assert_close(out.amodal, torch.stack([render_node(a).opacity, render_node(b).opacity], -1))
    # Weights plus residual transmittance sum to 1, and so does the class distribution.
    torch.testing.assert_close(out.weights.sum(-1) + out.bg_transmittance, torch.ones(R))
    torch.testing.assert_close(out.class_probs.sum(-1), torch.ones(R))
    torch.testing.assert_close(out.visible.sum(-1), out.opacity)
    assert out.class_probs[:, LABEL_RIGHT].abs().max() == 0
    assert out.z.shape == (R, 70) and torch.all(out.z[:, 1:] >= out.z[:, :-1])


def test_background_shows_through_empty_rays():
    node = plane_node(LABEL_OBJECT, 1.0)
    node.sigma = node.sigma.clone()
    node.sigma[:3] = 0.0
    bg = torch.rand(R, 3)
    out = composite([node], bg_rgb=bg)
    torch.testing.assert_close(out.rgb[:3], bg[:3])
    torch.testing.assert_close(out.class_probs[:3, LABEL_BACKGROUND], torch.ones(3))
    assert torch.all(out.opacity[:3] == 0) and torch.all(out.opacity[3:] > 0.99)


def test_invalid_node_leaves_the_other_untouched():
    obj, hand = plane_node(LABEL_OBJECT, 1.5), plane_node(LABEL_RIGHT, 1.0)
    hand.valid = torch.zeros(R, dtype=torch.bool)
    hand.far = torch.full((R,), 10.0)  # ignored where the node is invalid
    out, ref = composite([obj, hand]), composite([obj])
    torch.testing.assert_close(out.rgb, ref.rgb)
    torch.testing.assert_close(out.class_probs, ref.class_probs)
    assert torch.all(out.amodal[:, 1] == 0)


def test_gradients_reach_beta_colour_and_density():
    density = LaplaceDensity()
    z = torch.linspace(0.0, 3.0, 64).expand(R, 64)
    rgb = torch.rand(R, 64, 3, requires_grad=True)
    sigma_hand = torch.rand(R, 64, requires_grad=True)
    obj = NodeSamples(LABEL_OBJECT, z, density(1.0 - z), rgb, torch.zeros(R, 64, 3), torch.full((R,), 3.0))
    hand = NodeSamples(
        LABEL_RIGHT, z + 0.01, sigma_hand, torch.rand(R, 64, 3), torch.zeros(R, 64, 3), torch.full((R,), 3.0)
    )
    out = composite([obj, hand], bg_rgb=torch.rand(R, 3))
    (out.rgb.sum() + out.class_probs[:, LABEL_RIGHT].sum() + out.amodal.sum()).backward()
    for grad in (density.beta.grad, rgb.grad, sigma_hand.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_volume_weights_telescopes_and_labels_are_checked():
    z = torch.sort(torch.rand(4, 10), -1).values
    weights, residual = volume_weights(z, torch.rand(4, 10) * 5, torch.ones(4))
    torch.testing.assert_close(weights.sum(-1) + residual, torch.ones(4))
    with pytest.raises(ValueError, match="label"):
        composite([plane_node(LABEL_BACKGROUND, 1.0)])
    bad = plane_node(LABEL_OBJECT, 1.0)
    bad.rgb = bad.rgb[:, :5]
    with pytest.raises(ValueError, match="rgb has shape"):
        composite([bad])


def test_volume_weights_gradcheck():
    z = torch.sort(torch.rand(2, 5, dtype=torch.float64), -1).values
    sigma = torch.rand(2, 5, dtype=torch.float64, requires_grad=True)
    far = torch.full((2,), 1.5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: volume_weights(z, s, far), (sigma,))
