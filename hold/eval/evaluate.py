"""The whole evaluation of one sequence: predictions + ground truth in, a structured result out.

Implements the protocol of HOLD §4 / DESIGN.md §6. No file I/O here: the caller loads the meshes and
arrays (e.g. EXPORT/object_canonical.ply, joints.npz, SEQ/gt/) and writes ``result.to_dict()`` as
metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from hold.eval.align import Alignment, align_similarity
from hold.eval.config import EvalConfig
from hold.eval.metrics import (
    M2_TO_CM2,
    M_TO_MM,
    NUM_KEYPOINTS,
    chamfer_distance,
    check_frames,
    check_root_index,
    check_valid,
    fscore,
    hand_relative_chamfer_cm2,
    mpjpe_mm,
)
from hold.eval.surface import sample_surface

PROTOCOL_NAME = "HOLD (CVPR 2024) §4"
UNITS = {
    "mpjpe_mm": "mm, root-relative (keypoint root_index), mean over frames_used and 21 keypoints",
    "cd_cm2": "cm², squared distances, mean of both directions summed, after alignment",
    "fscore": "%, at fscore_thresholds_m, after alignment",
    "cd_h_cm2": "cm², as cd_cm2 but hand-root-relative per frame without alignment, mean over frames_used",
}


@dataclass
class HandObjectSequence:
    """What the metrics read of one side (prediction or ground truth); any part may be missing.

    Attributes:
        joints: (T, 21, 3) hand keypoints in the camera frame, metres (common order, DESIGN.md §3).
        object_mesh: the object mesh in its own frame (prediction: canonical; GT: gt/object.ply).
        object_to_camera: (T, 4, 4) object frame → camera similarity per frame (see
            ``similarity_matrices``); needed with ``joints`` for CD_h.
        valid: (T,) bool frames whose values are usable; all when None.
    """

    joints: np.ndarray | None = None
    object_mesh: trimesh.Trimesh | None = None
    object_to_camera: np.ndarray | None = None
    valid: np.ndarray | None = None


@dataclass
class FScoreResult:
    """F-score at one threshold (percent)."""

    threshold_m: float
    precision: float
    recall: float
    fscore: float


@dataclass
class EvalProtocol:
    """How the numbers were obtained, recorded beside them in metrics.json."""

    num_frames: int
    frames_used: list[int]
    num_surface_samples: int
    seed: int
    fscore_thresholds_m: list[float]
    root_index: int
    alignment: str
    alignment_method: str
    init_rotations: str
    icp_coarse_num_points: int
    icp_coarse_iterations: int
    icp_max_iterations: int
    icp_tolerance: float
    units: dict[str, str]


@dataclass
class EvalResult:
    """All metrics of one sequence; a metric is None when its inputs are missing on either side.

    Attributes:
        mpjpe_mm: root-relative MPJPE over the frames used, mm.
        cd_cm2: object Chamfer distance after similarity alignment, cm².
        fscores: F-score per threshold, on the same alignment.
        cd_h_cm2: hand-relative object Chamfer distance, mean over the frames used, cm².
        cd_h_per_frame_cm2: (T,) CD_h per frame, NaN where unused.
        alignment: the prediction → GT object alignment behind ``cd_cm2`` and ``fscores``.
        protocol: the settings and frames used.
    """

    protocol: EvalProtocol
    mpjpe_mm: float | None = None
    cd_cm2: float | None = None
    fscores: list[FScoreResult] = field(default_factory=list)
    cd_h_cm2: float | None = None
    cd_h_per_frame_cm2: np.ndarray | None = None
    alignment: Alignment | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for metrics.json: headline numbers, F-score details, alignment, protocol."""
        out: dict[str, Any] = {"mpjpe_mm": self.mpjpe_mm, "cd_cm2": self.cd_cm2}
        for f in self.fscores:
            out[f"f{f.threshold_m * M_TO_MM:g}"] = f.fscore  # "f5", "f10" as in HOLD's tables
        out["cd_h_cm2"] = self.cd_h_cm2
        out["fscore"] = [
            {
                "threshold_mm": f.threshold_m * M_TO_MM,
                "precision": f.precision,
                "recall": f.recall,
                "fscore": f.fscore,
            }
            for f in self.fscores
        ]
        if self.alignment is not None:
            t = self.alignment.transform
            out["alignment"] = {
                "scale": float(t.scale),
                "rotation": t.rotation.tolist(),
                "translation": t.translation.tolist(),
                "icp_iterations": self.alignment.iterations,
                "num_starts": self.alignment.num_starts,
            }
        if self.cd_h_per_frame_cm2 is not None:
            out["per_frame"] = {
                "cd_h_cm2": [None if np.isnan(v) else float(v) for v in self.cd_h_per_frame_cm2]
            }
        out["protocol"] = {"name": PROTOCOL_NAME, **vars(self.protocol)}
        return out


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
    """Compute MPJPE, CD, F-scores and CD_h of a reconstruction against ground truth (HOLD §4).

    - MPJPE needs ``joints`` on both sides; CD and F-scores need ``object_mesh`` on both sides;
      CD_h needs all of ``joints``, ``object_mesh`` and ``object_to_camera`` on both sides.
    - Frames used = GT valid ∧ prediction valid; MPJPE and CD_h average over the same frames.
    - Both meshes are sampled with ``cfg.num_surface_samples`` points (pred with ``cfg.seed``, GT with
      ``cfg.seed + 1``); the same samples serve the alignment, CD, F-scores and CD_h.

    Args:
        pred: the reconstruction (EXPORT: joints.npz, object_canonical.ply, refined object poses).
        gt: the ground truth (SEQ/gt/: gt.npz, object.ply).
        cfg: evaluation settings; defaults when None.

    Returns:
        The metrics with the protocol used.
    """
    cfg = cfg or EvalConfig()
    check_root_index(cfg.root_index)
    num_frames = _num_frames(pred, gt)
    mask = None
    if num_frames is not None:
        mask = check_valid(gt.valid, num_frames, "gt.valid") & check_valid(
            pred.valid, num_frames, "pred.valid"
        )
        if not mask.any():
            raise ValueError(f"pred.valid & gt.valid: no valid frames in common (of {num_frames})")
    protocol = EvalProtocol(
        num_frames=num_frames or 0,
        frames_used=[] if mask is None else np.flatnonzero(mask).tolist(),
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
        units=dict(UNITS),
    )
    result = EvalResult(protocol=protocol)
    if pred.joints is not None and gt.joints is not None:
        result.mpjpe_mm = mpjpe_mm(pred.joints, gt.joints, mask, cfg.root_index)
    if pred.object_mesh is None or gt.object_mesh is None:
        return result

    pred_pts = sample_surface(pred.object_mesh, cfg.num_surface_samples, cfg.seed, "pred.object_mesh")
    gt_pts = sample_surface(gt.object_mesh, cfg.num_surface_samples, cfg.seed + 1, "gt.object_mesh")
    result.alignment = align_similarity(pred_pts, gt_pts, cfg)
    aligned = result.alignment.transform.apply(pred_pts)
    result.cd_cm2 = chamfer_distance(aligned, gt_pts) * M2_TO_CM2
    for tau in cfg.fscore_thresholds_m:
        result.fscores.append(FScoreResult(tau, *fscore(aligned, gt_pts, tau)))

    sides = (pred.joints, gt.joints, pred.object_to_camera, gt.object_to_camera)
    if all(x is not None for x in sides):
        result.cd_h_cm2, result.cd_h_per_frame_cm2 = hand_relative_chamfer_cm2(
            pred_pts,
            pred.object_to_camera,
            np.asarray(pred.joints)[:, cfg.root_index],
            gt_pts,
            gt.object_to_camera,
            np.asarray(gt.joints)[:, cfg.root_index],
            mask,
        )
    return result


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
