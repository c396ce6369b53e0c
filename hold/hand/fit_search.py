"""Search strategy of the keypoint fitting: starts, hypotheses and their selection.

2D keypoints leave the hand ambiguous (the palm is nearly planar; a finger may bend towards or away
from the camera), so a single local descent often ends in the wrong minimum. The steps, in order:

1. ``initial_betas``: with 3D keypoints, fit the shape to the sequence's median bone lengths.
2. ``rigid_hypotheses``: with the pose fixed, the palm keypoints are a rigid body about the wrist;
   many orientations (random, warm start, Kabsch fit to the 3D keypoints) are refined at once and
   the best few distinct ones kept per frame. The depth starts from the ratio of the palm's metric
   and pixel spreads.
3. ``select_hypothesis``: every (orientation, pose start) pair is fitted in full, frames independent;
   per finger, the start that fits that finger best is recombined into one more candidate; each frame
   keeps its best-fitting candidate. (Choosing for smooth motion instead picked the slower-moving
   mirror of a fast-turning hand and made the error worse on held-out synthetic clips:
   ``bench/bench_mediapipe.py --held-out``.)
4. ``propagate`` (after the smoothed full fit): each frame is offered its neighbours' solutions as
   starts, which frees frames stuck in a wrong minimum.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import roma
import torch
from torch import Tensor

from hold.geometry.camera import project
from hold.hand.fit_objective import MIN_DEPTH, FitObjective, Observations, centred, robust
from hold.hand.kinematics import rotvec_to_rotmat
from hold.hand.model import FINGER_KEYPOINTS, PALM_KEYPOINTS

# parent of keypoints 1..20 in the common order (the kinematic tree of the 21 keypoints)
_KEYPOINT_PARENTS = tuple(0 if k % 4 == 1 else k - 1 for k in range(1, 21))


class WarmStart(NamedTuple):
    """The last fitted frame(s) of the previous chunk: global_orient (3,), pose (J, 3), keypoints (≤ 2, 21, 3)."""

    global_orient: Tensor
    pose: Tensor
    keypoints: Tensor


def initial_betas(obj: FitObjective, obs: Observations, betas: Tensor) -> Tensor:
    """Betas whose bone lengths match the median 3D bone lengths of the sequence (pose-free).

    Returns ``betas`` unchanged without 3D keypoints: 2D alone does not observe metric size.
    """
    cfg, m = obj.cfg, obj.model
    parent = torch.tensor(_KEYPOINT_PARENTS, device=betas.device)
    child = torch.arange(1, 21, device=betas.device)
    kp3d = obs.kp3d
    valid = (kp3d[:, child, 3] > 0) & (kp3d[:, parent, 3] > 0)
    if not valid.any() or cfg.shape_init_iterations == 0:
        return betas
    length = (kp3d[:, child, :3] - kp3d[:, parent, :3]).norm(dim=-1)
    target = torch.where(valid, length, torch.nan).nanmedian(dim=0).values  # (20,)
    seen = ~torch.isnan(target)
    zero = betas.new_zeros(1, 3)
    pose = betas.new_zeros(1, m.num_pose_joints, 3)
    b = betas.detach().clone()[None].requires_grad_(True)
    opt = torch.optim.Adam([b], lr=cfg.lr_betas)
    for _ in range(cfg.shape_init_iterations):
        kp = m.forward_keypoints(zero, pose, b, zero)[0]
        u2 = (((kp[child] - kp[parent]).norm(dim=-1) - target)[seen] / cfg.robust_scale_3d).square()
        loss = robust(u2, cfg.robust_loss).mean() + cfg.weight_shape_prior * b.square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return b.detach()[0]


def pose_starts(obj: FitObjective, t: int, init: dict[str, Tensor], prev: WarmStart | None) -> Tensor:
    """(T, P, J, 3) pose starts: the given pose, the warm start, then every ``init_flexions`` angle
    on all finger joints (clamped to the limits)."""
    starts = []
    if "pose" in init:
        starts.append(init["pose"])
    if prev is not None:
        starts.append(prev.pose.expand(t, -1, -1))
    fingers = torch.tensor(
        [ty not in ("wrist", "metacarpal") for ty in obj.model.joint_types], device=obj.lo.device
    )
    for flex in obj.cfg.init_flexions:
        a = torch.zeros_like(obj.lo)
        a[fingers, 0] = flex
        a = torch.minimum(torch.maximum(a, obj.lo), obj.hi)
        starts.append(obj.model.anatomical_to_pose(a[None]).expand(t, -1, -1))
    if not starts:
        raise ValueError("fit.init_flexions: give at least one start pose")
    return torch.stack(starts, dim=1)


def rigid_hypotheses(
    obj: FitObjective,
    obs: Observations,
    betas: Tensor,
    pose: Tensor,
    init: dict[str, Tensor],
    prev: WarmStart | None,
) -> tuple[Tensor, Tensor]:
    """The best distinct rigid alignments of the palm per frame.

    Args:
        pose: (T, J, 3) pose that shapes the palm.

    Returns:
        global_orient (T, Ho, 3) and transl (T, Ho, 3), Ho ≤ ``num_fit_hypotheses``.
    """
    cfg, m = obj.cfg, obj.model
    t = len(obs)
    if "global_orient" in init and "transl" in init:
        return init["global_orient"][:, None], init["transl"][:, None]
    zero = pose.new_zeros(t, 3)
    with torch.no_grad():
        kp0 = m.forward_keypoints(zero, pose, betas, zero)
    body = kp0 - kp0[:, :1]  # root-relative keypoints at identity orientation
    palm = list(PALM_KEYPOINTS)
    centre = _backproject(obs, _depth_from_scale(obj, obs, body))
    # hypotheses (orientation, wrist position): given / warm start first, so that ties keep them
    starts, centres = [], []
    if "global_orient" in init:
        starts.append(init["global_orient"])
        centres.append(centre)
    if prev is not None:
        starts.append(prev.global_orient.expand(t, 3))
        centres.append(prev.keypoints[-1, 0].expand(t, 3))
    has3d = (obs.kp3d[:, palm, 3] > 0).all(dim=-1)
    if has3d.any():
        rot = roma.rigid_points_registration(body[:, palm], obs.kp3d[:, palm, :3])[0]
        starts.append(torch.where(has3d[:, None], roma.rotmat_to_rotvec(rot), 0.0))
        centres.append(centre)
    g = torch.Generator().manual_seed(cfg.seed)
    quats = torch.nn.functional.normalize(torch.randn(cfg.num_orientation_hypotheses, 4, generator=g), dim=-1)
    for q in roma.unitquat_to_rotvec(quats.to(pose)):
        starts.append(q.expand(t, 3))
        centres.append(centre)
    rv = torch.stack(starts, dim=1).detach().clone().requires_grad_(True)  # (T, H, 3)
    c = torch.stack(centres, dim=1).detach().clone().requires_grad_(True)  # (T, H, 3)
    h = rv.shape[1]
    obs2d, obs3d = obs.kp2d[:, None, palm], obs.kp3d[:, None, palm]
    kk = obs.K[:, None].expand(t, h, 3, 3).reshape(t * h, 3, 3)

    def loss_fn() -> Tensor:  # (T, H)
        rel = (rotvec_to_rotmat(rv)[:, :, None] @ body[:, None, palm, :, None])[..., 0]
        uv = project((rel + c[:, :, None]).reshape(t * h, -1, 3), kk, MIN_DEPTH).view(t, h, -1, 2)
        u2 = (uv - obs2d[..., :2]).square().sum(-1) / cfg.robust_scale_px**2
        v3 = obs3d[..., 3]
        u3 = (centred(rel, v3) - centred(obs3d[..., :3], v3)).square().sum(-1) / cfg.robust_scale_3d**2
        e2 = (obs2d[..., 2] * robust(u2, cfg.robust_loss)).mean(-1)
        return cfg.weight_2d * e2 + cfg.weight_3d * (v3 * robust(u3, cfg.robust_loss)).mean(-1)

    opt = torch.optim.Adam([rv, c], lr=cfg.rigid_lr)
    for _ in range(cfg.rigid_iterations):
        opt.zero_grad()
        loss_fn().sum().backward()
        opt.step()
    with torch.no_grad():
        rot = roma.rotvec_to_rotmat(rv)
        keep = _distinct_best(loss_fn(), rot, cfg.num_fit_hypotheses, cfg.hypothesis_min_angle)
        frames = torch.arange(t, device=rv.device)[:, None]
        go, wrist = rv[frames, keep].detach(), c[frames, keep].detach()  # (T, Ho, 3)
        ho = keep.shape[1]
        # the wrist keypoint does not depend on the pose: place it at the chosen centre
        posed = m.forward_keypoints(
            go.reshape(-1, 3), pose.repeat_interleave(ho, 0), betas, zero.repeat_interleave(ho, 0)
        )
    return go, wrist - posed[:, 0].view(t, ho, 3)


def select_hypothesis(
    obj: FitObjective,
    obs: Observations,
    go: Tensor,
    transl: Tensor,
    poses: Tensor,
    betas: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fit every (orientation, pose start) pair, recombine fingers, keep each frame's best candidate.

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
    its = obj.cfg.hypothesis_iterations
    go_h = go.repeat_interleave(p, dim=1).reshape(t * h, 3)
    tr_h = transl.repeat_interleave(p, dim=1).reshape(t * h, 3)
    pose_h = poses.repeat(1, ho, 1, 1).reshape(t * h, *poses.shape[2:])
    fit = obj.optimise(obs.repeat(h), go_h, pose_h, betas, tr_h, iterations=its, smooth=False)
    candidates = [x.view(t, h, *x.shape[1:]) for x in (fit.global_orient, fit.pose, fit.transl, fit.loss)]
    if p > 1:  # the fingers are nearly independent: each finger from its best start, refitted
        g2, p2, t2 = _recombine(obj, obs.repeat(h), fit, betas, t * ho, p)
        fit2 = obj.optimise(obs.repeat(ho), g2, p2, betas, t2, iterations=its, smooth=False)
        extra = (fit2.global_orient, fit2.pose, fit2.transl, fit2.loss)
        candidates = [torch.cat([a, b.view(t, ho, *b.shape[1:])], dim=1) for a, b in zip(candidates, extra)]
    g, ps, tr, loss = candidates
    choice = loss.argmin(dim=1)
    frames = torch.arange(t, device=go.device)
    return g[frames, choice], ps[frames, choice], tr[frames, choice]


def propagate(
    obj: FitObjective,
    obs: Observations,
    go: Tensor,
    pose: Tensor,
    betas: Tensor,
    transl: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Offer each frame its own and its neighbours' solutions as starts, refit alone, keep the best."""
    t = go.shape[0]
    frames = torch.arange(t, device=go.device)
    sources = torch.stack([frames, (frames - 1).clamp_min(0), (frames + 1).clamp_max(t - 1)], dim=1)
    h = sources.shape[1]
    idx = sources.flatten()
    its = obj.cfg.hypothesis_iterations
    fit = obj.optimise(obs.repeat(h), go[idx], pose[idx], betas, transl[idx], iterations=its, smooth=False)
    pick = frames * h + fit.loss.view(t, h).argmin(dim=1)
    return fit.global_orient[pick], fit.pose[pick], fit.transl[pick]


