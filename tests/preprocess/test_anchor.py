"""Object poses from the hand: anchoring, merging smaller SfM models, the robust mean rotation."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from preprocess.anchor import (
    HandFrames,
    anchor_to_hand,
    hand_only_track,
    merge_by_hand,
    object_centre_from_mask,
    robust_mean_rotation,
    rotation_angles_deg,
)


def _rigid_grasp(T: int = 12, seed: int = 0):
    """A hand turning and moving, an object held rigidly: (hand, R_o, t_o, M_R, M_t)."""
    rng = np.random.default_rng(seed)
    R_h = Rotation.from_rotvec(np.linspace(0, 1, T)[:, None] * np.array([0.3, 2.0, 0.5])).as_matrix()
    origin = np.stack([np.linspace(-0.05, 0.05, T), np.zeros(T), np.full(T, 0.5)], -1)
    M_R = Rotation.from_rotvec(rng.normal(size=3)).as_matrix()
    M_t = np.array([0.02, -0.06, 0.03])
    R_o = R_h @ M_R
    t_o = origin + R_h @ M_t
    tips = origin[:, None] + rng.normal(scale=0.01, size=(T, 5, 3))
    return HandFrames("right", R_h, origin, tips, np.ones(T, bool)), R_o, t_o, M_R, M_t


def test_anchor_to_hand_recovers_a_rigid_grasp_in_any_unit():
    hand, R_o, t_o, _, _ = _rigid_grasp()
    known = np.zeros(12, bool)
    known[[3, 7]] = True
    for unit in (1.0, 0.02):  # metres, or SfM units of 2 cm
        R, t = anchor_to_hand(R_o, t_o / unit, known, hand, unit)
        assert rotation_angles_deg(R @ np.transpose(R_o, (0, 2, 1))).max() < 1e-6
        np.testing.assert_allclose(t * unit, t_o, atol=1e-9)


def test_anchor_to_hand_interpolates_the_grasp_between_known_frames():
    hand, R_o, t_o, _, _ = _rigid_grasp()
    # the object turns in the hand by 20° between frames 2 and 8: frame 5 gets half of it
    slip = Rotation.from_rotvec([0, 0, np.radians(20)]).as_matrix()
    R_o = R_o.copy()
    R_o[8] = hand.R[8] @ slip @ hand.R[8].T @ R_o[8]
    known = np.zeros(12, bool)
    known[[2, 8]] = True
    R, _ = anchor_to_hand(R_o, t_o, known, hand, 1.0, known_rotation=None)
    M_5 = hand.R[5].T @ R[5]
    M_2, M_8 = hand.R[2].T @ R_o[2], hand.R[8].T @ R_o[8]
    angle = rotation_angles_deg(np.stack([M_2.T @ M_5, M_5.T @ M_8]))
    np.testing.assert_allclose(angle, [10.0, 10.0], atol=1e-6)
    # frames given a known rotation keep it; only their translation comes from the hand
    keep = np.zeros(12, bool)
    keep[10] = True
    R_k, _ = anchor_to_hand(R_o, t_o, known, hand, 1.0, known_rotation=keep)
    assert np.allclose(R_k[10], R_o[10]) and not np.allclose(R[10], R_o[10])


def test_hand_only_track_follows_the_hand_from_the_reference_frame():
    hand, R_o, t_o, _, M_t = _rigid_grasp()
    centre = t_o[4]
    R, t = hand_only_track(hand, 4, centre)
    np.testing.assert_allclose(R[4], np.eye(3), atol=1e-12)
    # the canonical frame is the object's at frame 4: its motion since then is the object's
    rel_pred = R @ R[0].T
    rel_true = R_o @ R_o[0].T
    assert rotation_angles_deg(rel_pred @ np.transpose(rel_true, (0, 2, 1))).max() < 1e-6
    np.testing.assert_allclose(t, t_o, atol=1e-9)


def test_merge_by_hand_aligns_a_smaller_model_by_overlap_or_by_the_hand():
    hand, R_o, _, _, _ = _rigid_grasp(T=16)
    registered = np.zeros(16, bool)
    registered[:8] = True
    Q = Rotation.from_rotvec([0.4, -1.0, 2.0]).as_matrix()  # the smaller model's own world frame
    R_b = R_o @ Q.T  # R_main = R_b Q
    reg_b = np.zeros(16, bool)
    reg_b[6:14] = True  # overlaps frames 6, 7
    R, merged = merge_by_hand(R_o * registered[:, None, None], registered, [(R_b, reg_b)], hand, 10.0)
    assert merged.tolist() == [False] * 8 + [True] * 6 + [False] * 2
    assert rotation_angles_deg(R[8:14] @ np.transpose(R_o[8:14], (0, 2, 1))).max() < 1e-6
    reg_b[6:8] = False  # no overlap: Q comes through the hand
    R, merged = merge_by_hand(R_o * registered[:, None, None], registered, [(R_b, reg_b)], hand, 10.0)
    assert (
        merged[8:14].all() and rotation_angles_deg(R[8:14] @ np.transpose(R_o[8:14], (0, 2, 1))).max() < 1e-6
    )
    R, merged = merge_by_hand(R_o, registered, [(R_b, reg_b)], None, 10.0)  # neither: nothing merged
    assert not merged.any()


def test_robust_mean_rotation_ignores_a_few_wild_rotations():
    rng = np.random.default_rng(1)
    centre = Rotation.from_rotvec([0.3, 0.2, -0.1])
    near = (Rotation.from_rotvec(rng.normal(scale=np.radians(2), size=(20, 3))) * centre).as_matrix()
    wild = Rotation.random(5, random_state=2).as_matrix()
    mean = robust_mean_rotation(np.concatenate([near, wild]), 10.0)
    assert rotation_angles_deg((Rotation.from_matrix(mean) * centre.inv()).as_matrix()[None])[0] < 1.5


def test_object_centre_from_mask_back_projects_the_centroid():
    K = np.array([[200.0, 0, 50], [0, 200.0, 40], [0, 0, 1]])
    mask = np.zeros((80, 100), bool)
    mask[30:51, 60:81] = True  # centroid (70, 40), 21×21 px
    centre, radius = object_centre_from_mask(mask, K, 0.5)
    np.testing.assert_allclose(centre, [0.05, 0.0, 0.5])
    assert radius == np.sqrt(21 * 21 / np.pi) * 0.5 / 200


def test_hull_surface_keeps_the_voxels_on_the_boundary():
    from preprocess.anchor import hull_surface

    axis = np.arange(5) * 0.1
    cube = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    surface = hull_surface(cube, 0.1)
    assert len(surface) == 5**3 - 3**3
    assert np.all(np.any((surface < 0.05) | (surface > 0.35), axis=1))
