"""The whole evaluation: structured result, metrics.json dict, protocol record, input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from hold.config import from_dict
from hold.config.eval import EvalConfig
from hold.eval.evaluate import EvalResult, HandObjectSequence, evaluate, similarity_matrices
from hold.geometry.surface import sample_surface

# 24 PCA starts instead of 48: the alignment itself is tested in test_align.py.
FAST = EvalConfig(num_surface_samples=2000, init_rotations="pca")


def _scene(mesh: trimesh.Trimesh, rotation: np.ndarray, num_frames: int = 4):
    """A GT sequence and a prediction with the same hand-relative geometry but another object frame,
    scale and absolute position."""
    rng = np.random.default_rng(0)
    obj_rot = Rotation.random(num_frames, random_state=1).as_matrix()
    obj_trans = rng.normal(size=(num_frames, 3))
    joints = rng.normal(scale=0.05, size=(num_frames, 21, 3))
    gt = HandObjectSequence(
        joints=joints,
        object_mesh=mesh,
        object_to_camera=similarity_matrices(obj_rot, obj_trans),
        valid=np.array([True, True, False, True]),
    )
    # Prediction: canonical x_can = R^T x / 2.5 (so the pose has scale 2.5), shifted by 0.3 m.
    scale, shift = 2.5, np.array([0.3, 0.0, 0.0])
    pred_mesh = mesh.copy()
    pred_mesh.vertices = mesh.vertices @ rotation / scale
    pred = HandObjectSequence(
        joints=joints + shift,
        object_mesh=pred_mesh,
        object_to_camera=similarity_matrices(obj_rot @ rotation, obj_trans + shift, scale),
    )
    return pred, gt


@pytest.fixture(scope="module")
def perfect_result(asymmetric_mesh, rotation_150) -> EvalResult:
    return evaluate(*_scene(asymmetric_mesh, rotation_150), FAST)


def test_perfect_reconstruction(perfect_result):
    result = perfect_result
    assert result.mpjpe_mm == pytest.approx(0.0, abs=1e-9)
    assert result.cd_cm2 < 0.1  # sampling-noise floor of 2000 independent samples per mesh
    assert [f.fscore for f in result.fscores] == [pytest.approx(100.0, abs=0.5), 100.0]
    assert result.cd_h_cm2 < 0.1
    assert result.protocol.frames_gt_valid == result.protocol.frames_detected == [0, 1, 3]
    assert np.isnan(result.cd_h_per_frame_cm2[2])
    assert result.object_scale_error_pct == pytest.approx(0.0, abs=2.0)  # the pose scale 2.5 is counted
    errors = result.pose_errors
    assert errors.reference_frame == 0 and np.isnan(errors.rotation_rel_ref_deg[2])
    for per_frame in errors.named().values():
        assert np.nanmax(per_frame) < 1.0  # degrees or mm: only the alignment's sampling noise


def test_metrics_dict_records_protocol(perfect_result):
    d = perfect_result.to_dict()
    d = json.loads(json.dumps(d))  # JSON-ready: no numpy types, no NaN
    for key in ("mpjpe_mm", "cd_cm2", "f5", "f10", "cd_h_cm2"):
        assert isinstance(d[key], float)
    assert d["per_frame"]["cd_h_cm2"][2] is None
    protocol = d["protocol"]
    assert protocol["num_surface_samples"] == 2000
    assert protocol["frames_gt_valid"] == protocol["frames_detected"] == [0, 1, 3]
    assert d["frames"] == {"total": 4, "gt_valid": 3, "detected": 3}
    assert d["mpjpe_detected_mm"] == d["mpjpe_mm"] and d["cd_h_detected_cm2"] == d["cd_h_cm2"]
    assert d["per_frame"]["mpjpe_mm"][2] is None
    assert set(d["object_pose"]) == {
        "reference_frame",
        "rotation_rel_ref_deg",
        "translation_rel_ref_mm",
        "rotation_hand_deg",
        "translation_hand_mm",
    }
    assert set(d["object_pose"]["rotation_hand_deg"]) == {"median", "p95"}
    assert len(d["per_frame"]["object_translation_hand_mm"]) == 4
    assert abs(d["object_scale_error_pct"]) == d["object_scale_error_abs_pct"]
    assert protocol["num_frames"] == 4
    assert protocol["fscore_thresholds_m"] == [0.005, 0.01]
    assert "scale" in protocol["alignment"]
    assert d["alignment"]["scale"] == pytest.approx(2.5, rel=0.02)


def test_missing_parts_give_none(asymmetric_mesh):
    joints = np.zeros((2, 21, 3))
    result = evaluate(HandObjectSequence(joints=joints), HandObjectSequence(joints=joints), FAST)
    assert result.mpjpe_mm == 0.0
    assert result.cd_cm2 is None and result.cd_h_cm2 is None and result.fscores == []
    result = evaluate(
        HandObjectSequence(object_mesh=asymmetric_mesh), HandObjectSequence(object_mesh=asymmetric_mesh), FAST
    )
    assert result.mpjpe_mm is None and result.cd_h_cm2 is None
    assert result.cd_cm2 < 0.1  # same mesh, independent samples: only the sampling-noise floor
    assert result.protocol.frames_gt_valid == []
    assert result.object_scale_error_pct == pytest.approx(0.0, abs=2.0) and result.pose_errors is None


def test_sampling_is_reproducible_and_on_the_surface():
    box = trimesh.creation.box((0.1, 0.02, 0.02))
    a = sample_surface(box, 5000, seed=7)
    np.testing.assert_array_equal(a, sample_surface(box, 5000, seed=7))
    assert not np.array_equal(a, sample_surface(box, 5000, seed=8))
    on_face = np.isclose(np.abs(a), [0.05, 0.01, 0.01]).any(axis=1)
    assert on_face.all()
    # Area weighting: the two 2×2 cm end faces hold 0.0008 of the 0.0088 m² surface.
    assert np.mean(np.isclose(np.abs(a[:, 0]), 0.05)) == pytest.approx(0.0008 / 0.0088, abs=0.02)


def test_input_errors_are_clear(asymmetric_mesh):
    joints = np.zeros((4, 21, 3))
    with pytest.raises(
        ValueError, match=r"pred\.joints: expected 4 frames \(as gt\.joints\), found shape \(3, 21, 3\)"
    ):
        evaluate(HandObjectSequence(joints=joints[:3]), HandObjectSequence(joints=joints), FAST)
    with pytest.raises(ValueError, match=r"pred\.object_to_camera: expected 4 frames \(as gt\.joints\)"):
        evaluate(
            HandObjectSequence(object_to_camera=np.zeros((5, 4, 4))), HandObjectSequence(joints=joints), FAST
        )
    with pytest.raises(ValueError, match=r"gt\.valid: no valid frames \(all 4 are False\)"):
        evaluate(
            HandObjectSequence(joints=joints),
            HandObjectSequence(joints=joints, valid=np.zeros(4, bool)),
            FAST,
        )
    empty = trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), int))
    with pytest.raises(ValueError, match=r"pred\.object_mesh: expected a mesh with faces of shape \(F, 3\)"):
        evaluate(HandObjectSequence(object_mesh=empty), HandObjectSequence(object_mesh=asymmetric_mesh), FAST)


def test_similarity_matrices_accept_axis_angle():
    rotvec = np.array([[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]])
    trans = np.ones((2, 3))
    from_vec = similarity_matrices(rotvec, trans, 2.0)
    from_mat = similarity_matrices(Rotation.from_rotvec(rotvec).as_matrix(), trans, 2.0)
    np.testing.assert_allclose(from_vec, from_mat)
    np.testing.assert_allclose(from_vec[1], [[2, 0, 0, 1], [0, 2, 0, 1], [0, 0, 2, 1], [0, 0, 0, 1]])
    with pytest.raises(ValueError, match=r"translation: expected shape \(2, 3\), found \(3, 3\)"):
        similarity_matrices(rotvec, np.ones((3, 3)))


def test_config_loads_through_the_strict_loader():
    cfg = from_dict(EvalConfig, {"num_surface_samples": 500, "fscore_thresholds_m": [0.002, 0.005]})
    assert cfg.fscore_thresholds_m == (0.002, 0.005)
