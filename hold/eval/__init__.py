"""Evaluation of hand and object reconstructions: MPJPE, CD, F-score, CD_h, object scale and pose errors.

HOLD §4, DESIGN.md §6.
"""

from __future__ import annotations

from hold.eval.align import Alignment, Similarity, align_similarity, icp_with_scale, umeyama
from hold.eval.config import EvalConfig
from hold.eval.evaluate import (
    EvalProtocol,
    EvalResult,
    FScoreResult,
    HandObjectSequence,
    evaluate,
    similarity_matrices,
)
from hold.eval.metrics import (
    FScore,
    chamfer_distance,
    fscore,
    hand_relative_chamfer_cm2,
    mpjpe_mm,
    mpjpe_per_frame_mm,
)
from hold.eval.pose_error import ErrorStats, PoseErrors, hand_frames, object_pose_errors, rotation_angle_deg
from hold.eval.surface import sample_surface

__all__ = [
    "Alignment",
    "EvalConfig",
    "EvalProtocol",
    "EvalResult",
    "ErrorStats",
    "FScore",
    "FScoreResult",
    "HandObjectSequence",
    "PoseErrors",
    "Similarity",
    "align_similarity",
    "chamfer_distance",
    "evaluate",
    "fscore",
    "hand_frames",
    "hand_relative_chamfer_cm2",
    "icp_with_scale",
    "mpjpe_mm",
    "mpjpe_per_frame_mm",
    "object_pose_errors",
    "rotation_angle_deg",
    "sample_surface",
    "similarity_matrices",
    "umeyama",
]
