from __future__ import annotations

import numpy as np
import torch

from hold.params import FrameParams
from tests.conftest import random_sequence


def test_tables_hold_the_sequence_values_and_round_trip():
    seq = random_sequence(T=5)
    params = FrameParams(seq)
    frames = torch.tensor([4, 1])
    p = params.hands["right"](frames)
    np.testing.assert_allclose(p.pose.detach().numpy(), seq.hands["right"].pose[[4, 1]], rtol=1e-6)
    assert p.betas.shape == (2, 6) and p.global_orient.shape == (2, 3) and p.transl.shape == (2, 3)
    back = params.to_sequence(seq)
    np.testing.assert_allclose(back.object.rot, seq.object.rot, rtol=1e-6)
    assert np.isclose(back.object.scale, seq.object.scale)


def test_object_transforms_are_inverse():
    params = FrameParams(random_sequence(T=3))
    frames = torch.tensor([0, 2])
    pts = torch.randn(7, 3)
    cam = params.object(frames).to_camera(pts)
    assert cam.shape == (2, 7, 3)
    assert torch.allclose(params.object(frames).to_canonical(cam), pts.expand(2, -1, -1), atol=1e-5)


def test_gradients_reach_only_the_frames_used():
    params = FrameParams(random_sequence(T=4))
    params.object(torch.tensor([1])).to_camera(torch.randn(5, 3)).sum().backward()
    grad = params.object.transl.weight.grad
    assert grad[1].abs().sum() > 0 and grad[[0, 2, 3]].abs().sum() == 0
