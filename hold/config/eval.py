"""Configuration of the evaluation protocol (docs/evaluation.md, HOLD §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hold.utils.checks import at_least, positive


@dataclass
class EvalConfig:
    num_surface_samples: int = 10000
    """Points sampled (area-weighted, uniformly) on each object mesh for CD, F-score and CD_h."""
    seed: int = 0
    """Seed of the surface sampling and of the ICP subsampling, so that metrics are reproducible."""
    fscore_thresholds_m: tuple[float, ...] = (0.005, 0.01)
    """F-score distance thresholds in metres (HOLD reports F5 and F10: 5 mm and 10 mm)."""
    root_index: int = 0
    """Keypoint used as the hand root for MPJPE and CD_h (0 = wrist in the common 21-keypoint order)."""
    init_rotations: Literal["cube", "pca", "pca+cube"] = "pca+cube"
    """Global initialisation of the object alignment: ``cube`` tries the 24 rotations of the cube group
    about the centroids; ``pca`` tries the 24 axis permutations/sign flips between the two PCA frames;
    ``pca+cube`` tries both sets (48 starts). Each start is refined by ICP and the best kept."""
    icp_coarse_num_points: int = 1000
    """Points per cloud used to refine every initial rotation (a random subset, for speed)."""
    icp_coarse_iterations: int = 10
    """ICP iterations spent on each initial rotation before the best one is chosen."""
    icp_max_iterations: int = 100
    """Maximum ICP iterations of the final refinement on all surface samples."""
    icp_tolerance: float = 1e-7
    """ICP stops when the relative decrease of its mean squared correspondence distance is below this."""
    pose_error_percentile: float = 95.0
    """Upper percentile reported beside the median of each per-frame object pose error (metrics.json
    key ``p95`` for 95): the bad frames a median hides."""

    def __post_init__(self) -> None:
        at_least(
            self,
            1,
            "num_surface_samples",
            "icp_coarse_num_points",
            "icp_coarse_iterations",
            "icp_max_iterations",
        )
        at_least(self, 0, "root_index")
        positive(self, "icp_tolerance")
        if not 0 < self.pose_error_percentile <= 100:
            raise ValueError(
                f"pose_error_percentile must lie in (0, 100], found {self.pose_error_percentile}"
            )
