"""Object pose errors on cases with known answers (hold.eval.pose_error, docs/evaluation.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hold.eval.align import Similarity
from hold.eval.evaluate import similarity_matrices
from hold.eval.pose_error import (
    error_stats,
    hand_frames,
    object_pose_errors,
    rotation_angle_deg,
    split_similarity,
)

T = 5
CENTROID = np.array([0.01, -0.02, 0.03])


def _gt(num_frames: int = T):
    """GT object poses (T, 4, 4) and hand keypoints (T, 21, 3) near the object."""
    rot = Rotation.random(num_frames, random_state=3).as_matrix()
    trans = np.random.default_rng(4).normal(scale=0.2, size=(num_frames, 3))
    joints = np.random.default_rng(5).normal(scale=0.05, size=(num_frames, 21, 3)) + trans[:, None]
    return similarity_matrices(rot, trans), joints


def _errors(pred_poses, gt_poses, joints, alignment=None, valid=None):
    return object_pose_errors(
        pred_poses,
        gt_poses,
        np.eye(4) if alignment is None else alignment,
        CENTROID,
        np.ones(T, bool) if valid is None else valid,
        joints,
        joints,
    )


def test_identical_poses_have_no_error():
    gt, joints = _gt()
    errors = _errors(gt.copy(), gt, joints)
    assert errors.reference_frame == 0
    for values in errors.named().values():
        np.testing.assert_allclose(values, 0.0, atol=1e-6)


def test_another_object_frame_is_undone_by_the_alignment():
    """Prediction in its own canonical frame (rotated, shifted, 2× smaller): no error after alignment."""
    gt, joints = _gt()
    rot = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()
    align = Similarity(rot, np.array([0.1, 0.0, -0.05]), 2.0).matrix()  # pred canonical → GT frame
    errors = _errors(gt @ align, gt, joints, align)
    for values in errors.named().values():
        np.testing.assert_allclose(values, 0.0, atol=1e-6)


def test_an_extra_rotation_on_one_frame_is_measured_in_degrees():
    gt, joints = _gt()
    pred = gt.copy()
    # 10° about an oblique object axis through the centroid, on frame 3 only: the centroid stays put.
    extra = np.eye(4)
    extra[:3, :3] = Rotation.from_rotvec(
        np.deg2rad(10.0) * np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    ).as_matrix()
    extra[:3, 3] = CENTROID - extra[:3, :3] @ CENTROID
    pred[3] = gt[3] @ extra
    errors = _errors(pred, gt, joints)
    expected = np.array([0, 0, 0, 10.0, 0])
    np.testing.assert_allclose(errors.rotation_rel_ref_deg, expected, atol=1e-6)
    # In the hand the constant frame offset fitted over the 5 frames takes a share of the outlier.
    hand = errors.rotation_hand_deg
    assert hand[3] > 7.0 and np.delete(hand, 3).max() < 3.0
    np.testing.assert_allclose(errors.translation_rel_ref_mm, 0.0, atol=1e-6)
    np.testing.assert_allclose(errors.translation_hand_mm, 0.0, atol=1e-6)


def test_a_translation_offset_is_measured_in_mm():
    gt, joints = _gt()
    pred = gt.copy()
    pred[2, :3, 3] += [0.003, 0.0, 0.004]  # 5 mm on frame 2
    errors = _errors(pred, gt, joints)
    np.testing.assert_allclose(errors.translation_rel_ref_mm, [0, 0, 5.0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(errors.translation_hand_mm, [0, 0, 5.0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(errors.rotation_rel_ref_deg, 0.0, atol=1e-6)
    # Offsetting the reference frame instead moves every other frame's motion by the same 5 mm.
    pred = gt.copy()
    pred[0, :3, 3] += [0.0, 0.005, 0.0]
    errors = _errors(pred, gt, joints)
    np.testing.assert_allclose(errors.translation_rel_ref_mm, [0, 5, 5, 5, 5], atol=1e-6)


def test_the_reference_is_the_first_scored_frame_and_others_are_nan():
    gt, joints = _gt()
    pred = gt.copy()
    pred[1, :3, 3] += [0.0, 0.0, 0.002]  # the reference: every later frame is 2 mm off
    valid = np.array([False, True, True, False, True])
    errors = _errors(pred, gt, joints, valid=valid)
    assert errors.reference_frame == 1
    np.testing.assert_allclose(errors.translation_rel_ref_mm, [np.nan, 0, 2, np.nan, 2], atol=1e-6)
    stats = errors.summary(valid, 95.0)["translation_rel_ref_mm"]
    assert stats.median == pytest.approx(2.0) and stats.to_dict() == {
        "median": stats.median,
        "p95": stats.percentile,
    }


def test_hand_frames_are_rotations_and_follow_the_hand():
    _, joints = _gt()
    frames = hand_frames(joints)
    np.testing.assert_allclose(frames @ np.swapaxes(frames, 1, 2), np.tile(np.eye(3), (T, 1, 1)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(frames), 1.0)
    turn = Rotation.from_rotvec([0.4, 0.2, -0.9]).as_matrix()
    np.testing.assert_allclose(hand_frames(joints @ turn.T + 1.0), turn @ frames, atol=1e-12)
    flat = joints.copy()
    flat[2] = 0.0
    with pytest.raises(ValueError, match=r"joints: keypoints 0, 5, 9, 17 span no hand frame in frames \[2\]"):
        hand_frames(flat)


def test_rotation_angle_is_accurate_near_0_and_180_degrees():
    angles = np.array([1e-6, 0.5, 10.0, 179.9999, 180.0])
    rots = Rotation.from_rotvec(np.deg2rad(angles)[:, None] * np.array([0.0, 0.6, 0.8])).as_matrix()
    np.testing.assert_allclose(rotation_angle_deg(rots), angles, rtol=1e-6, atol=1e-9)


def test_split_similarity_and_error_stats():
    rot = Rotation.random(3, random_state=0).as_matrix()
    r, s, t = split_similarity(similarity_matrices(rot, np.ones((3, 3)), 2.5))
    np.testing.assert_allclose(r, rot, atol=1e-12)
    np.testing.assert_allclose(s, 2.5)
    np.testing.assert_allclose(t, 1.0)
    stats = error_stats(np.array([1.0, 2.0, np.nan, 3.0, 100.0]), np.array([1, 1, 0, 1, 1], bool), 95.0)
    assert stats.median == 2.5 and stats.percentile == pytest.approx(np.percentile([1, 2, 3, 100], 95))


def test_a_constant_roll_of_a_symmetric_object_is_not_a_hand_relative_error():
    # A bottle's shape alignment may leave any roll about its axis: the same poses with the object
    # frame rolled by 70° must still read as a perfect track in the hand.
    from scipy.spatial.transform import Rotation

    from hold.eval.pose_error import pose_frame_offset

    rng = np.random.default_rng(0)
    gt = Rotation.random(6, random_state=1).as_matrix()
    roll = Rotation.from_rotvec([0.0, np.deg2rad(70.0), 0.0]).as_matrix()
    assert np.allclose(pose_frame_offset(gt @ roll.T, gt), roll, atol=1e-9)
    noisy = gt @ Rotation.from_rotvec(rng.normal(0, 0.01, (6, 3))).as_matrix()
    assert np.degrees(np.arccos((np.trace(pose_frame_offset(noisy, gt)) - 1) / 2)) < 2.0
