"""Metric functions on cases with known answers (HOLD §4, docs/evaluation.md)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from hold.eval.metrics import chamfer_distance, fscore, hand_relative_chamfer_cm2, mpjpe_mm
from hold.geometry.surface import sample_surface


def _joints(num_frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=0.05, size=(num_frames, 21, 3))


def test_mpjpe_ignores_global_translation():
    gt = _joints(5)
    pred = gt + np.array([0.3, -0.1, 0.7])
    assert mpjpe_mm(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_mpjpe_hand_computed_values():
    gt = _joints(2)
    pred = gt.copy()
    pred[0, 7] += [0.003, 0.0, 0.0]  # one non-root keypoint off by 3 mm in one of two frames
    assert mpjpe_mm(pred, gt) == pytest.approx(3.0 / (21 * 2))
    # Moving only the root shifts the 20 other root-relative keypoints by the same 4 mm.
    pred = gt.copy()
    pred[:, 0] += [0.0, 0.004, 0.0]
    assert mpjpe_mm(pred, gt) == pytest.approx(4.0 * 20 / 21)


def test_mpjpe_uses_only_valid_frames():
    gt = _joints(3)
    pred = gt.copy()
    pred[1, 5:] += 1.0  # garbage in an invalid frame
    assert mpjpe_mm(pred, gt, valid=np.array([True, False, True])) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="valid: no valid frames"):
        mpjpe_mm(pred, gt, valid=np.zeros(3, bool))


@pytest.mark.parametrize(
    ("pred_shape", "gt_shape", "message"),
    [
        ((4, 21, 3), (3, 21, 3), r"gt_joints: expected shape \(4, 21, 3\), found \(3, 21, 3\)"),
        ((4, 20, 3), (4, 21, 3), r"pred_joints: expected shape \(T, 21, 3\), found \(4, 20, 3\)"),
    ],
)
def test_mpjpe_shape_errors_name_argument_and_shapes(pred_shape, gt_shape, message):
    with pytest.raises(ValueError, match=message):
        mpjpe_mm(np.zeros(pred_shape), np.zeros(gt_shape))


def test_mpjpe_rejects_bad_root_index():
    with pytest.raises(ValueError, match="root_index: expected 0..20, found 21"):
        mpjpe_mm(_joints(1), _joints(1), root_index=21)


def test_chamfer_hand_computed():
    a = np.array([[0.0, 0.0, 0.0]])
    b = np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 4.0]])
    # a→b: min(9, 16) = 9; b→a: mean(9, 16) = 12.5
    assert chamfer_distance(a, b) == pytest.approx(21.5)
    assert chamfer_distance(b, a) == pytest.approx(21.5)
    assert chamfer_distance(b, b) == 0.0


def test_chamfer_concentric_spheres_is_twice_squared_radius_gap():
    r1, r2 = 0.05, 0.06
    inner = sample_surface(trimesh.creation.icosphere(subdivisions=4, radius=r1), 20000, seed=0)
    outer = sample_surface(trimesh.creation.icosphere(subdivisions=4, radius=r2), 20000, seed=1)
    expected_cm2 = 2 * (r2 - r1) ** 2 * 1e4  # = 2 cm²
    assert chamfer_distance(inner, outer) * 1e4 == pytest.approx(expected_cm2, rel=0.03)


def test_chamfer_rejects_bad_points():
    with pytest.raises(ValueError, match=r"b: expected shape \(N, 3\), found \(5, 2\)"):
        chamfer_distance(np.zeros((3, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="a: expected at least one point"):
        chamfer_distance(np.zeros((0, 3)), np.zeros((5, 3)))


def test_fscore_hand_made_sets():
    gt = np.array([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0]])
    pred = np.array([[0.0, 0.003, 0], [0.1, 0.007, 0], [0.2, 0.02, 0]])
    # pred→gt distances 3, 7, 20 mm; gt→pred 3, 7, 20, ~102 mm.
    p, r, f = fscore(pred, gt, 0.005)
    assert (p, r) == pytest.approx((100 / 3, 100 / 4))
    assert f == pytest.approx(100 * 2 / 7)
    p, r, f = fscore(pred, gt, 0.010)
    assert (p, r) == pytest.approx((200 / 3, 100 / 2))
    assert f == pytest.approx(100 * 4 / 7)
    assert fscore(pred, gt, 0.5) == pytest.approx((100.0, 100.0, 100.0))


def test_fscore_threshold_is_inclusive_and_zero_when_disjoint():
    a = np.array([[0.0, 0.0, 0.0]])
    b = np.array([[0.0, 0.5, 0.0]])
    assert fscore(a, b, 0.5).fscore == 100.0
    assert fscore(a, b, 0.25) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="threshold"):
        fscore(a, b, 0.0)


def _poses(num_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rot = Rotation.random(num_frames, random_state=seed).as_matrix()
    trans = np.random.default_rng(seed).normal(size=(num_frames, 3))
    return rot, trans


def _mats(rot: np.ndarray, trans: np.ndarray, scale: float) -> np.ndarray:
    m = np.tile(np.eye(4), (len(rot), 1, 1))
    m[:, :3, :3] = scale * rot
    m[:, :3, 3] = trans
    return m


def test_cd_h_zero_for_same_hand_relative_geometry_and_known_offset():
    num_frames, scale, d = 4, 0.1, 0.01
    gt_points = np.array([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]])  # far apart: each point's match is its own copy
    rot, trans = _poses(num_frames, seed=1)
    gt_root = np.random.default_rng(2).normal(size=(num_frames, 3))
    gt_to_cam = _mats(rot, trans, 1.0)
    # Prediction: canonical units (× scale = metres), everything shifted by a per-frame translation.
    shift = np.random.default_rng(3).normal(size=(num_frames, 3))
    pred_points = gt_points / scale
    pred_to_cam = _mats(rot, trans + shift, scale)
    pred_root = gt_root + shift
    valid = np.array([True, True, True, False])
    pred_root[3] += 5.0  # invalid frame: ignored
    mean, per_frame = hand_relative_chamfer_cm2(
        pred_points, pred_to_cam, pred_root, gt_points, gt_to_cam, gt_root, valid
    )
    assert mean == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(per_frame[3])

    pred_root[1] += [0.0, 0.0, d]  # the hand-relative object moves by d in one of three valid frames
    mean, per_frame = hand_relative_chamfer_cm2(
        pred_points, pred_to_cam, pred_root, gt_points, gt_to_cam, gt_root, valid
    )
    assert per_frame[1] == pytest.approx(2 * d**2 * 1e4)  # d² in each direction = 2 cm²
    assert mean == pytest.approx(2 * d**2 * 1e4 / 3)


def test_cd_h_shape_errors():
    pts = np.zeros((2, 3))
    pts[1, 0] = 1.0
    mats = np.tile(np.eye(4), (3, 1, 1))
    with pytest.raises(ValueError, match=r"gt_root: expected shape \(3, 3\), found \(2, 3\)"):
        hand_relative_chamfer_cm2(pts, mats, np.zeros((3, 3)), pts, mats, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"gt_to_camera: expected shape \(3, 4, 4\), found \(3, 3, 3\)"):
        hand_relative_chamfer_cm2(pts, mats, np.zeros((3, 3)), pts, np.zeros((3, 3, 3)), np.zeros((3, 3)))
