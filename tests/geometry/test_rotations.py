from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hold.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, slerp_fill


def test_axis_angle_matches_scipy_and_round_trips():
    aa = torch.randn(50, 3, dtype=torch.float64)
    R = axis_angle_to_matrix(aa)
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(aa.numpy()).as_matrix(), atol=1e-12)
    back = axis_angle_to_matrix(matrix_to_axis_angle(R))
    np.testing.assert_allclose(back.numpy(), R.numpy(), atol=1e-10)


def test_gradient_finite_at_identity():
    aa = torch.zeros(2, 3, requires_grad=True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_slerp_fill_interpolates_invalid_frames():
    rots = np.zeros((5, 3))
    rots[0] = [0, 0, 0]
    rots[4] = [0, 0, np.pi / 2]
    rots[1:4] = 99.0  # garbage in invalid frames
    valid = np.array([True, False, False, False, True])
    out = slerp_fill(rots, valid)
    np.testing.assert_allclose(out[2], [0, 0, np.pi / 4], atol=1e-9)
    np.testing.assert_allclose(out[4], rots[4])
    edges = slerp_fill(np.arange(9.0).reshape(3, 3) * 0.1, np.array([False, True, False]))
    np.testing.assert_allclose(edges[0], edges[1])
