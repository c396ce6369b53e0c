"""Random hand parameters for tests, benchmarks and synthetic data."""

from __future__ import annotations

import roma
import torch
from torch import Tensor

from hold.config.hand import JointLimitsConfig
from hold.hand.model import HandModel


def sample_sequence(
    model: HandModel,
    limits: JointLimitsConfig,
    frames: int,
    generator: torch.Generator,
    *,
    pose_scale: float = 0.8,
    turn: float = 0.5,
    shift: tuple[float, float, float] = (0.03, -0.02, 0.03),
    depth: float = 0.45,
    betas_range: float = 0.6,
) -> dict[str, Tensor]:
    """A smooth random sequence: one random pose blended into another while the hand turns and moves.

    Args:
        model: hand model.
        limits: joint limits; poses are uniform within ``pose_scale`` × them (wrist bone at zero).
        frames: T.
        generator: random generator (the sequence is a function of its state).
        pose_scale: fraction of the joint limits the random poses use.
        turn: total rotation (radians) about a random axis over the sequence.
        shift: total translation (metres) over the sequence.
        depth: mean starting distance of the wrist from the camera (metres).
        betas_range: betas are uniform in ±betas_range / 2.

    Returns:
        global_orient (T, 3), pose (T, J, 3), betas (nb,), transl (T, 3).
    """
    key = model.sample_pose(limits, 2, generator, scale=pose_scale)
    key[:, [t == "wrist" for t in model.joint_types]] = 0.0  # the wrist bone duplicates global_orient
    w = torch.linspace(0.0, 1.0, frames)[:, None]
    pose = (1.0 - w[..., None]) * key[:1] + w[..., None] * key[1:]
    start = roma.unitquat_to_rotvec(torch.nn.functional.normalize(torch.randn(4, generator=generator), dim=0))
    axis = torch.nn.functional.normalize(torch.randn(3, generator=generator), dim=0)
    rot = roma.rotvec_to_rotmat(axis[None] * turn * w) @ roma.rotvec_to_rotmat(start)
    betas = (torch.rand(model.num_betas, generator=generator) - 0.5) * betas_range
    origin = torch.tensor([0.0, 0.0, depth]) + 0.1 * depth * torch.randn(3, generator=generator)
    transl = origin + w * torch.tensor(shift)
    ref = model.skinning_weights
    return {
        "global_orient": roma.rotmat_to_rotvec(rot).to(ref),
        "pose": pose.to(ref),
        "betas": betas.to(ref),
        "transl": transl.to(ref),
    }
