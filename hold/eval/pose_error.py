"""Per-frame object pose errors: the object's motion since a reference frame and its pose in the hand.

docs/evaluation.md. CD and F-scores judge the canonical shape after a similarity alignment and CD_h mixes
shape and pose; these errors judge the poses alone, per frame:

- **relative to the reference frame** (the first GT-valid frame): the object's motion
  ``T_t · T_ref⁻¹``. Rotation error = angle of ``R_rel_pred · R_rel_gtᵀ`` with ``R_rel = R_t R_refᵀ``;
  translation error = ``|(c_t − c_ref)_pred − (c_t − c_ref)_gt|`` where ``c_t`` is the GT mesh centroid
  posed by each side (the prediction reaches the GT object frame through the CD alignment).
- **relative to the hand**: the object's rotation in a hand frame built from the joints (same
  construction on both sides) and the object centroid relative to the wrist (camera axes, as CD_h).
  The rotation is compared up to one constant rotation of the object frame, fitted over all scored
  frames (``pose_frame_offset``): the shape alignment cannot fix the roll of a symmetric object (a
  bottle, a can), so without it a perfect track of a bottle can read tens of degrees.

Pure numpy; inputs in metres, errors in degrees and millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hold.eval.metrics import check_frames, check_joints
from hold.utils.units import M_TO_MM

WRIST, INDEX_BASE, MIDDLE_BASE, LITTLE_BASE = 0, 5, 9, 17
"""Keypoints spanning the hand frame, in the common 21-keypoint order (docs/formats.md)."""
_DEGENERATE_M = 1e-9
"""Below this length (m) a hand-frame axis is undefined (coincident keypoints)."""


@dataclass
class ErrorStats:
    """Median and upper percentile of one per-frame error over the frames scored.

    Attributes:
        median: median error.
        percentile: the upper percentile (``EvalConfig.pose_error_percentile``) of the error.
        percentile_q: which percentile ``percentile`` is, e.g. 95.
    """

    median: float
    percentile: float
    percentile_q: float

    def to_dict(self) -> dict[str, float]:
        """``{"median": ..., "p95": ...}`` (the key names the percentile)."""
        return {"median": self.median, f"p{self.percentile_q:g}": self.percentile}


@dataclass
class PoseErrors:
    """Per-frame object pose errors, NaN on frames not scored (e.g. GT-invalid).

    Attributes:
        reference_frame: the frame the motion is measured from.
        rotation_rel_ref_deg: (T,) rotation error of the motion since ``reference_frame``, degrees.
        translation_rel_ref_mm: (T,) translation error of that motion (GT centroid), mm.
        rotation_hand_deg: (T,) error of the object rotation in the hand frame, degrees; None
            without joints on both sides.
        translation_hand_mm: (T,) error of the object centroid relative to the wrist, mm; None
            without joints.
    """

    reference_frame: int
    rotation_rel_ref_deg: np.ndarray
    translation_rel_ref_mm: np.ndarray
    rotation_hand_deg: np.ndarray | None = None
    translation_hand_mm: np.ndarray | None = None

    def named(self) -> dict[str, np.ndarray]:
        """The per-frame arrays present, by their metrics.json names (``object_pose`` keys)."""
        named = {
            "rotation_rel_ref_deg": self.rotation_rel_ref_deg,
            "translation_rel_ref_mm": self.translation_rel_ref_mm,
            "rotation_hand_deg": self.rotation_hand_deg,
            "translation_hand_mm": self.translation_hand_mm,
        }
        return {k: v for k, v in named.items() if v is not None}

    def summary(self, valid: np.ndarray, percentile: float) -> dict[str, ErrorStats]:
        """Median and ``percentile`` of each error over the ``valid`` frames, by metrics.json name."""
        return {k: error_stats(v, valid, percentile) for k, v in self.named().items()}


def rotation_angle_deg(rotations: np.ndarray) -> np.ndarray:
    """Rotation angle of (..., 3, 3) rotation matrices, degrees in [0, 180].

    Uses ``atan2(|axis|, trace − 1)``, accurate near 0° and 180° alike (unlike ``arccos``).
    """
    r = np.asarray(rotations, dtype=np.float64)
    axis = np.stack(
        [r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], axis=-1
    )
    trace = np.trace(r, axis1=-2, axis2=-1)
    return np.degrees(np.arctan2(np.linalg.norm(axis, axis=-1), trace - 1.0))


def pose_frame_offset(pred_rot: np.ndarray, gt_rot: np.ndarray) -> np.ndarray:
    """The constant rotation Q (3, 3) that best maps ``pred_rot[t] @ Q`` onto ``gt_rot[t]`` (least squares
    over the frames: the rotation nearest to the sum of ``pred_rot[t]ᵀ gt_rot[t]``)."""
    u, _, vt = np.linalg.svd(np.einsum("tji,tjk->ik", pred_rot, gt_rot))
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return u @ fix @ vt


def split_similarity(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split (T, 4, 4) similarity matrices ``x -> s R x + t`` into their parts.

    The rotation is the nearest proper rotation (polar decomposition), so small numerical
    non-orthogonality is tolerated.

    Returns:
        (R, s, t): (T, 3, 3) rotations, (T,) scales (mean singular value), (T, 3) translations.
    """
    m = check_frames(matrices, "matrices", None, (4, 4))
    u, sv, vt = np.linalg.svd(m[:, :3, :3])
    fix = np.ones_like(sv)
    fix[:, 2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ (fix[:, :, None] * vt)
    return rot, sv.mean(axis=1), m[:, :3, 3]


def transform_point(matrices: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Apply (T, 4, 4) transforms to one (3,) point; returns (T, 3)."""
    m = np.asarray(matrices, dtype=np.float64)
    return m[:, :3, :3] @ np.asarray(point, dtype=np.float64) + m[:, :3, 3]


def hand_frames(joints: np.ndarray, name: str = "joints", frame_ids: np.ndarray | None = None) -> np.ndarray:
    """Orthonormal hand frames (T, 3, 3) from keypoints; columns are the axes in the camera frame.

    x points from the wrist to the middle-finger base; z is the palm normal ``(index − wrist) ×
    (little − wrist)`` made orthogonal to x; y = z × x. A left hand gets the mirrored palm normal,
    which is fine as long as both sides of a comparison are the same hand.

    Args:
        joints: (T, 21, 3) keypoints in the common order.
        name: the array's name in error messages.
        frame_ids: (T,) the frame numbers of the rows, for error messages; 0..T-1 when None.

    Raises:
        ValueError: a frame whose keypoints do not span a frame (coincident or collinear).
    """
    j = check_joints(joints, name)
    x = j[:, MIDDLE_BASE] - j[:, WRIST]
    normal = np.cross(j[:, INDEX_BASE] - j[:, WRIST], j[:, LITTLE_BASE] - j[:, WRIST])
    x_len = np.linalg.norm(x, axis=1, keepdims=True)
    z = normal - np.sum(normal * x, axis=1, keepdims=True) * x / np.maximum(x_len, _DEGENERATE_M) ** 2
    z_len = np.linalg.norm(z, axis=1, keepdims=True)
    bad = np.flatnonzero((x_len[:, 0] < _DEGENERATE_M) | (z_len[:, 0] < _DEGENERATE_M))
    if bad.size:
        bad = bad if frame_ids is None else np.asarray(frame_ids)[bad]
        raise ValueError(
            f"{name}: keypoints {WRIST}, {INDEX_BASE}, {MIDDLE_BASE}, {LITTLE_BASE} span no hand frame "
            f"in frames {bad.tolist()} (coincident or collinear)"
        )
    x, z = x / x_len, z / z_len
    return np.stack([x, np.cross(z, x), z], axis=-1)


def motion_errors(
    pred_rot: np.ndarray, pred_point: np.ndarray, gt_rot: np.ndarray, gt_point: np.ndarray, reference: int
) -> tuple[np.ndarray, np.ndarray]:
    """Errors of the object motion since frame ``reference``.

    Args:
        pred_rot: (T, 3, 3) predicted object rotations (object → camera).
        pred_point: (T, 3) a tracked object point as posed by the prediction, metres.
        gt_rot: (T, 3, 3) GT object rotations.
        gt_point: (T, 3) the same object point as posed by the GT, metres.
        reference: index of the reference frame.

    Returns:
        (rotation_deg, translation_mm), each (T,); 0 at the reference frame.
    """
    rel_pred = pred_rot @ pred_rot[reference].T
    rel_gt = gt_rot @ gt_rot[reference].T
    rot_err = rotation_angle_deg(rel_pred @ np.swapaxes(rel_gt, -1, -2))
    moved = (pred_point - pred_point[reference]) - (gt_point - gt_point[reference])
    return rot_err, np.linalg.norm(moved, axis=1) * M_TO_MM


def hand_relative_errors(
    pred_rot: np.ndarray,
    pred_point: np.ndarray,
    pred_joints: np.ndarray,
    gt_rot: np.ndarray,
    gt_point: np.ndarray,
    gt_joints: np.ndarray,
    frame_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Errors of the object pose relative to the hand.

    Rotation: angle between ``H_tᵀ R_t`` of both sides (``H_t`` from ``hand_frames``). Translation:
    ``|(c_t − wrist_t)_pred − (c_t − wrist_t)_gt|`` in camera axes (like CD_h, it does not depend on
    the hand rotation estimate).

    Args:
        pred_rot: (T, 3, 3) predicted object rotations, expressed for the GT object frame.
        pred_point: (T, 3) the tracked object point (GT centroid) as posed by the prediction.
        pred_joints: (T, 21, 3) predicted keypoints.
        gt_rot: (T, 3, 3) GT object rotations.
        gt_point: (T, 3) the same point as posed by the GT.
        gt_joints: (T, 21, 3) GT keypoints.
        frame_ids: (T,) frame numbers of the rows, for error messages.

    Returns:
        (rotation_deg, translation_mm), each (T,).
    """
    in_hand_pred = np.swapaxes(hand_frames(pred_joints, "pred_joints", frame_ids), -1, -2) @ pred_rot
    in_hand_gt = np.swapaxes(hand_frames(gt_joints, "gt_joints", frame_ids), -1, -2) @ gt_rot
    rot_err = rotation_angle_deg(in_hand_pred @ np.swapaxes(in_hand_gt, -1, -2))
    offset = (pred_point - np.asarray(pred_joints)[:, WRIST]) - (gt_point - np.asarray(gt_joints)[:, WRIST])
    return rot_err, np.linalg.norm(offset, axis=1) * M_TO_MM


def object_pose_errors(
    pred_to_camera: np.ndarray,
    gt_to_camera: np.ndarray,
    pred_to_gt_object: np.ndarray,
    gt_centroid: np.ndarray,
    valid: np.ndarray,
    pred_joints: np.ndarray | None = None,
    gt_joints: np.ndarray | None = None,
) -> PoseErrors:
    """All per-frame object pose errors of a prediction (see the module docstring).

    Args:
        pred_to_camera: (T, 4, 4) predicted object frame → camera similarities.
        gt_to_camera: (T, 4, 4) GT object frame → camera similarities.
        pred_to_gt_object: (4, 4) the CD alignment, predicted object frame → GT object frame.
        gt_centroid: (3,) the GT object's centroid in its own frame, the tracked point.
        valid: (T,) bool frames to score (at least one); the first is the reference frame.
        pred_joints: (T, 21, 3) predicted keypoints; with ``gt_joints`` gives the hand-relative errors.
        gt_joints: (T, 21, 3) GT keypoints.

    Returns:
        The per-frame errors, NaN outside ``valid``.
    """
    mask = np.asarray(valid, bool)
    frames = np.flatnonzero(mask)
    if frames.size == 0:
        raise ValueError("valid: no frames to score")
    # The prediction expressed in the GT object frame: x_cam = P_t A⁻¹ x_gt.
    pred_in_gt = check_frames(pred_to_camera, "pred_to_camera", mask.shape[0], (4, 4)) @ np.linalg.inv(
        pred_to_gt_object
    )
    gt_m = check_frames(gt_to_camera, "gt_to_camera", mask.shape[0], (4, 4))
    pred_rot, _, _ = split_similarity(pred_in_gt[frames])
    gt_rot, _, _ = split_similarity(gt_m[frames])
    pred_c = transform_point(pred_in_gt[frames], gt_centroid)
    gt_c = transform_point(gt_m[frames], gt_centroid)

    def full(values: np.ndarray) -> np.ndarray:
        out = np.full(mask.shape[0], np.nan)
        out[frames] = values
        return out

    rot, trans = motion_errors(pred_rot, pred_c, gt_rot, gt_c, 0)
    result = PoseErrors(int(frames[0]), full(rot), full(trans))
    if pred_joints is not None and gt_joints is not None:
        pj = check_joints(pred_joints, "pred_joints", mask.shape[0])[frames]
        gj = check_joints(gt_joints, "gt_joints", mask.shape[0])[frames]
        # Right-multiplying by Q leaves the motion errors above unchanged; it only removes the
        # symmetric-object roll the shape alignment leaves open (module docstring).
        offset = pose_frame_offset(pred_rot, gt_rot)
        rot_h, trans_h = hand_relative_errors(pred_rot @ offset, pred_c, pj, gt_rot, gt_c, gj, frames)
        result.rotation_hand_deg, result.translation_hand_mm = full(rot_h), full(trans_h)
    return result


def error_stats(per_frame: np.ndarray, valid: np.ndarray, percentile: float) -> ErrorStats:
    """Median and ``percentile``-th percentile of ``per_frame`` over the ``valid`` frames."""
    values = np.asarray(per_frame, dtype=np.float64)[np.asarray(valid, bool)]
    return ErrorStats(float(np.median(values)), float(np.percentile(values, percentile)), float(percentile))
