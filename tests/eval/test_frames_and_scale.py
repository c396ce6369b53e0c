"""The protocol hides nothing: undetected frames count, a wrong object size shows, poses are scored."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from hold.config.eval import EvalConfig
from hold.eval.evaluate import HandObjectSequence, evaluate, similarity_matrices

FAST = EvalConfig(num_surface_samples=2000, init_rotations="pca")
T = 4
DROPPED = 2
"""The frame where the hand detector failed (prediction valid False)."""


def _scene(mesh: trimesh.Trimesh):
    """GT and a perfect prediction in the same frames; the prediction's frame DROPPED is undetected."""
    rng = np.random.default_rng(0)
    poses = similarity_matrices(Rotation.random(T, random_state=1).as_matrix(), rng.normal(size=(T, 3)))
    joints = rng.normal(scale=0.05, size=(T, 21, 3)) + poses[:, None, :3, 3]
    gt = HandObjectSequence(joints=joints, object_mesh=mesh, object_to_camera=poses)
    valid = np.ones(T, bool)
    valid[DROPPED] = False
    pred = HandObjectSequence(
        joints=joints.copy(), object_mesh=mesh, object_to_camera=poses.copy(), valid=valid
    )
    return pred, gt


def test_headline_mpjpe_counts_the_undetected_frame():
    joints = np.random.default_rng(0).normal(scale=0.05, size=(T, 21, 3))
    pred = joints.copy()
    pred[DROPPED, 1:] += [0.0, 0.04, 0.0]  # 40 mm on 20 of 21 keypoints where detection failed
    valid = np.ones(T, bool)
    valid[DROPPED] = False
    result = evaluate(HandObjectSequence(joints=pred, valid=valid), HandObjectSequence(joints=joints), FAST)
    assert result.mpjpe_mm == pytest.approx(40.0 * 20 / 21 / T)
    assert result.mpjpe_detected_mm == pytest.approx(0.0, abs=1e-9)
    assert result.protocol.frames_gt_valid == [0, 1, 2, 3]
    assert result.protocol.frames_detected == [0, 1, 3]
    d = result.to_dict()
    assert d["frames"] == {"total": T, "gt_valid": 4, "detected": 3}
    assert d["per_frame"]["mpjpe_mm"][DROPPED] == pytest.approx(40.0 * 20 / 21)


def test_headline_cd_h_counts_the_undetected_frame(asymmetric_mesh):
    pred, gt = _scene(asymmetric_mesh)
    pred.object_to_camera[DROPPED, :3, 3] += [0.05, 0.0, 0.0]  # the object 5 cm off the hand there
    result = evaluate(pred, gt, FAST)
    assert result.cd_h_detected_cm2 < 0.1  # sampling noise only
    assert (
        result.cd_h_per_frame_cm2[DROPPED] > 10.0
    )  # 5 cm shift of an 8 cm object (nearest points: < 50 cm²)
    assert result.cd_h_cm2 == pytest.approx(np.mean(result.cd_h_per_frame_cm2))
    assert result.cd_h_cm2 > result.cd_h_detected_cm2 + 2.0
    # The pose errors see the same 5 cm on that frame.
    assert result.pose_errors.translation_hand_mm[DROPPED] == pytest.approx(50.0, abs=1.0)


def test_no_detected_frame_gives_none_not_an_error(asymmetric_mesh):
    pred, gt = _scene(asymmetric_mesh)
    pred.valid = np.zeros(T, bool)
    d = evaluate(pred, gt, FAST).to_dict()
    assert d["mpjpe_detected_mm"] is None and d["cd_h_detected_cm2"] is None
    assert d["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and d["frames"]["detected"] == 0


@pytest.mark.parametrize(("factor", "expected_pct"), [(3.0, 200.0), (0.5, -50.0)])
def test_a_wrongly_sized_object_shows_in_the_scale_error_not_in_cd(asymmetric_mesh, factor, expected_pct):
    pred_mesh = asymmetric_mesh.copy()
    pred_mesh.vertices = asymmetric_mesh.vertices * factor
    pred, gt = _scene(asymmetric_mesh)
    pred.object_mesh = pred_mesh  # posed by the same unit-scale poses: the object is `factor` × too big
    result = evaluate(pred, gt, FAST)
    assert result.object_scale_error_pct == pytest.approx(expected_pct, abs=0.03 * abs(expected_pct))
    assert result.cd_cm2 < 0.1  # the scale-aligned CD cannot see it
    d = result.to_dict()
    assert d["object_scale_error_abs_pct"] == pytest.approx(abs(expected_pct), rel=0.03)
    assert d["alignment"]["scale"] == pytest.approx(1.0 / factor, rel=0.03)


def test_an_extra_rotation_on_one_frame_reaches_the_metrics(asymmetric_mesh):
    pred, gt = _scene(asymmetric_mesh)
    extra = Rotation.from_rotvec(np.deg2rad(10.0) * np.array([0.0, 0.0, 1.0])).as_matrix()
    pred.object_to_camera[1, :3, :3] = pred.object_to_camera[1, :3, :3] @ extra
    d = evaluate(pred, gt, FAST).to_dict()
    per_frame = d["per_frame"]["object_rotation_rel_ref_deg"]
    assert per_frame[1] == pytest.approx(10.0, abs=0.5)  # the alignment of the same mesh is ≈ identity
    assert max(per_frame[0], per_frame[2], per_frame[3]) < 0.5
    assert d["object_pose"]["rotation_rel_ref_deg"]["p95"] > 5.0
    assert d["object_pose"]["rotation_rel_ref_deg"]["median"] < 0.5
