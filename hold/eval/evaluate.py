"""The whole evaluation of one sequence: predictions + ground truth in, a structured result out.

Implements the protocol of HOLD §4 / docs/evaluation.md. No file I/O here: the caller loads the meshes and
arrays (e.g. EXPORT/object_canonical.ply, joints.npz, SEQ/gt/) and writes ``result.to_dict()`` as
metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from hold.config.eval import EvalConfig
from hold.data.sequence import NUM_KEYPOINTS
from hold.eval.align import align_similarity
from hold.eval.metrics import (
    chamfer_distance,
    check_frames,
    check_root_index,
    check_valid,
    fscore,
    hand_relative_chamfer_cm2,
    mpjpe_per_frame_mm,
)
from hold.eval.pose_error import object_pose_errors, split_similarity
from hold.eval.result import PROTOCOL_NAME, UNITS, EvalProtocol, EvalResult, FScoreResult
from hold.geometry.surface import sample_surface
from hold.utils.units import M2_TO_CM2

__all__ = [
    "PROTOCOL_NAME",
    "UNITS",
    "EvalProtocol",
    "EvalResult",
    "FScoreResult",
    "HandObjectSequence",
    "evaluate",
    "similarity_matrices",
]


@dataclass
class HandObjectSequence:
    """What the metrics read of one side (prediction or ground truth); any part may be missing.

    Attributes:
        joints: (T, 21, 3) hand keypoints in the camera frame, metres (common order, docs/formats.md).
            The prediction gives them on every frame (the poses the model used), detected or not.
        object_mesh: the object mesh in its own frame (prediction: canonical; GT: gt/object.ply).
        object_to_camera: (T, 4, 4) object frame → camera similarity per frame (see
            ``similarity_matrices``); needed with ``joints`` for CD_h and for the pose errors.
        valid: (T,) bool; GT: frames with usable ground truth (the frames scored); prediction: frames
            where the hand was detected (the ``*_detected`` figures). All when None.
    """

    joints: np.ndarray | None = None
    object_mesh: trimesh.Trimesh | None = None
    object_to_camera: np.ndarray | None = None
    valid: np.ndarray | None = None


def similarity_matrices(rotation: np.ndarray, translation: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Stack per-frame ``x -> scale * R_t x + t_t`` as (T, 4, 4) matrices.

    Args:
        rotation: (T, 3, 3) rotation matrices or (T, 3) axis-angle (e.g. SEQ ``object.rot``).
        translation: (T, 3) translations, metres.
        scale: object scale (e.g. SEQ ``object.scale``); 1 for the GT mesh, already in metres.

    Returns:
        (T, 4, 4) homogeneous matrices.
    """
    rot = np.asarray(rotation, dtype=np.float64)
    trans = np.asarray(translation, dtype=np.float64)
    if rot.ndim == 2 and rot.shape[1] == 3:
        rot = Rotation.from_rotvec(rot).as_matrix().reshape(-1, 3, 3)
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise ValueError(f"rotation: expected shape (T, 3, 3) or (T, 3), found {np.shape(rotation)}")
    if trans.shape != (rot.shape[0], 3):
        raise ValueError(f"translation: expected shape ({rot.shape[0]}, 3), found {trans.shape}")
    out = np.tile(np.eye(4), (rot.shape[0], 1, 1))
    out[:, :3, :3] = float(scale) * rot
    out[:, :3, 3] = trans
    return out


