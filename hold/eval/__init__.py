"""Evaluation of hand and object reconstructions: MPJPE, CD, F-score, CD_h (HOLD §4, DESIGN.md §6)."""

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
from hold.eval.metrics import FScore, chamfer_distance, fscore, hand_relative_chamfer_cm2, mpjpe_mm
from hold.eval.surface import sample_surface

__all__ = [
    "Alignment",
    "EvalConfig",
    "EvalProtocol",
    "EvalResult",
    "FScore",
    "FScoreResult",
    "HandObjectSequence",
    "Similarity",
    "align_similarity",
    "chamfer_distance",
    "evaluate",
    "fscore",
    "hand_relative_chamfer_cm2",
    "icp_with_scale",
    "mpjpe_mm",
    "sample_surface",
    "similarity_matrices",
    "umeyama",
]
