"""Parameter sizes of each supported hand model, as stored in SEQUENCE files (docs/formats.md).

Kept free of heavy imports so that reading and validating a sequence never loads a hand model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HandModelSpec:
    num_pose_joints: int
    """J in ``pose (T, J, 3)``: articulated joints below the global orientation."""
    num_betas: int
    """B in ``betas (B,)``: shape parameters shared over frames."""


HAND_MODEL_SPECS: dict[str, HandModelSpec] = {
    # Anny hand rig: 21 bones (root, wrist, 3 thumb phalanges, 4 × (metacarpal + 3 phalanges));
    # global_orient drives the root, the 20 others are articulated. Betas are Anny's 6 phenotype
    # parameters (gender, age, muscle, weight, height, proportions).
    "anny": HandModelSpec(num_pose_joints=20, num_betas=6),
    # MANO: 16 joints, the root carries global_orient; 10 PCA shape coefficients.
    "mano": HandModelSpec(num_pose_joints=15, num_betas=10),
}
