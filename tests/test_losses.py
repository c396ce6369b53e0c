from __future__ import annotations

import math

import pytest
import torch

from hold import losses
from hold.utils.schedule import ramp


def test_rgb_l1_respects_valid_mask():
    pred = torch.tensor([[0.0, 0, 0], [1.0, 1, 1]])
    target = torch.zeros(2, 3)
    assert losses.rgb_l1(pred, target).item() == pytest.approx(0.5)
    assert losses.rgb_l1(pred, target, torch.tensor([True, False])).item() == 0.0


def test_segmentation_nll_ignores_unknown_and_rewards_right_class():
    probs = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.8, 0.0], [0.25] * 4])
    labels = torch.tensor([0, 2, 255])
    expected = -(math.log(0.7) + math.log(0.8)) / 2
    assert losses.segmentation_nll(probs, labels).item() == pytest.approx(expected, rel=1e-5)
    worse = losses.segmentation_nll(probs, torch.tensor([1, 1, 255]))
    assert worse > losses.segmentation_nll(probs, labels)
    assert losses.segmentation_nll(probs, torch.tensor([255, 255, 255])).item() == 0.0


def test_segmentation_squared_is_hold_squared_error_on_one_hot():
    probs = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.8, 0.0], [0.25] * 4])
    labels = torch.tensor([0, 2, 255])
    # HOLD's get_sem_loss: squared error to the one-hot label, summed over classes, mean over rays
    row0 = 0.3**2 + 3 * 0.1**2
    row1 = 0.1**2 + 0.1**2 + 0.2**2
    assert losses.segmentation_squared(probs, labels).item() == pytest.approx((row0 + row1) / 2, rel=1e-5)
    assert losses.segmentation_squared(probs, torch.tensor([1, 1, 255])) > losses.segmentation_squared(
        probs, labels
    )
    assert losses.segmentation_squared(torch.eye(4), torch.arange(4)).item() == 0.0
    # bounded: a confidently wrong ray costs 2, where the log-likelihood grows without bound
    wrong = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert losses.segmentation_squared(wrong, torch.tensor([1])).item() == pytest.approx(2.0)
    assert losses.segmentation_squared(probs, torch.tensor([255, 255, 255])).item() == 0.0


def test_eikonal_zero_for_unit_gradients():
    g = torch.nn.functional.normalize(torch.randn(100, 3), dim=1)
    assert losses.eikonal(g).item() == pytest.approx(0.0, abs=1e-10)
    assert losses.eikonal(2 * g).item() == pytest.approx(1.0, rel=1e-5)


def test_sparsity_only_on_far_rays():
    opacity = torch.tensor([1.0, 0.5, 0.0], requires_grad=True)
    loss = losses.sparsity(opacity, torch.tensor([False, True, True]))
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert opacity.grad[0] == 0 and opacity.grad[1] > 0
    assert losses.sparsity(opacity, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_sdf_prior_and_psnr():
    assert losses.sdf_prior_l1(torch.ones(4), torch.zeros(4)).item() == 1.0
    assert losses.psnr(torch.full((4, 3), 0.1), torch.zeros(4, 3)).item() == pytest.approx(20.0, rel=1e-5)


def test_ramp():
    spec = [0, 1.1, 0.1, 100]  # HOLD's segmentation weight decay
    assert ramp(spec, 0) == pytest.approx(1.1)
    assert ramp(spec, 50) == pytest.approx(0.6)
    assert ramp(spec, 1000) == pytest.approx(0.1)
    assert ramp(2.5, 7) == 2.5
    assert ramp([10, 0.0, 1.0, 20], 5) == 0.0
    with pytest.raises(ValueError, match="start_step"):
        ramp([1, 2], 0)
