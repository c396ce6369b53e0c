"""The structured result of one evaluation and its metrics.json form (docs/evaluation.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hold.eval.align import Alignment
from hold.eval.pose_error import PoseErrors
from hold.utils.units import M_TO_MM

PROTOCOL_NAME = "HOLD (CVPR 2024) §4"
UNITS = {
    "mpjpe_mm": "mm, root-relative (keypoint root_index), mean over 21 keypoints and ALL GT-valid frames "
    "(protocol.frames_gt_valid), scored with the poses the model used, detected or not",
    "mpjpe_detected_mm": "mm, as mpjpe_mm over the GT-valid frames where the hand was detected "
    "(prediction valid, protocol.frames_detected); None when there are none",
    "cd_cm2": "cm², squared distances, mean of both directions summed, after similarity alignment "
    "(scale included: blind to a wrong object size, see object_scale_error_pct)",
    "fscore": "%, at fscore_thresholds_m, after the same similarity alignment (also scale-blind)",
    "cd_h_cm2": "cm², as cd_cm2 but hand-root-relative per frame without alignment, mean over ALL "
    "GT-valid frames",
    "cd_h_detected_cm2": "cm², as cd_h_cm2 over the detected frames (protocol.frames_detected)",
    "object_scale_error_pct": "%, signed: (predicted object size / GT size − 1)·100 = (1/s − 1)·100 with "
    "s the alignment scale (times the ratio of the pose scales when poses carry one); +200 = 3× too "
    "large, −50 = half size, 0 = right size",
    "object_scale_error_abs_pct": "%, |object_scale_error_pct|",
    "object_pose": "per-frame object pose errors over the GT-valid frames, median and upper percentile "
    "(pose_error_percentile): rotation_* in degrees, translation_* in mm; *_rel_ref = motion since "
    "reference_frame (the first GT-valid frame) of the GT mesh centroid; *_hand = rotation in the hand "
    "frame (keypoints 0, 5, 9, 17) and centroid relative to the wrist (camera axes)",
}


@dataclass
class FScoreResult:
    """F-score at one threshold (percent)."""

    threshold_m: float
    precision: float
    recall: float
    fscore: float


@dataclass
class EvalProtocol:
    """How the numbers were obtained, recorded beside them in metrics.json.

    Attributes:
        frames_gt_valid: frames of the headline per-frame metrics (GT valid).
        frames_detected: the GT-valid frames where the prediction is valid too (hand detected).
    """

    num_frames: int
    frames_gt_valid: list[int]
    frames_detected: list[int]
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
    pose_error_percentile: float
    units: dict[str, str]


@dataclass
class EvalResult:
    """All metrics of one sequence; a metric is None when its inputs are missing on either side.

    Attributes:
        protocol: the settings and frames used.
        mpjpe_mm: root-relative MPJPE over all GT-valid frames, mm.
        mpjpe_detected_mm: the same over the detected frames; None when there are none.
        mpjpe_per_frame_mm: (T,) MPJPE per frame, NaN where GT is invalid.
        cd_cm2: object Chamfer distance after similarity alignment, cm².
        fscores: F-score per threshold, on the same alignment.
        object_size_ratio: predicted object size / GT size (1 = right size).
        cd_h_cm2: hand-relative object Chamfer distance, mean over all GT-valid frames, cm².
        cd_h_detected_cm2: the same over the detected frames; None when there are none.
        cd_h_per_frame_cm2: (T,) CD_h per frame, NaN where GT is invalid.
        pose_errors: per-frame object pose errors (needs meshes and poses on both sides).
        alignment: the prediction → GT object alignment behind ``cd_cm2`` and ``fscores``.
    """

    protocol: EvalProtocol
    mpjpe_mm: float | None = None
    mpjpe_detected_mm: float | None = None
    mpjpe_per_frame_mm: np.ndarray | None = None
    cd_cm2: float | None = None
    fscores: list[FScoreResult] = field(default_factory=list)
    object_size_ratio: float | None = None
    cd_h_cm2: float | None = None
    cd_h_detected_cm2: float | None = None
    cd_h_per_frame_cm2: np.ndarray | None = None
    pose_errors: PoseErrors | None = None
    alignment: Alignment | None = None

    @property
    def object_scale_error_pct(self) -> float | None:
        """Signed object size error in percent: +200 = 3× too large, −50 = half size."""
        return None if self.object_size_ratio is None else (self.object_size_ratio - 1.0) * 100.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for metrics.json: headline numbers, details, per-frame values, protocol."""
        scale_err = self.object_scale_error_pct
        out: dict[str, Any] = {
            "mpjpe_mm": self.mpjpe_mm,
            "mpjpe_detected_mm": self.mpjpe_detected_mm,
            "cd_cm2": self.cd_cm2,
        }
        for f in self.fscores:
            out[f"f{f.threshold_m * M_TO_MM:g}"] = f.fscore  # "f5", "f10" as in HOLD's tables
        out["cd_h_cm2"] = self.cd_h_cm2
        out["cd_h_detected_cm2"] = self.cd_h_detected_cm2
        out["object_scale_error_pct"] = scale_err
        out["object_scale_error_abs_pct"] = None if scale_err is None else abs(scale_err)
        p = self.protocol
        if self.pose_errors is not None:
            valid = np.zeros(p.num_frames, bool)
            valid[p.frames_gt_valid] = True
            stats = self.pose_errors.summary(valid, p.pose_error_percentile)
            out["object_pose"] = {
                "reference_frame": self.pose_errors.reference_frame,
                **{k: s.to_dict() for k, s in stats.items()},
            }
        out["frames"] = {
            "total": p.num_frames,
            "gt_valid": len(p.frames_gt_valid),
            "detected": len(p.frames_detected),
        }
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
        per_frame = {"mpjpe_mm": self.mpjpe_per_frame_mm, "cd_h_cm2": self.cd_h_per_frame_cm2}
        if self.pose_errors is not None:
            per_frame.update({f"object_{k}": v for k, v in self.pose_errors.named().items()})
        per_frame = {k: json_floats(v) for k, v in per_frame.items() if v is not None}
        if per_frame:
            out["per_frame"] = per_frame
        out["protocol"] = {"name": PROTOCOL_NAME, **vars(p)}
        return out


def json_floats(values: np.ndarray) -> list[float | None]:
    """A float array as a JSON-ready list, NaN as None."""
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]