def fill_unobserved(
    obs: Observations, go: Tensor, pose: Tensor, transl: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Frames without any keypoint take the parameters of the nearest observed frame (earlier on
    ties), so that the smoothed fit starts them where the motion is, not at an arbitrary guess."""
    seen = (obs.kp2d[..., 2] > 0).any(-1) | (obs.kp3d[..., 3] > 0).any(-1)
    if seen.all() or not seen.any():
        return go, pose, transl
    frames = torch.arange(len(obs), device=seen.device)
    observed = torch.nonzero(seen).flatten()
    nearest = observed[(frames[:, None] - observed[None]).abs().argmin(dim=1)]
    return go[nearest], pose[nearest], transl[nearest]


def _recombine(
    obj: FitObjective, obs: Observations, fit, betas: Tensor, n: int, p: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per (frame, orientation) group of p fitted starts, take each finger's joints from the start
    where that finger (its keypoints and joints) costs least; the rest from the best start overall.

    Returns:
        global_orient (n, 3), pose (n, J, 3), transl (n, 3).
    """
    with torch.no_grad():
        kp_cost, joint_cost, _ = obj.terms(obs, fit.global_orient, fit.pose, betas, fit.transl)
    base = (kp_cost.sum(-1) + joint_cost.sum(-1)).view(n, p).argmin(dim=1)
    first = torch.arange(n, device=fit.pose.device) * p
    pose = fit.pose[first + base].clone()
    for f, joints in enumerate(obj.model.finger_joints):
        cost = kp_cost[:, list(FINGER_KEYPOINTS[f])].sum(-1) + joint_cost[:, list(joints)].sum(-1)
        pick = first + cost.view(n, p).argmin(dim=1)
        pose[:, list(joints)] = fit.pose[pick][:, list(joints)]
    return fit.global_orient[first + base], pose, fit.transl[first + base]


def _distinct_best(loss: Tensor, rot: Tensor, k: int, min_angle: float) -> Tensor:
    """(T, k) indices of the lowest-loss hypotheses at least ``min_angle`` apart, per frame.

    Args:
        loss: (T, H); rot: (T, H, 3, 3) the hypotheses' rotations. Frames with fewer distinct
            hypotheses repeat their best one.
    """
    order = loss.argsort(dim=1)
    cos = ((rot[:, :, None] * rot[:, None]).sum((-1, -2)) - 1.0) / 2.0  # (T, H, H) cos of the angle
    far = (cos < math.cos(min_angle)).tolist()
    keep = []
    for f, ranked in enumerate(order.tolist()):
        chosen: list[int] = []
        for h in ranked:
            if all(far[f][h][c] for c in chosen):
                chosen.append(h)
                if len(chosen) == k:
                    break
        keep.append(chosen + chosen[:1] * (k - len(chosen)))
    return torch.tensor(keep, device=loss.device)


def _depth_from_scale(obj: FitObjective, obs: Observations, body: Tensor) -> Tensor:
    """(T,) wrist depth from the palm's metric spread over its pixel spread (weak perspective)."""
    palm = list(PALM_KEYPOINTS)
    conf = obs.kp2d[:, palm, 2]
    w = conf / conf.sum(-1, keepdim=True).clamp_min(torch.finfo(conf.dtype).tiny)
    xy = obs.kp2d[:, palm, :2]
    mean2d = (w[..., None] * xy).sum(1, keepdim=True)
    spread2d = (w * (xy - mean2d).square().sum(-1)).sum(-1).sqrt()
    metric = torch.where(obs.kp3d[:, palm, 3:] > 0, obs.kp3d[:, palm, :3], body[:, palm])
    spread3d = (metric - metric.mean(1, keepdim=True)).square().sum(-1).mean(-1).sqrt()
    depth = obs.K[:, [0, 1], [0, 1]].mean(-1) * spread3d / spread2d
    fallback = torch.full_like(depth, obj.cfg.default_depth)
    enough = (conf > 0).sum(-1) >= obj.cfg.min_palm_keypoints
    return torch.where(enough & torch.isfinite(depth), depth, fallback)


def _backproject(obs: Observations, depth: Tensor) -> Tensor:
    """(T, 3) camera point at ``depth`` under the wrist pixel (the palm centroid if the wrist is missing)."""
    palm = list(PALM_KEYPOINTS)
    conf = obs.kp2d[:, palm, 2]
    total = conf.sum(-1, keepdim=True).clamp_min(torch.finfo(conf.dtype).tiny)
    centroid = (conf[..., None] * obs.kp2d[:, palm, :2]).sum(1) / total
    uv = torch.where(obs.kp2d[:, :1, 2] > 0, obs.kp2d[:, 0, :2], centroid)
    xy = (uv - obs.K[:, :2, 2]) / obs.K[:, [0, 1], [0, 1]] * depth[:, None]
    return torch.cat([xy, depth[:, None]], dim=-1)
