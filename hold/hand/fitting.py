"""Fit a hand model to per-frame keypoints (preprocessing, docs/architecture.md step "hand fit").

Inputs per frame: 21 pixel keypoints with confidences (perspective camera ``K``) and optionally
root-relative 3D keypoints (camera axes, metres), e.g. an external estimator's ``hands.npz``
(docs/formats.md). The objective (``fit_objective``) combines a robust reprojection term, a robust 3D
term, pose and shape priors, joint limits and temporal smoothness; the search (``fit_search``)
handles the ambiguities of 2D keypoints with several hypotheses per frame and neighbours' solutions
as further starts.

Frames are optimised in batches of ``chunk_size``; each chunk is warm-started from the last frame of
the previous one (as a rigid hypothesis and a pose start), its smoothness term continues from it,
and the hand shape, estimated on the first chunk, is kept for the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hold.config.hand import HandFitConfig, JointLimitsConfig
from hold.geometry.camera import project
from hold.hand import fit_search as search
from hold.hand.fit_objective import MIN_DEPTH, Fit, FitObjective, Observations
from hold.hand.model import HandModel


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


class HandFitter:
    """Keypoint fitting of one hand over a sequence.

    Args:
        model: the hand model to fit.
        cfg: fitting settings (``hand.fit``).
        limits: joint limits (``hand.joint_limits``).
    """

    def __init__(self, model: HandModel, cfg: HandFitConfig, limits: JointLimitsConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.objective = FitObjective(model, cfg, limits)

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
                NaN marks missing frames or keypoints.
            betas: optional (nb,) known shape, kept fixed.
            init: optional warm start: ``global_orient (T, 3)``, ``pose (T, J, 3)``, ``transl (T, 3)``
                (any subset) and ``betas (nb,)``.

        Returns:
            HandFitResult.

        Raises:
            ValueError: naming the argument whose shape is wrong.
        """
        obs = self._check(keypoints2d, K, keypoints3d)
        cfg, m, obj = self.cfg, self.model, self.objective
        ref = m.skinning_weights
        init = init or {}
        fit_betas = cfg.fit_betas and betas is None
        if betas is not None:
            shape = betas.to(ref).reshape(m.num_betas)
        elif "betas" in init:
            shape = init["betas"].to(ref).reshape(m.num_betas)
        else:
            shape = ref.new_zeros(m.num_betas)
            if fit_betas:
                shape = search.initial_betas(obj, obs, shape)
        fits = []
        prev: search.WarmStart | None = None
        for start in range(0, len(obs), cfg.chunk_size):
            sl = slice(start, min(start + cfg.chunk_size, len(obs)))
            chunk = obs.frames(sl)
            chunk_init = {k: v[sl].to(ref) for k, v in init.items() if k != "betas"}
            fit = self._fit_chunk(chunk, shape, chunk_init, prev, fit_betas and start == 0)
            shape = fit.betas
            fits.append(fit)
            # the next chunk starts from our last frame; its smoothness continues from our last two
            before = None if prev is None else prev.keypoints
            tail = (
                fit.keypoints[-2:]
                if before is None or len(fit.keypoints) > 1
                else torch.cat([before[-1:], fit.keypoints])
            )
            prev = search.WarmStart(fit.global_orient[-1], fit.pose[-1], tail)
        kp = torch.cat([f.keypoints for f in fits])
        return HandFitResult(
            global_orient=torch.cat([f.global_orient for f in fits]),
            pose=torch.cat([f.pose for f in fits]),
            betas=shape,
            transl=torch.cat([f.transl for f in fits]),
            keypoints=kp,
            reprojection_error=_reprojection_error(kp, obs),
            keypoint3d_error=_keypoint3d_error(kp, obs),
            loss=torch.cat([f.loss for f in fits]),
        )

    def _fit_chunk(
        self,
        obs: Observations,
        betas: Tensor,
        init: dict[str, Tensor],
        prev: search.WarmStart | None,
        fit_betas: bool,
    ) -> Fit:
        """Starts, hypotheses, smoothed fit and propagation rounds for one chunk of frames."""
        cfg, obj = self.cfg, self.objective
        before = None if prev is None else prev.keypoints
        poses = search.pose_starts(obj, len(obs), init, prev)
        go, transl = search.rigid_hypotheses(obj, obs, betas, poses[:, 0], init, prev)
        go, pose, transl = search.select_hypothesis(obj, obs, go, transl, poses, betas)
        go, pose, transl = search.fill_unobserved(obs, go, pose, transl)
        fit = obj.optimise(
            obs,
            go,
            pose,
            betas,
            transl,
            iterations=cfg.iterations,
            smooth=True,
            fit_betas=fit_betas,
            before=before,
        )
        for _ in range(cfg.propagation_rounds if len(obs) > 1 else 0):
            go, pose, transl = search.propagate(obj, obs, fit.global_orient, fit.pose, fit.betas, fit.transl)
            fit = obj.optimise(
                obs, go, pose, fit.betas, transl, iterations=cfg.iterations, smooth=True, before=before
            )
        return fit

    def _check(self, kp2d: Tensor, K: Tensor, kp3d: Tensor | None) -> Observations:
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
        kp3d = kp3d.to(ref)
        valid = torch.isfinite(kp3d).all(-1, keepdim=True)
        kp3d = torch.cat([torch.where(valid, kp3d, 0.0), valid.to(ref)], dim=-1)
        return Observations(kp2d=kp2d, K=K.to(ref), kp3d=kp3d)


def _reprojection_error(kp: Tensor, obs: Observations) -> Tensor:
    used = obs.kp2d[..., 2] > 0
    d = (project(kp, obs.K, MIN_DEPTH) - obs.kp2d[..., :2]).norm(dim=-1)
    return torch.where(used, d, 0.0).sum(-1) / used.sum(-1)  # NaN (0/0) where nothing was used


def _keypoint3d_error(kp: Tensor, obs: Observations) -> Tensor:
    """(T,) mean root-relative distance to the 3D input, as MPJPE (NaN without 3D input)."""
    kp3d = obs.kp3d
    valid = (kp3d[..., 3] > 0) & (kp3d[:, :1, 3] > 0)
    d = ((kp - kp[:, :1]) - (kp3d[..., :3] - kp3d[:, :1, :3])).norm(dim=-1)
    return torch.where(valid, d, torch.nan).nanmean(dim=-1)
