"""Pure metric functions of the HOLD protocol (HOLD §4, docs/evaluation.md): arrays in, numbers out.

Inputs are in metres; MPJPE is reported in millimetres, Chamfer distances in cm² (squared
distances, both directions summed) and F-scores in percent.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from hold.data.sequence import NUM_KEYPOINTS
from hold.geometry.surface import check_points
from hold.utils.units import M2_TO_CM2, M_TO_MM


class FScore(NamedTuple):
    """Precision, recall and F-score at one threshold, in percent."""

    precision: float
    recall: float
    fscore: float


def check_valid(
    valid: np.ndarray | None, num_frames: int, name: str = "valid", allow_empty: bool = False
) -> np.ndarray:
    """Return a (T,) bool mask (all True when ``valid`` is None).

    Raises:
        ValueError: the shape is wrong, or no frame is set (unless ``allow_empty``).
    """
    mask = np.ones(num_frames, bool) if valid is None else np.asarray(valid)
    if mask.shape != (num_frames,):
        raise ValueError(f"{name}: expected shape ({num_frames},), found {mask.shape}")
    mask = mask.astype(bool)
    if not (mask.any() or allow_empty):
        raise ValueError(f"{name}: no valid frames (all {num_frames} are False)")
    return mask


def check_frames(arr: np.ndarray, name: str, num_frames: int | None, tail: tuple[int, ...]) -> np.ndarray:
    """Return ``arr`` as float64 of shape (T, *tail), T = ``num_frames`` when given; else a ValueError."""
    out = np.asarray(arr, dtype=np.float64)
    if out.ndim != 1 + len(tail) or out.shape[1:] != tail or num_frames not in (None, out.shape[0]):
        t = "T" if num_frames is None else num_frames
        raise ValueError(f"{name}: expected shape {_fmt((t, *tail))}, found {out.shape}")
    return out


def check_root_index(root_index: int) -> None:
    """Raise a ValueError unless ``root_index`` names one of the 21 keypoints."""
    if not 0 <= root_index < NUM_KEYPOINTS:
        raise ValueError(f"root_index: expected 0..{NUM_KEYPOINTS - 1}, found {root_index}")


def check_joints(joints: np.ndarray, name: str, num_frames: int | None = None) -> np.ndarray:
    """Return ``joints`` as float64 (T, 21, 3), checking the frame count when ``num_frames`` is given."""
    return check_frames(joints, name, num_frames, (NUM_KEYPOINTS, 3))


def mpjpe_mm(
    pred_joints: np.ndarray, gt_joints: np.ndarray, valid: np.ndarray | None = None, root_index: int = 0
) -> float:
    """Root-relative mean per-joint position error over valid frames, in millimetres (HOLD §4).

    Each skeleton is translated so that its own root keypoint is at the origin, so a global
    translation of the prediction costs nothing.

    Args:
        pred_joints: (T, 21, 3) predicted keypoints, metres.
        gt_joints: (T, 21, 3) ground-truth keypoints, metres.
        valid: (T,) bool mask of frames to average over; all frames when None.
        root_index: keypoint subtracted from each skeleton (0 = wrist).

    Returns:
        Mean Euclidean error over the valid frames and the 21 keypoints, mm.
    """
    per_frame = mpjpe_per_frame_mm(pred_joints, gt_joints, valid, root_index)
    return float(np.nanmean(per_frame))


def mpjpe_per_frame_mm(
    pred_joints: np.ndarray, gt_joints: np.ndarray, valid: np.ndarray | None = None, root_index: int = 0
) -> np.ndarray:
    """Root-relative MPJPE of each frame (mean over the 21 keypoints), in millimetres.

    Every frame has 21 keypoints, so the mean of the per-frame values over some frames is the
    ``mpjpe_mm`` of those frames.

    Args:
        pred_joints: (T, 21, 3) predicted keypoints, metres.
        gt_joints: (T, 21, 3) ground-truth keypoints, metres.
        valid: (T,) bool mask of frames to score (at least one); all frames when None.
        root_index: keypoint subtracted from each skeleton (0 = wrist).

    Returns:
        (T,) errors in mm, NaN outside ``valid``.
    """
    check_root_index(root_index)
    pred = check_joints(pred_joints, "pred_joints")
    gt = check_joints(gt_joints, "gt_joints", pred.shape[0])
    mask = check_valid(valid, pred.shape[0])
    pred, gt = pred[mask], gt[mask]
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(gt))):
        raise ValueError("pred_joints/gt_joints: NaN or infinite keypoints in valid frames")
    pred_rel = pred - pred[:, root_index : root_index + 1]
    gt_rel = gt - gt[:, root_index : root_index + 1]
    out = np.full(mask.shape[0], np.nan)
    out[mask] = np.mean(np.linalg.norm(pred_rel - gt_rel, axis=-1), axis=1) * M_TO_MM
    return out


def nearest_distances(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance from each query point to its nearest reference point.

    Args:
        query: (N, 3) points.
        reference: (M, 3) points.

    Returns:
        (N,) distances, in the input units.
    """
    dist, _ = cKDTree(reference).query(query)
    return dist


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance with squared distances, both directions summed.

    ``CD = mean_a min_b |a - b|^2 + mean_b min_a |a - b|^2``, in squared input units (multiply
    metres² by ``M2_TO_CM2`` for the cm² that HOLD reports).

    Args:
        a: (N, 3) points.
        b: (M, 3) points.
    """
    a = check_points(a, "a")
    b = check_points(b, "b")
    return float(np.mean(nearest_distances(a, b) ** 2) + np.mean(nearest_distances(b, a) ** 2))


def fscore(pred: np.ndarray, gt: np.ndarray, threshold: float) -> FScore:
    """F-score of a reconstructed surface at one distance threshold (HOLD §4).

    Precision is the fraction of predicted samples within ``threshold`` of the ground truth, recall
    the fraction of ground-truth samples within ``threshold`` of the prediction (distance <= τ
    counts as a hit), and ``F = 2PR / (P + R)`` (0 when both are 0).

    Args:
        pred: (N, 3) samples of the reconstruction (already aligned).
        gt: (M, 3) samples of the ground truth.
        threshold: τ, in the units of the points.

    Returns:
        Precision, recall and F-score in percent.
    """
    pred = check_points(pred, "pred")
    gt = check_points(gt, "gt")
    if not threshold > 0:
        raise ValueError(f"threshold: expected a positive distance, found {threshold}")
    precision = float(np.mean(nearest_distances(pred, gt) <= threshold))
    recall = float(np.mean(nearest_distances(gt, pred) <= threshold))
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return FScore(100.0 * precision, 100.0 * recall, 100.0 * f)


def hand_relative_chamfer_cm2(
    pred_points: np.ndarray,
    pred_to_camera: np.ndarray,
    pred_root: np.ndarray,
    gt_points: np.ndarray,
    gt_to_camera: np.ndarray,
    gt_root: np.ndarray,
    valid: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Hand-relative object Chamfer distance CD_h, in cm² (HOLD §4, docs/evaluation.md).

    In each frame both objects are posed in the camera frame and expressed relative to their own
    hand root (the wrist), with no alignment: ``x_rel = A_t x + b_t - root_t``. The per-frame
    Chamfer distances are averaged over the valid frames. A rigid object needs only one set of
    canonical samples per side, posed per frame.

    Args:
        pred_points: (N, 3) samples of the predicted object surface, canonical frame.
        pred_to_camera: (T, 4, 4) predicted canonical → camera transforms (rotation·scale, translation).
        pred_root: (T, 3) predicted hand root in the camera frame, metres.
        gt_points: (M, 3) samples of the GT object surface in its own frame, metres.
        gt_to_camera: (T, 4, 4) GT object frame → camera transforms.
        gt_root: (T, 3) GT hand root in the camera frame, metres.
        valid: (T,) bool mask; all frames when None.

    Returns:
        (mean, per_frame): the mean over valid frames in cm², and (T,) per-frame values in cm²
        (NaN on invalid frames).
    """
    pred_points = check_points(pred_points, "pred_points")
    gt_points = check_points(gt_points, "gt_points")
    pred_to_camera = check_frames(pred_to_camera, "pred_to_camera", None, (4, 4))
    num_frames = pred_to_camera.shape[0]
    mats = {
        "pred_to_camera": pred_to_camera,
        "gt_to_camera": check_frames(gt_to_camera, "gt_to_camera", num_frames, (4, 4)),
        "pred_root": check_frames(pred_root, "pred_root", num_frames, (3,)),
        "gt_root": check_frames(gt_root, "gt_root", num_frames, (3,)),
    }
    mask = check_valid(valid, num_frames)
    for name, arr in mats.items():
        if not np.all(np.isfinite(arr[mask])):
            raise ValueError(f"{name}: NaN or infinite values in valid frames")
    per_frame = np.full(num_frames, np.nan)
    for t in np.flatnonzero(mask):
        pred_rel = _transform(pred_points, mats["pred_to_camera"][t]) - mats["pred_root"][t]
        gt_rel = _transform(gt_points, mats["gt_to_camera"][t]) - mats["gt_root"][t]
        per_frame[t] = chamfer_distance(pred_rel, gt_rel) * M2_TO_CM2
    return float(np.mean(per_frame[mask])), per_frame


def _transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"