def evaluate(pred: HandObjectSequence, gt: HandObjectSequence, cfg: EvalConfig | None = None) -> EvalResult:
    """Compute MPJPE, CD, F-scores, CD_h, the object scale error and pose errors (HOLD §4, docs/evaluation.md).

    - MPJPE needs ``joints`` on both sides; CD, F-scores and the scale error need ``object_mesh`` on
      both sides; CD_h needs ``joints``, ``object_mesh`` and ``object_to_camera`` on both sides; the
      pose errors need ``object_mesh`` and ``object_to_camera`` (and ``joints`` for the hand-relative
      ones) on both sides.
    - The headline per-frame metrics average over ALL GT-valid frames, scored with the predicted
      values of every frame (a frame where the hand detector failed still counts); the
      ``*_detected`` figures average over GT valid ∧ prediction valid (None when empty).
    - Both meshes are sampled with ``cfg.num_surface_samples`` points (pred with ``cfg.seed``, GT with
      ``cfg.seed + 1``); the same samples serve the alignment, CD, F-scores and CD_h.

    Args:
        pred: the reconstruction (EXPORT: joints.npz, object_canonical.ply, refined object poses).
        gt: the ground truth (SEQ/gt/: gt.npz, object.ply).
        cfg: evaluation settings; defaults when None.

    Returns:
        The metrics with the protocol used.

    Raises:
        ValueError: inconsistent shapes, or no GT-valid frame.
    """
    cfg = cfg or EvalConfig()
    check_root_index(cfg.root_index)
    num_frames = _num_frames(pred, gt)
    scored = detected = None
    if num_frames is not None:
        scored = check_valid(gt.valid, num_frames, "gt.valid")
        detected = scored & check_valid(pred.valid, num_frames, "pred.valid", allow_empty=True)
    result = EvalResult(protocol=_protocol(cfg, num_frames, scored, detected))
    if pred.joints is not None and gt.joints is not None:
        result.mpjpe_per_frame_mm = mpjpe_per_frame_mm(pred.joints, gt.joints, scored, cfg.root_index)
        result.mpjpe_mm, result.mpjpe_detected_mm = _means(result.mpjpe_per_frame_mm, scored, detected)
    if pred.object_mesh is None or gt.object_mesh is None:
        return result

    pred_pts = sample_surface(pred.object_mesh, cfg.num_surface_samples, cfg.seed, "pred.object_mesh")
    gt_pts = sample_surface(gt.object_mesh, cfg.num_surface_samples, cfg.seed + 1, "gt.object_mesh")
    result.alignment = align_similarity(pred_pts, gt_pts, cfg)
    aligned = result.alignment.transform.apply(pred_pts)
    result.cd_cm2 = chamfer_distance(aligned, gt_pts) * M2_TO_CM2
    for tau in cfg.fscore_thresholds_m:
        result.fscores.append(FScoreResult(tau, *fscore(aligned, gt_pts, tau)))
    # The alignment scale s maps the prediction onto GT: the predicted object is 1/s times the GT
    # size, times the ratio of the scales the poses apply (1 for metric meshes).
    pose_scale = _pose_scale(pred.object_to_camera, scored) / _pose_scale(gt.object_to_camera, scored)
    result.object_size_ratio = pose_scale / float(result.alignment.transform.scale)

    if pred.object_to_camera is None or gt.object_to_camera is None:
        return result
    with_joints = pred.joints is not None and gt.joints is not None
    result.pose_errors = object_pose_errors(
        pred.object_to_camera,
        gt.object_to_camera,
        result.alignment.transform.matrix(),
        gt.object_mesh.centroid,
        scored,
        pred.joints if with_joints else None,
        gt.joints if with_joints else None,
    )
    if with_joints:
        _, result.cd_h_per_frame_cm2 = hand_relative_chamfer_cm2(
            pred_pts,
            pred.object_to_camera,
            np.asarray(pred.joints)[:, cfg.root_index],
            gt_pts,
            gt.object_to_camera,
            np.asarray(gt.joints)[:, cfg.root_index],
            scored,
        )
        result.cd_h_cm2, result.cd_h_detected_cm2 = _means(result.cd_h_per_frame_cm2, scored, detected)
    return result


def _protocol(
    cfg: EvalConfig, num_frames: int | None, scored: np.ndarray | None, detected: np.ndarray | None
) -> EvalProtocol:
    frames = lambda mask: [] if mask is None else np.flatnonzero(mask).tolist()  # noqa: E731
    return EvalProtocol(
        num_frames=num_frames or 0,
        frames_gt_valid=frames(scored),
        frames_detected=frames(detected),
        num_surface_samples=cfg.num_surface_samples,
        seed=cfg.seed,
        fscore_thresholds_m=list(cfg.fscore_thresholds_m),
        root_index=cfg.root_index,
        alignment="similarity (rotation, translation, scale), reconstruction → GT",
        alignment_method="centroid + RMS-scale normalisation, ICP from each initial rotation on a subset, "
        "best start refined by symmetric ICP with Umeyama steps on all samples",
        init_rotations=cfg.init_rotations,
        icp_coarse_num_points=cfg.icp_coarse_num_points,
        icp_coarse_iterations=cfg.icp_coarse_iterations,
        icp_max_iterations=cfg.icp_max_iterations,
        icp_tolerance=cfg.icp_tolerance,
        pose_error_percentile=cfg.pose_error_percentile,
        units=dict(UNITS),
    )


def _means(per_frame: np.ndarray, scored: np.ndarray, detected: np.ndarray) -> tuple[float, float | None]:
    """Means of a per-frame metric over the scored (GT-valid) and the detected frames (None if none)."""
    det = float(np.mean(per_frame[detected])) if detected.any() else None
    return float(np.mean(per_frame[scored])), det


def _pose_scale(object_to_camera: np.ndarray | None, scored: np.ndarray | None) -> float:
    """Median scale the per-frame poses apply over the scored frames (1 without poses)."""
    if object_to_camera is None:
        return 1.0
    _, scale, _ = split_similarity(np.asarray(object_to_camera)[scored])
    return float(np.median(scale))


def _num_frames(pred: HandObjectSequence, gt: HandObjectSequence) -> int | None:
    """The common frame count T of every per-frame array given; a ValueError names the first mismatch."""
    num_frames: int | None = None
    first = ""
    for side_name, side in (("gt", gt), ("pred", pred)):
        for key, tail in (("joints", (NUM_KEYPOINTS, 3)), ("object_to_camera", (4, 4)), ("valid", ())):
            value = getattr(side, key)
            if value is None:
                continue
            name = f"{side_name}.{key}"
            shape = check_frames(value, name, None, tail).shape
            if num_frames is None:
                num_frames, first = shape[0], name
            elif shape[0] != num_frames:
                raise ValueError(f"{name}: expected {num_frames} frames (as {first}), found shape {shape}")
    return num_frames
