from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hold.geometry.rotations import (
    axis_angle_to_matrix,
    end_motions,
    lerp_fill,
    matrix_to_axis_angle,
    slerp_fill,
)


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


def _constant_rotation(T: int) -> np.ndarray:
    """(T, 2, 3): two joints turning at constant angular velocity (about different axes)."""
    start = Rotation.from_rotvec([[0.3, -0.2, 0.5], [1.0, 0.4, -0.3]])
    omega = Rotation.from_rotvec([[0.0, 0.25, 0.1], [-0.2, 0.0, 0.15]])
    return np.stack([(omega**t * start).as_rotvec() for t in range(T)])


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (radians) between the rotations of two axis-angle arrays."""
    return (Rotation.from_rotvec(a.reshape(-1, 3)) * Rotation.from_rotvec(b.reshape(-1, 3)).inv()).magnitude()


def test_slerp_fill_extrapolates_constant_rotation_exactly_up_to_the_horizon():
    truth = _constant_rotation(14)
    valid = np.zeros(14, bool)
    valid[3:8] = True
    rots = np.where(valid[:, None, None], truth, 9.0)  # garbage in invalid frames
    out = slerp_fill(rots, valid, window=4, horizon=4)
    assert _angles(out[:12], truth[:12]).max() < 1e-9  # 3 frames before, 4 after the valid ones
    assert _angles(out[12:], np.stack([out[11]] * 2)).max() < 1e-9  # beyond the horizon: held
    held = slerp_fill(rots, valid)  # the default holds the end frames
    assert _angles(held[9], truth[7]).max() < 1e-9 and _angles(held[0], truth[3]).max() < 1e-9


def test_slerp_fill_extrapolation_leaves_valid_frames_and_gaps_alone():
    truth = _constant_rotation(10)
    np.testing.assert_array_equal(slerp_fill(truth, np.ones(10, bool), window=4, horizon=8), truth)
    valid = np.array([True, True, False, True, True, True, True, True, True, True])
    np.testing.assert_allclose(slerp_fill(truth, valid, 4, 8), slerp_fill(truth, valid), atol=1e-12)
    single = np.zeros(10, bool)
    single[5] = True  # one valid frame: no velocity, held
    np.testing.assert_allclose(slerp_fill(truth, single, 4, 8), np.broadcast_to(truth[5], truth.shape))


def test_end_motions_measure_the_velocity_inside_the_window():
    valid = np.array([False, True, False, True, True, False, False])
    last, first = end_motions(valid, window=3, horizon=1)
    assert (last.edge, last.ref) == (4, 1) and list(last.frames) == [5, 6]
    np.testing.assert_allclose(last.scale, [1 / 3, 1 / 3])  # capped at the horizon
    assert (first.edge, first.ref) == (1, 4) and list(first.frames) == [0]
    assert end_motions(valid, window=0, horizon=5) == []


def test_lerp_fill_interpolates_and_continues_at_the_ends():
    valid = np.array([False, True, False, True, True, False, False])
    values = np.arange(7.0)[:, None] * np.array([[1.0, -2.0]])  # a steady motion
    values[~valid] = 99.0
    held = lerp_fill(values, valid)
    np.testing.assert_allclose(held[[0, 2, 5, 6]], [[1, -2], [2, -4], [4, -8], [4, -8]])
    moving = lerp_fill(values, valid, window=3, horizon=1)  # beyond the horizon the last guess holds
    np.testing.assert_allclose(moving[[0, 2, 5, 6]], [[0, 0], [2, -4], [5, -10], [5, -10]])
