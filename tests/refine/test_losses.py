"""Pure refinement terms: values on hand-made cases, gradients where they matter."""

from __future__ import annotations

import math

import pytest
import torch

from hold.config.refine import RefineLossConfig
from hold.geometry.rotations import axis_angle_to_matrix
from hold.refine import losses
from hold.refine.terms import weighted_total


def test_silhouette_l1_ignores_unweighted_pixels_and_normalises_by_area():
    target = torch.zeros(1, 4, 4)
    target[0, :2, :2] = 1.0
    pred = target.clone()
    weight = torch.ones(1, 4, 4)
    assert losses.silhouette_l1(pred, target, weight).item() == 0.0
    pred[0, 3, 3] = 1.0  # one spurious pixel: 1 / area 4
    assert losses.silhouette_l1(pred, target, weight).item() == pytest.approx(0.25)
    weight[0, 3, 3] = 0.0  # e.g. a hand pixel for the object term: it no longer counts
    assert losses.silhouette_l1(pred, target, weight).item() == 0.0


def test_nearest_distance_value_and_gradient_match_the_full_minimum():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 7, 3, generator=g, requires_grad=True)
    r = torch.randn(2, 11, 3, generator=g, requires_grad=True)
    d = losses.nearest_distance(q, r)
    ref = torch.cdist(q, r).min(-1).values
    assert torch.allclose(d, ref, atol=1e-6)
    gq, gr = torch.autograd.grad(d.sum(), (q, r))
    hq, hr = torch.autograd.grad(ref.sum(), (q, r))
    assert torch.allclose(gq, hq, atol=1e-5) and torch.allclose(gr, hr, atol=1e-5)


def test_contact_uses_each_regions_closest_vertex_and_pulls_far_regions_gently():
    dist = torch.tensor([[0.5, 0.2, 3.0, 4.0]])
    gaps = losses.region_gaps(dist, [torch.tensor([0, 1]), torch.tensor([2, 3])])
    assert gaps.tolist() == [[pytest.approx(0.2), 3.0]]
    assert losses.contact(gaps).item() == pytest.approx((0.04 + 9.0) / 2)
    robust = losses.contact(gaps, robust_distance=1.0)
    assert robust.item() == pytest.approx((0.04 / 1.04 + 9.0 / 10.0) / 2)
    # a region 3 units away is still pulled (no gate), less than by the plain square
    far = torch.tensor([[3.0]], requires_grad=True)
    losses.contact(far, robust_distance=1.0).backward()
    assert 0 < far.grad.item() < 6.0


def test_contact_per_vertex_is_holds_mean_over_every_contact_vertex():
    dist = torch.tensor([[0.5, 0.2, 3.0, 4.0]])
    regions = [torch.tensor([0, 1]), torch.tensor([2, 3])]
    assert torch.equal(losses.contact_gaps(dist, regions, "region"), losses.region_gaps(dist, regions))
    gaps = losses.contact_gaps(dist, regions, "vertex")
    assert torch.equal(gaps, dist)
    # HOLD Eq. 16 / code/src/fitting/loss.py: mean squared distance of every contact vertex
    assert losses.contact(gaps).item() == pytest.approx((0.25 + 0.04 + 9.0 + 16.0) / 4)
    with pytest.raises(ValueError, match="per"):
        losses.contact_gaps(dist, regions, "finger")


def test_penetration_counts_only_points_inside():
    sdf = torch.tensor([[0.5, -0.1, -0.2], [1.0, 2.0, float("inf")]])
    assert losses.penetration(sdf).item() == pytest.approx((0.01 + 0.04) / 2)


def test_translation_smoothness_orders():
    t = torch.arange(5.0)[:, None] * torch.tensor([[1.0, 2.0, 0.0]])  # constant velocity
    assert losses.translation_smoothness(t, 0).item() == pytest.approx(5.0)
    assert losses.translation_smoothness(t, 1).item() == pytest.approx(0.0)
    assert losses.translation_smoothness(t[:2], 1).item() == 0.0  # too short for the order
    jitter = t.clone()
    jitter[2, 0] += 1.0
    assert losses.translation_smoothness(jitter, 1).item() > 0


def test_rotation_smoothness_constant_angular_velocity_is_free():
    angles = torch.arange(6.0)[:, None] * torch.tensor([[0.0, 0.2, 0.0]])
    R = axis_angle_to_matrix(angles)
    assert losses.rotation_smoothness(R, 1).item() == pytest.approx(0.0, abs=1e-10)
    # ‖R_t+1 − R_t‖²_F = 8 sin²(θ/2) for a rotation by θ between frames.
    assert losses.rotation_smoothness(R, 0).item() == pytest.approx(8 * math.sin(0.1) ** 2, rel=1e-5)


def test_priors_and_keypoint_anchor():
    assert losses.squared_deviation(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0])).item() == 4.0
    assert losses.spread(torch.ones(4, 3) * 7).item() == 0.0
    assert losses.spread(torch.tensor([[0.0], [2.0]])).item() == pytest.approx(1.0)
    # a chunk that shifts away from its context frames as a whole pays for it; without them it would not
    chunk = torch.tensor([[0.0], [0.0], [3.0], [3.0], [3.0]])
    assert losses.spread(chunk[2:]).item() == 0.0
    assert losses.spread(chunk, fixed=2).item() == pytest.approx(9.0)
    uv = torch.zeros(2, 21, 2)
    assert losses.keypoint_anchor(uv + torch.tensor([3.0, 4.0]), uv).item() == pytest.approx(25.0)


def test_weighted_total_needs_a_weight_for_every_term():
    w = RefineLossConfig(mask_hand=2.0, contact=0.0)
    total = weighted_total({"mask_hand": torch.tensor(1.5), "contact": torch.tensor(100.0)}, w)
    assert total.item() == pytest.approx(3.0)
    with pytest.raises(KeyError, match="colour"):
        weighted_total({"colour": torch.tensor(1.0)}, w)
