"""The keypoint-fitting objective and its optimiser (used by ``hold.hand.fitting``).

Per frame, with X the model's 21 keypoints (all weights and scales in ``HandFitConfig``):

    E = w_2d · mean_k conf_k ρ(‖π(K, X_k) − x_k‖² / σ_px²)
      + w_3d · mean_k ρ(‖(X_k − X̄) − (y_k − ȳ)‖² / σ_3d²)                 (centroid-aligned 3D)
      + Σ_j (w_pose + w_wrist [j is the wrist]) Σ_axis a_axis θ_j,axis²      (anatomical angles)
      + w_lim Σ_j ‖excess of θ_j beyond the joint limits‖²
      + w_shape ‖β‖² / T + w_smooth · ρ(mean_k ‖X_t − 2 X_{t−1} + X_{t−2}‖² / σ_s²)

ρ is the robust penalty (Geman-McClure, Cauchy or squares). The 3D input is root-relative; comparing
both point sets about their centroids makes the fit insensitive to the noise of the input's root.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from hold.config.hand import HandFitConfig, JointLimitsConfig
from hold.geometry.camera import project
from hold.hand.model import HandModel

MIN_DEPTH = 1e-3  # metres: keeps the projection finite for points at or behind the camera


@dataclass
class Observations:
    """Fitting inputs of T frames, checked and cleaned.

    Attributes:
        kp2d: (T, 21, 3) pixel x, y and confidence; 0 marks a keypoint not to use.
        K: (T, 3, 3) intrinsics.
        kp3d: (T, 21, 4) 3D keypoints (camera axes, metres) and a flag, 1 where given.
    """

    kp2d: Tensor
    K: Tensor
    kp3d: Tensor

    def __len__(self) -> int:
        return self.kp2d.shape[0]

    def frames(self, sl: slice) -> Observations:
        return Observations(self.kp2d[sl], self.K[sl], self.kp3d[sl])

    def repeat(self, n: int) -> Observations:
        """Each frame n times in a row: (T, …) → (T·n, …)."""
        return Observations(*(x.repeat_interleave(n, 0) for x in (self.kp2d, self.K, self.kp3d)))


class Fit(NamedTuple):
    """Result of ``FitObjective.optimise``: parameters, keypoints (T, 21, 3), objective (T,)."""

    global_orient: Tensor
    pose: Tensor
    betas: Tensor
    transl: Tensor
    keypoints: Tensor
    loss: Tensor


def robust(u2: Tensor, kind: str) -> Tensor:
    """Robust penalty of squared normalised residuals ``u² = (r / σ)²``."""
    if kind == "gmof":
        return u2 / (1.0 + u2)
    if kind == "cauchy":
        return torch.log1p(u2)
    if kind == "l2":
        return u2
    raise ValueError(f"robust_loss: expected 'gmof', 'cauchy' or 'l2', found {kind!r}")


def centred(points: Tensor, valid: Tensor) -> Tensor:
    """Points (…, N, 3) minus the mean of those flagged valid (…, N)."""
    w = valid / valid.sum(-1, keepdim=True).clamp_min(1.0)
    return points - (w[..., None] * points).sum(-2, keepdim=True)


class FitObjective:
    """The objective of the module docstring for one model, config and set of joint limits."""

    def __init__(self, model: HandModel, cfg: HandFitConfig, limits: JointLimitsConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.lo, self.hi = model.pose_limits(limits)
        self.wrist_mask = torch.tensor([t == "wrist" for t in model.joint_types]).to(self.lo)
        self.prior_axes = self.lo.new_tensor(cfg.pose_prior_axes)

    def terms(
        self, obs: Observations, go: Tensor, pose: Tensor, betas: Tensor, transl: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-keypoint data terms (T, 21), per-joint prior and limit terms (T, J), keypoints (T, 21, 3)."""
        cfg = self.cfg
        kp = self.model.forward_keypoints(go, pose, betas, transl)
        u2 = (project(kp, obs.K, MIN_DEPTH) - obs.kp2d[..., :2]).square().sum(-1) / cfg.robust_scale_px**2
        v3 = obs.kp3d[..., 3]
        u3 = (centred(kp, v3) - centred(obs.kp3d[..., :3], v3)).square().sum(-1) / cfg.robust_scale_3d**2
        kp_cost = cfg.weight_2d * obs.kp2d[..., 2] * robust(u2, cfg.robust_loss)
        kp_cost = (kp_cost + cfg.weight_3d * v3 * robust(u3, cfg.robust_loss)) / kp.shape[1]
        a = self.model.pose_to_anatomical(pose)
        excess = torch.relu(self.lo - a) + torch.relu(a - self.hi)
        joint_cost = (cfg.weight_pose_prior + cfg.weight_wrist_prior * self.wrist_mask) * (
            a.square() * self.prior_axes
        ).sum(-1)
        joint_cost = joint_cost + cfg.weight_joint_limits * excess.square().sum(-1)
        return kp_cost, joint_cost, kp

    def per_frame(
        self,
        obs: Observations,
        go: Tensor,
        pose: Tensor,
        betas: Tensor,
        transl: Tensor,
        before: Tensor | None,
        smooth: bool,
    ) -> tuple[Tensor, Tensor]:
        """Objective of each frame (T,) and the keypoints (T, 21, 3), detached.

        Args:
            before: keypoints (≤ 2, 21, 3) of the frames preceding these (previous chunk), or None.
            smooth: include the temporal term (consecutive frames of one sequence).
        """
        cfg = self.cfg
        kp_cost, joint_cost, kp = self.terms(obs, go, pose, betas, transl)
        e = kp_cost.sum(-1) + joint_cost.sum(-1) + cfg.weight_shape_prior * betas.square().sum() / go.shape[0]
        if not smooth:
            return e, kp.detach()
        # each frame pays for its acceleration (X_t − 2 X_{t−1} + X_{t−2}), continuing from the
        # previous chunk; unlike a velocity penalty it does not slow down steady motion
        seq = kp if before is None else torch.cat([before, kp])
        acc = (seq[2:] - 2 * seq[1:-1] + seq[:-2]).square().sum(-1).mean(-1) / cfg.smooth_scale**2
        acc = robust(acc, cfg.robust_loss)  # a bad start must not drag the whole sequence
        acc = torch.cat([acc.new_zeros(seq.shape[0] - acc.shape[0]), acc])[-kp.shape[0] :]
        return e + cfg.weight_smooth * acc, kp.detach()

    def optimise(
        self,
        obs: Observations,
        go: Tensor,
        pose: Tensor,
        betas: Tensor,
        transl: Tensor,
        *,
        iterations: int,
        smooth: bool,
        fit_betas: bool = False,
        before: Tensor | None = None,
    ) -> Fit:
        """Adam on (go, pose, transl[, betas]) with a cosine learning-rate decay.

        Args:
            go (T, 3), pose (T, J, 3), transl (T, 3): start; betas (nb,): shared shape.
            iterations: Adam steps; smooth: temporal term; fit_betas: optimise the shape too;
            before: keypoints of the preceding frames for the temporal term.
        """
        cfg = self.cfg
        go = go.detach().clone().requires_grad_(True)
        pose = pose.detach().clone().requires_grad_(True)
        transl = transl.detach().clone().requires_grad_(True)
        shape = betas.detach().clone()[None].requires_grad_(fit_betas)
        groups = [
            {"params": [go], "lr": cfg.lr_orient},
            {"params": [pose], "lr": cfg.lr_pose},
            {"params": [transl], "lr": cfg.lr_transl},
        ]
        if fit_betas:
            groups.append({"params": [shape], "lr": cfg.lr_betas})
        opt = torch.optim.Adam(groups)
        lr0 = [g["lr"] for g in opt.param_groups]
        for step in range(iterations):
            # cosine decay from each group's start value down to lr_final_factor of it
            cos = 0.5 * (1.0 + math.cos(math.pi * step / iterations))
            for g, lr in zip(opt.param_groups, lr0):
                g["lr"] = lr * (cfg.lr_final_factor + (1.0 - cfg.lr_final_factor) * cos)
            opt.zero_grad()
            loss, _ = self.per_frame(obs, go, pose, shape, transl, before, smooth)
            loss.mean().backward()
            opt.step()
        with torch.no_grad():
            loss, kp = self.per_frame(obs, go, pose, shape, transl, before, smooth)
        return Fit(go.detach(), pose.detach(), shape.detach()[0], transl.detach(), kp, loss)
