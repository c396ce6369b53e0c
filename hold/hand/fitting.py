"""Fit a hand model to per-frame keypoints (preprocessing, DESIGN.md §1 step "hand fit").

Inputs per frame: 21 pixel keypoints with confidences (perspective camera ``K``) and optionally
root-relative 3D keypoints (camera axes, metres), e.g. from an external estimator's ``hands.npz``.
The objective (all weights in ``HandFitConfig``) is

    E = w_2d · ρ(‖π(K, X) − x‖ / σ_px) · conf  +  w_3d · ρ(‖(X − X_0) − x3d‖ / σ_3d)
      + w_pose ‖θ‖² + w_wrist ‖θ_wrist‖² + w_lim ‖excess of θ beyond the joint limits‖²
      + w_shape ‖β‖² + w_smooth ‖X_t − X_{t−1}‖² / σ_s²

with ρ a robust penalty (Geman-McClure, Cauchy or squares), X the model's 21 keypoints.

Schedule, per chunk of frames optimised as one batch:
    1. Rigid initialisation: with the pose fixed (zero, or the warm start), the keypoints are a rigid
       body about the wrist, so many global orientations (random ones, the warm start and, with 3D
       keypoints, the Kabsch fit) are refined at once on the palm keypoints and the best kept per frame.
       The wrist depth starts from the ratio of the palm's metric and pixel spreads.
    2. Full fit of orientation, pose, translation (and shape on the first chunk) with Adam and a
       cosine learning-rate decay.
Each chunk is warm-started from the last frame of the previous one, and its smoothness term is
tied to that frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from hold.hand.config import HandFitConfig, JointLimitsConfig
from hold.hand.model import PALM_KEYPOINTS, HandModel

_MIN_DEPTH = 1e-3  # metres: keeps the projection finite for points at or behind the camera


@dataclass
class HandFitResult:
    """Fitted parameters and per-frame residuals of a sequence of T frames.

    Attributes:
        global_orient: (T, 3); pose: (T, J, 3); betas: (nb,) shared; transl: (T, 3).
        keypoints: (T, 21, 3) fitted model keypoints, camera frame, metres.
        reprojection_error: (T,) mean pixel distance over the keypoints used (NaN when none).
        keypoint3d_error: (T,) mean root-relative 3D distance in metres (NaN without 3D input).
        loss: (T,) final objective of each frame.
    """

    global_orient: Tensor
    pose: Tensor
    betas: Tensor
    transl: Tensor
    keypoints: Tensor
    reprojection_error: Tensor
    keypoint3d_error: Tensor
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


def project(points: Tensor, K: Tensor) -> Tensor:
    """Pinhole projection of camera-frame points (T, N, 3) with K (T, 3, 3) → pixels (T, N, 2)."""
    z = points[..., 2:].clamp_min(_MIN_DEPTH)
    uv = points[..., :2] / z
    return uv * K[:, None, [0, 1], [0, 1]] + K[:, None, :2, 2]


class HandFitter:
    """Keypoint fitting of one hand over a sequence.

    Args:
        model: the hand model to fit.
        cfg: fitting settings.
        limits: joint limits (``hand.joint_limits``).
    """

    def __init__(self, model: HandModel, cfg: HandFitConfig, limits: JointLimitsConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.lo, self.hi = model.pose_limits(limits)
        wrist = torch.tensor([t == "wrist" for t in model.joint_types])
        self.wrist_mask = wrist.to(self.lo)
        self.prior_axes = self.lo.new_tensor(cfg.pose_prior_axes)

    # ------------------------------------------------------------------------------- public
    def fit(
        self,
        keypoints2d: Tensor,
        K: Tensor,
        keypoints3d: Tensor | None = None,
        betas: Tensor | None = None,
        init: dict[str, Tensor] | None = None,
    ) -> HandFitResult:
        """Fit a sequence.

        Args:
            keypoints2d: (T, 21, 3) pixel x, y and confidence (0 = missing).
            K: (3, 3) or (T, 3, 3) intrinsics.
            keypoints3d: optional (T, 21, 3) root-relative 3D keypoints (camera axes, metres);
                NaN rows mark frames or keypoints without them.
            betas: optional (nb,) known shape: kept fixed.
            init: optional warm start ``global_orient (T, 3)``, ``pose (T, J, 3)``, ``transl (T, 3)``
                (any subset) and ``betas (nb,)``.

        Returns:
            HandFitResult.
        """
        kp2d, K, kp3d = self._check(keypoints2d, K, keypoints3d)
        t_total = kp2d.shape[0]
        cfg, m = self.cfg, self.model
        ref = m.skinning_weights
        fit_betas = cfg.fit_betas and betas is None
        shape = ref.new_zeros(m.num_betas) if betas is None else betas.to(ref).reshape(m.num_betas)
        if init is not None and "betas" in init and betas is None:
            shape = init["betas"].to(ref).reshape(m.num_betas)
        outs: dict[str, list[Tensor]] = {k: [] for k in ("go", "pose", "transl", "kp", "loss")}
        prev: dict[str, Tensor] | None = None
        for start in range(0, t_total, cfg.chunk_size):
            sl = slice(start, min(start + cfg.chunk_size, t_total))
            chunk_init = None if init is None else {k: v[sl].to(ref) for k, v in init.items() if k != "betas"}
            obs = (kp2d[sl], K[sl], kp3d[sl])
            go, transl, poses = self._initialise(*obs, shape, chunk_init, prev)
            go, pose, transl = self._select_hypothesis(*obs, go, transl, poses, shape)
            go, pose, shape_c, transl, kp, loss = self._optimise(
                *obs, go, pose, shape, transl, prev, fit_betas and start == 0, cfg.iterations, smooth=True
            )
            shape = shape_c
            for k, v in zip(("go", "pose", "transl", "kp", "loss"), (go, pose, transl, kp, loss)):
                outs[k].append(v)
            prev = {"go": go[-1], "pose": pose[-1], "transl": transl[-1], "kp": kp[-1]}
        kp = torch.cat(outs["kp"])
        return HandFitResult(
            global_orient=torch.cat(outs["go"]),
            pose=torch.cat(outs["pose"]),
            betas=shape,
            transl=torch.cat(outs["transl"]),
            keypoints=kp,
            reprojection_error=_reprojection_error(kp, kp2d, K),
            keypoint3d_error=_keypoint3d_error(kp, kp3d),
            loss=torch.cat(outs["loss"]),
        )

    # ------------------------------------------------------------------------------ checks
    def _check(self, kp2d: Tensor, K: Tensor, kp3d: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        ref = self.model.skinning_weights
        if kp2d.dim() != 3 or kp2d.shape[1:] != (21, 3):
            raise ValueError(f"keypoints2d: expected shape (T, 21, 3), found {tuple(kp2d.shape)}")
        t = kp2d.shape[0]
        if K.shape == (3, 3):
            K = K.expand(t, 3, 3)
        if K.shape != (t, 3, 3):
            raise ValueError(f"K: expected shape (3, 3) or ({t}, 3, 3), found {tuple(K.shape)}")
        if kp3d is None:
            kp3d = torch.full((t, 21, 3), math.nan)
        elif kp3d.shape != (t, 21, 3):
            raise ValueError(f"keypoints3d: expected shape ({t}, 21, 3), found {tuple(kp3d.shape)}")
        kp2d = kp2d.to(ref).clone()
        kp2d[..., 2] = torch.where(kp2d[..., 2] >= self.cfg.min_confidence, kp2d[..., 2], 0.0)
        kp2d = torch.nan_to_num(kp2d)  # a NaN coordinate must not leak through a zero confidence
        # root-relative 3D targets with NaN → 0 and a 4th channel: 1 where the target exists
        rel = kp3d.to(ref) - kp3d.to(ref)[:, :1]
        valid = torch.isfinite(rel).all(-1, keepdim=True)
        return kp2d, K.to(ref), torch.cat([torch.where(valid, rel, 0.0), valid.to(ref)], dim=-1)

    # ---------------------------------------------------------------------- rigid start
    def _initialise(
        self,
        kp2d: Tensor,
        K: Tensor,
        kp3d: Tensor,
        betas: Tensor,
        init: dict[str, Tensor] | None,
        prev: dict[str, Tensor] | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Initial hypotheses of a chunk: rigid alignments and pose starts.

        Returns:
            global_orient (T, Ho, 3) and transl (T, Ho, 3): the best distinct rigid solutions per
            frame (Ho ≤ ``num_fit_hypotheses``); poses (T, P, J, 3): the pose starts.
        """
        cfg, m = self.cfg, self.model
        t = kp2d.shape[0]
        ref = m.skinning_weights
        init = init or {}
        poses = self._pose_starts(t, init, prev)
        pose = poses[:, 0]
        if "global_orient" in init and "transl" in init:
            return init["global_orient"][:, None], init["transl"][:, None], poses
        zero = ref.new_zeros(t, 3)
        with torch.no_grad():
            kp0 = m.forward_keypoints(zero, pose, betas, zero)
        body = kp0 - kp0[:, :1]  # root-relative keypoints at identity orientation
        palm = list(PALM_KEYPOINTS)
        centre = _backproject(kp2d, K, self._depth_from_scale(kp2d, K, kp3d, body))

        # hypotheses (orientation, wrist position): given / warm start first, so that ties keep them
        starts, centres = [], []
        if "global_orient" in init:
            starts.append(init["global_orient"])
            centres.append(centre)
        if prev is not None:
            starts.append(prev["go"].expand(t, 3))
            centres.append(prev["kp"][0].expand(t, 3))
        has3d = (kp3d[:, palm, 3] > 0).all(dim=-1)
        if has3d.any():
            rot = roma.rigid_points_registration(body[:, palm], kp3d[:, palm, :3])[0]
            starts.append(torch.where(has3d[:, None], roma.rotmat_to_rotvec(rot), 0.0))
            centres.append(centre)
        g = torch.Generator().manual_seed(cfg.seed)
        quats = torch.randn(cfg.num_orientation_hypotheses, 4, generator=g)
        for q in roma.unitquat_to_rotvec(torch.nn.functional.normalize(quats, dim=-1).to(ref)):
            starts.append(q.expand(t, 3))
            centres.append(centre)
        rv = torch.stack(starts, dim=1).detach().clone().requires_grad_(True)  # (T, H, 3)
        c = torch.stack(centres, dim=1).detach().clone().requires_grad_(True)  # (T, H, 3)
        h = rv.shape[1]
        obs2d = kp2d[:, None, palm]
        obs3d = kp3d[:, None, palm]
        kk = K[:, None].expand(t, h, 3, 3).reshape(t * h, 3, 3)

        def loss_fn() -> Tensor:  # (T, H)
            rel = (roma.rotvec_to_rotmat(rv)[:, :, None] @ body[:, None, palm, :, None])[..., 0]
            uv = project((rel + c[:, :, None]).reshape(t * h, -1, 3), kk).view(t, h, -1, 2)
            u2 = (uv - obs2d[..., :2]).square().sum(-1) / cfg.robust_scale_px**2
            u3 = (rel - obs3d[..., :3]).square().sum(-1) / cfg.robust_scale_3d**2
            e2 = (obs2d[..., 2] * robust(u2, cfg.robust_loss)).mean(-1)
            e3 = (obs3d[..., 3] * robust(u3, cfg.robust_loss)).mean(-1)
            return cfg.weight_2d * e2 + cfg.weight_3d * e3

        opt = torch.optim.Adam([rv, c], lr=cfg.rigid_lr)
        for _ in range(cfg.rigid_iterations):
            opt.zero_grad()
            loss_fn().sum().backward()
            opt.step()
        with torch.no_grad():
            keep = _distinct_best(
                loss_fn(), roma.rotvec_to_rotmat(rv), cfg.num_fit_hypotheses, cfg.hypothesis_min_angle
            )
            frames = torch.arange(t)[:, None]
            go, wrist = rv[frames, keep].detach(), c[frames, keep].detach()  # (T, Hk, 3)
            # the wrist keypoint does not depend on the pose: place it at the chosen centre
            hk = keep.shape[1]
            posed = m.forward_keypoints(
                go.reshape(-1, 3), pose.repeat_interleave(hk, 0), betas, zero.repeat_interleave(hk, 0)
            )
            transl = wrist - posed[:, 0].view(t, hk, 3)
        return go, transl, poses

    def _pose_starts(self, t: int, init: dict[str, Tensor], prev: dict[str, Tensor] | None) -> Tensor:
        """(T, P, J, 3) pose starts: the given pose, the warm start, then the ``init_flexions``."""
        starts = []
        if "pose" in init:
            starts.append(init["pose"])
        if prev is not None:
            starts.append(prev["pose"].expand(t, -1, -1))
        fingers = torch.tensor([ty not in ("wrist", "metacarpal") for ty in self.model.joint_types])
        for flex in self.cfg.init_flexions:
            a = torch.zeros_like(self.lo)
            a[fingers, 0] = flex
            a = torch.minimum(torch.maximum(a, self.lo), self.hi)
            starts.append(self.model.anatomical_to_pose(a[None]).expand(t, -1, -1))
        if not starts:
            raise ValueError("fit.init_flexions: give at least one start pose")
        return torch.stack(starts, dim=1)

    def _select_hypothesis(
        self, kp2d: Tensor, K: Tensor, kp3d: Tensor, go: Tensor, transl: Tensor, poses: Tensor, betas: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Fit every (orientation, pose start) pair in full, frames independent; keep each frame's best.

        Args:
            go, transl: (T, Ho, 3) rigid hypotheses; poses: (T, P, J, 3) pose starts.

        Returns:
            global_orient (T, 3), pose (T, J, 3), transl (T, 3).
        """
        t, ho = go.shape[:2]
        p = poses.shape[1]
        if ho * p == 1:
            return go[:, 0], poses[:, 0], transl[:, 0]
        h = ho * p
        rep = lambda x: x.repeat_interleave(h, 0)  # noqa: E731 - (T, …) → (T·H, …)
        go_h = go.repeat_interleave(p, dim=1).reshape(t * h, 3)
        tr_h = transl.repeat_interleave(p, dim=1).reshape(t * h, 3)
        pose_h = poses.repeat(1, ho, 1, 1).reshape(t * h, *poses.shape[2:])
        g, ps, _, tr, _, loss = self._optimise(
            rep(kp2d), rep(K), rep(kp3d), go_h, pose_h, betas, tr_h,
            None, False, self.cfg.hypothesis_iterations, smooth=False,
        )  # fmt: skip
        pick = torch.arange(t) * h + loss.view(t, h).argmin(dim=1)
        return g[pick], ps[pick], tr[pick]

    def _depth_from_scale(self, kp2d: Tensor, K: Tensor, kp3d: Tensor, body: Tensor) -> Tensor:
        """(T,) wrist depth from the palm's metric spread over its pixel spread (weak perspective)."""
        palm = list(PALM_KEYPOINTS)
        conf = kp2d[:, palm, 2]
        w = conf / conf.sum(-1, keepdim=True).clamp_min(torch.finfo(conf.dtype).tiny)
        xy = kp2d[:, palm, :2]
        mean2d = (w[..., None] * xy).sum(1, keepdim=True)
        spread2d = (w * (xy - mean2d).square().sum(-1)).sum(-1).sqrt()
        metric = torch.where(kp3d[:, palm, 3:] > 0, kp3d[:, palm, :3], body[:, palm])
        spread3d = (metric - metric.mean(1, keepdim=True)).square().sum(-1).mean(-1).sqrt()
        depth = K[:, [0, 1], [0, 1]].mean(-1) * spread3d / spread2d
        fallback = torch.full_like(depth, self.cfg.default_depth)
        enough = (conf > 0).sum(-1) >= self.cfg.min_palm_keypoints
        return torch.where(enough & torch.isfinite(depth), depth, fallback)

    # ---------------------------------------------------------------------------- full fit
    def _optimise(
        self,
        kp2d: Tensor,
        K: Tensor,
        kp3d: Tensor,
        go: Tensor,
        pose: Tensor,
        betas: Tensor,
        transl: Tensor,
        prev: dict[str, Tensor] | None,
        fit_betas: bool,
        iterations: int,
        smooth: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Adam on all parameters of a chunk; returns go, pose, betas (nb,), transl, keypoints, loss (T,)."""
        cfg = self.cfg
        go = go.detach().clone().requires_grad_(True)
        pose = pose.detach().clone().requires_grad_(True)
        transl = transl.detach().clone().requires_grad_(True)
        betas = betas.detach().clone()[None].requires_grad_(fit_betas)
        groups = [
            {"params": [go], "lr": cfg.lr_orient},
            {"params": [pose], "lr": cfg.lr_pose},
            {"params": [transl], "lr": cfg.lr_transl},
        ]
        if fit_betas:
            groups.append({"params": [betas], "lr": cfg.lr_betas})
        opt = torch.optim.Adam(groups)
        lr0 = [g["lr"] for g in opt.param_groups]
        n = max(iterations, 1)
        for step in range(iterations):
            # cosine decay from each group's start value down to lr_final_factor of it
            decay = cfg.lr_final_factor + (1 - cfg.lr_final_factor) * 0.5 * (1 + math.cos(math.pi * step / n))
            for g, lr in zip(opt.param_groups, lr0):
                g["lr"] = lr * decay
            opt.zero_grad()
            loss, _ = self._objective(kp2d, K, kp3d, go, pose, betas, transl, prev, smooth)
            loss.mean().backward()
            opt.step()
        with torch.no_grad():
            loss, kp = self._objective(kp2d, K, kp3d, go, pose, betas, transl, prev, smooth)
        return go.detach(), pose.detach(), betas.detach()[0], transl.detach(), kp, loss

    def _objective(
        self,
        kp2d: Tensor,
        K: Tensor,
        kp3d: Tensor,
        go: Tensor,
        pose: Tensor,
        betas: Tensor,
        transl: Tensor,
        prev: dict[str, Tensor] | None,
        smooth: bool,
    ) -> tuple[Tensor, Tensor]:
        """Objective of each frame (T,) and the keypoints (T, 21, 3), detached."""
        cfg, m = self.cfg, self.model
        kp = m.forward_keypoints(go, pose, betas, transl)
        u2 = (project(kp, K) - kp2d[..., :2]).square().sum(-1) / cfg.robust_scale_px**2
        e = cfg.weight_2d * (kp2d[..., 2] * robust(u2, cfg.robust_loss)).mean(-1)
        u3 = ((kp - kp[:, :1]) - kp3d[..., :3]).square().sum(-1) / cfg.robust_scale_3d**2
        e = e + cfg.weight_3d * (kp3d[..., 3] * robust(u3, cfg.robust_loss)).mean(-1)
        a = m.pose_to_anatomical(pose)
        sq = (a.square() * self.prior_axes).sum(-1)  # (T, J)
        e = e + cfg.weight_pose_prior * sq.sum(-1) + cfg.weight_wrist_prior * (sq * self.wrist_mask).sum(-1)
        excess = torch.relu(self.lo - a) + torch.relu(a - self.hi)
        e = e + cfg.weight_joint_limits * excess.square().sum((-1, -2))
        e = e + cfg.weight_shape_prior * betas.square().sum() / go.shape[0]
        if not smooth:
            return e, kp.detach()
        # smoothness: each frame pays for its step from the frame before (the previous chunk's last)
        seq = kp if prev is None else torch.cat([prev["kp"][None], kp])
        step = (seq[1:] - seq[:-1]).square().sum(-1).mean(-1) / cfg.smooth_scale**2
        if prev is None:
            step = torch.cat([step.new_zeros(1), step])
        return e + cfg.weight_smooth * step, kp.detach()


def _distinct_best(loss: Tensor, rot: Tensor, k: int, min_angle: float) -> Tensor:
    """Per frame, the indices (T, k) of the lowest-loss hypotheses at least ``min_angle`` apart.

    Args:
        loss: (T, H); rot: (T, H, 3, 3) the hypotheses' rotations.
    Frames with fewer distinct hypotheses repeat their best one.
    """
    order = loss.argsort(dim=1)
    cos = ((rot[:, :, None] * rot[:, None]).sum((-1, -2)) - 1.0) / 2.0  # (T, H, H) cos of the angle
    far = cos < math.cos(min_angle)
    keep = []
    for f in range(loss.shape[0]):
        chosen: list[int] = []
        for h in order[f].tolist():
            if all(far[f, h, c] for c in chosen):
                chosen.append(h)
                if len(chosen) == k:
                    break
        keep.append(chosen + chosen[:1] * (k - len(chosen)))
    return torch.tensor(keep, device=loss.device)


def _backproject(kp2d: Tensor, K: Tensor, depth: Tensor) -> Tensor:
    """(T, 3) camera point at ``depth`` under the wrist pixel (the palm centroid if the wrist is missing)."""
    palm = list(PALM_KEYPOINTS)
    conf = kp2d[:, palm, 2]
    centroid = (conf[..., None] * kp2d[:, palm, :2]).sum(1) / conf.sum(-1, keepdim=True).clamp_min(
        torch.finfo(conf.dtype).tiny
    )
    uv = torch.where(kp2d[:, :1, 2] > 0, kp2d[:, 0, :2], centroid)
    f = K[:, [0, 1], [0, 1]]
    xy = (uv - K[:, :2, 2]) / f * depth[:, None]
    return torch.cat([xy, depth[:, None]], dim=-1)


def _reprojection_error(kp: Tensor, kp2d: Tensor, K: Tensor) -> Tensor:
    used = kp2d[..., 2] > 0
    d = (project(kp, K) - kp2d[..., :2]).norm(dim=-1)
    return torch.where(used, d, 0.0).sum(-1) / used.sum(-1)  # NaN (0/0) where nothing was used


def _keypoint3d_error(kp: Tensor, kp3d: Tensor) -> Tensor:
    d = ((kp - kp[:, :1]) - kp3d[..., :3]).norm(dim=-1)
    return torch.where(kp3d[..., 3] > 0, d, torch.nan).nanmean(dim=-1)
