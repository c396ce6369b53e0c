"""Object poses from the hand where SfM has none: a held object moves rigidly with the hand.

While the hand holds the object, the hand-to-object transform ``M_t = T_h(t)⁻¹ T_o(t)`` is nearly
constant. A frame SfM did not register gets ``T_o(t) = T_h(t) M`` with ``M`` interpolated between the
registered frames nearest before and after it (SLERP for the rotation, linear for the offset, by frame
index; the nearest one beyond the first / last). Where SfM registered (almost) nothing, the whole
trajectory comes from the hand: the object's canonical axes are the camera's at the reference frame
and its origin the object's centre there, estimated from its mask at the fingertips' depth.

Rotations are scale-free; translations are in the caller's length unit, given as metres per unit
(SfM's units are arbitrary: ``metres_per_unit`` converts the hand into them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial.transform import Rotation, Slerp

from hold.config.hand import HandConfig
from hold.data.sequence import LABEL_OBJECT, SOURCE_HAND, SOURCE_INTERPOLATED, SOURCE_SFM
from hold.hand.build import build_hand_model
from hold.hand.model import HandOutput
from hold.utils.logging import get_logger
from preprocess.config import SfmConfig
from preprocess.errors import PreprocessError
from preprocess.frames import load_frame
from preprocess.hull import mask_hull, normalise

STEP = "sfm"
SPHERE_POINTS = 500
"""Points spread on a sphere that stands in for an object bound (mask reach, no hull)."""
MIN_HULL_VOXELS = 8
"""A hull with fewer voxels is no shape: the masks carved everything."""
log = get_logger("preprocess.sfm")

FINGERTIPS = [4, 8, 12, 16, 20]
"""Fingertip keypoints in the common 21-keypoint order."""


@dataclass
class HandFrames:
    """One hand's rigid frame per video frame.

    Attributes:
        side: ``right`` or ``left``.
        R: (T, 3, 3) rotation of the hand's root bone (canonical hand → camera).
        origin: (T, 3) position of the root bone's origin, metres, camera frame.
        tips: (T, 5, 3) fingertip keypoints, metres, camera frame.
        valid: (T,) frames whose hand was fitted to keypoints (the rest were filled from neighbours).
    """

    side: str
    R: np.ndarray
    origin: np.ndarray
    tips: np.ndarray
    valid: np.ndarray


def pose_fitted_hand(hands: dict[str, np.ndarray], side: str, hand_cfg: HandConfig) -> HandOutput:
    """The hand model posed with one side's fitted parameters of ``hands.npz`` (float64, no gradient)."""
    model = build_hand_model(hand_cfg, side).to(torch.float64)
    p = {
        k: torch.as_tensor(hands[f"{side}.{k}"], dtype=torch.float64)
        for k in ("global_orient", "pose", "betas", "transl")
    }
    with torch.no_grad():
        return model(p["global_orient"], p["pose"], p["betas"], p["transl"])


def load_hand_frames(hands_dir: Path, hand_cfg: HandConfig) -> HandFrames | None:
    """The hand with the most fitted frames from ``hands.npz``; None when no frame was fitted."""
    with np.load(hands_dir / "hands.npz") as f:
        hands = {k: f[k] for k in f.files}
    sides = [s for s in ("right", "left") if f"{s}.transl" in hands]
    sides = [s for s in sides if hands[f"{s}.valid"].any()]
    if not sides:
        return None
    side = max(sides, key=lambda s: int(hands[f"{s}.valid"].sum()))
    out = pose_fitted_hand(hands, side, hand_cfg)
    root = out.bone_transforms[:, 0].numpy()
    return HandFrames(
        side=side,
        R=root[:, :3, :3],
        origin=root[:, :3, 3],
        tips=out.keypoints[:, FINGERTIPS].numpy(),
        valid=hands[f"{side}.valid"].astype(bool),
    )


def robust_mean_rotation(R: np.ndarray, scale_deg: float, iterations: int = 10) -> np.ndarray:
    """(3, 3) rotation minimising a Geman-McClure-weighted chordal distance to the rotations (N, 3, 3)."""
    weights = np.ones(len(R))
    mean = R[0]
    for _ in range(iterations):
        U, _, Vt = np.linalg.svd(np.einsum("n,nij->ij", weights, R))
        mean = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
        angle = rotation_angles_deg(R @ mean.T)
        weights = (scale_deg**2 / (angle**2 + scale_deg**2)) ** 2  # Geman-McClure IRLS weights
    return mean


def rotation_angles_deg(R: np.ndarray) -> np.ndarray:
    """(N,) angles of rotations (N, 3, 3), degrees."""
    return np.degrees(Rotation.from_matrix(R).magnitude())


def hand_relative(R_o: np.ndarray, t_o: np.ndarray, hand: HandFrames, metres_per_unit: float):
    """The object's pose in the hand's frame: ``M_R = R_hᵀ R_o`` (T, 3, 3), ``M_t = R_hᵀ (t_o − o_h)`` (T, 3)."""
    RhT = np.transpose(hand.R, (0, 2, 1))
    return RhT @ R_o, np.einsum("tij,tj->ti", RhT, t_o - hand.origin / metres_per_unit)


def anchor_to_hand(
    R_o: np.ndarray,
    t_o: np.ndarray,
    known: np.ndarray,
    hand: HandFrames,
    metres_per_unit: float,
    known_rotation: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the frames that are not ``known`` from the hand (module docstring).

    Args:
        R_o, t_o: (T, 3, 3), (T, 3) object → camera; only the ``known`` frames are read.
        known: (T,) bool, at least one frame.
        hand: the hand's frames.
        metres_per_unit: the length unit of ``t_o``.
        known_rotation: (T,) bool, further frames whose rotation (not translation) is known and kept.

    Returns:
        Rotations (T, 3, 3) and translations (T, 3), equal to the inputs on the known frames.
    """
    idx = np.flatnonzero(known)
    if len(idx) == 0:
        raise ValueError("anchor_to_hand needs at least one frame with a known object pose")
    M_R, M_t = hand_relative(R_o[idx], t_o[idx], _subset(hand, idx), metres_per_unit)
    T = len(known)
    frames = np.clip(np.arange(T), idx[0], idx[-1])
    if len(idx) > 1:
        M_R_all = Slerp(idx, Rotation.from_matrix(M_R))(frames).as_matrix()
        M_t_all = np.stack([np.interp(frames, idx, M_t[:, k]) for k in range(3)], -1)
    else:
        M_R_all, M_t_all = np.repeat(M_R, T, 0), np.repeat(M_t, T, 0)
    R = hand.R @ M_R_all
    t = hand.origin / metres_per_unit + np.einsum("tij,tj->ti", hand.R, M_t_all)
    R[idx], t[idx] = R_o[idx], t_o[idx]
    if known_rotation is not None:
        R[known_rotation] = R_o[known_rotation]
    return R, t


def merge_by_hand(
    R: np.ndarray,
    registered: np.ndarray,
    others: list[tuple[np.ndarray, np.ndarray]],
    hand: HandFrames | None,
    scale_deg: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Rotations of frames that only smaller SfM models registered, in the main model's frame.

    A smaller model's world differs from the main one's by a rotation Q (``R_main(t) = R_other(t) Q``):
    estimated from the frames both registered when there are two or more, else through the hand (the
    object's rotation in the hand is the main model's robust mean). The smaller model's relative
    rotations are kept: they are SfM's, exact up to that one Q, where per-frame hand anchoring
    carries each frame's hand-orientation error.

    Args:
        R: (T, 3, 3) main-model rotations; ``registered``: (T,) its frames.
        others: the smaller models' (R (T, 3, 3), registered (T,)), largest first.
        hand: the hand's frames (None: only overlapping models are merged).
        scale_deg: robust scale of the mean rotations (``sfm.hand_robust_scale_deg``).

    Returns:
        The rotations with merged frames filled in, and (T,) bool: the merged frames.
    """
    R = R.copy()
    merged = np.zeros(len(R), bool)
    main_hand = registered & (hand.valid if hand is not None else False)
    M = None
    if hand is not None and main_hand.sum() >= 3:
        M = robust_mean_rotation(np.transpose(hand.R[main_hand], (0, 2, 1)) @ R[main_hand], scale_deg)
    for R_b, reg_b in others:
        new = reg_b & ~registered & ~merged
        if not new.any():
            continue
        both = reg_b & registered
        if both.sum() >= 2:
            Q = robust_mean_rotation(np.transpose(R_b[both], (0, 2, 1)) @ R[both], scale_deg)
        elif M is not None and (reg_b & hand.valid).sum() >= 3:
            judged = reg_b & hand.valid
            Q = robust_mean_rotation(np.transpose(R_b[judged], (0, 2, 1)) @ hand.R[judged] @ M, scale_deg)
        else:
            continue
        R[new] = R_b[new] @ Q
        merged |= new
    return R, merged


def _subset(hand: HandFrames, idx: np.ndarray) -> HandFrames:
    return HandFrames(hand.side, hand.R[idx], hand.origin[idx], hand.tips[idx], hand.valid[idx])


def object_centre_from_mask(mask: np.ndarray, K: np.ndarray, depth: float) -> tuple[np.ndarray, float]:
    """The object's centre (3,) back-projected from its mask's centroid at ``depth``, and a radius (m)
    from the mask's area (a disc of the same area at that depth)."""
    v, u = np.nonzero(mask)
    x = (u.mean() - K[0, 2]) / K[0, 0] * depth
    y = (v.mean() - K[1, 2]) / K[1, 1] * depth
    radius = np.sqrt(len(u) / np.pi) * depth / np.sqrt(K[0, 0] * K[1, 1])
    return np.array([x, y, depth]), float(radius)


def hand_only_track(hand: HandFrames, reference: int, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A whole trajectory from the hand, in metres: canonical axes = the camera's at ``reference``,
    canonical origin = ``centre`` (camera frame at ``reference``)."""
    R_o = np.repeat(np.eye(3)[None], len(hand.R), 0)
    t_o = np.repeat(centre[None], len(hand.R), 0)
    known = np.zeros(len(hand.R), bool)
    known[reference] = True
    return anchor_to_hand(R_o, t_o, known, hand, 1.0)


@dataclass
class ObjectEstimate:
    """Per-frame object poses and the points bounding the object, in one length unit.

    Attributes:
        R, trans: (T, 3, 3), (T, 3) object → camera, ``x_cam = R x + trans`` (in ``unit``).
        points: (P, 3) SfM points (sfm mode) or hull voxels (hand mode), object frame.
        colors: (P, 3) uint8.
        extent: (N, 3) the points bounding the object (points ∪ mask hull).
        source: (T,) uint8 ``OBJECT_SOURCES`` codes.
        metres_per_unit: metres per length unit (an estimate in sfm mode; 1 in hand mode).
        hull_growth: how much the hull enlarged the points' radius.
        warnings: fallbacks taken while estimating (also logged).
    """

    R: np.ndarray
    trans: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    extent: np.ndarray
    source: np.ndarray
    metres_per_unit: float
    hull_growth: float
    warnings: list[str] = field(default_factory=list)


def hand_deviation(
    R: np.ndarray, registered: np.ndarray, hand: HandFrames | None, scale_deg: float
) -> np.ndarray:
    """(T,) angle (degrees) between each registered frame's object rotation in the hand's frame and the
    robust mean of those; NaN on frames not judged (unregistered, hand not fitted, or fewer than 3)."""
    out = np.full(len(R), np.nan)
    judged = registered & (hand.valid if hand is not None else False)
    if hand is None or judged.sum() < 3:
        return out
    M = np.transpose(hand.R[judged], (0, 2, 1)) @ R[judged]
    out[judged] = rotation_angles_deg(M @ robust_mean_rotation(M, scale_deg).T)
    return out


def hand_scale(model: dict, reliable: np.ndarray, keep: np.ndarray, hand: HandFrames) -> float:
    """Metres per SfM unit, roughly: the fingertips' depth over the SfM cloud centre's depth."""
    centre = np.median(model["xyz"][keep], axis=0)
    frames = np.flatnonzero(reliable & hand.valid)
    frames = frames if len(frames) else np.flatnonzero(reliable)
    z_obj = np.einsum("tij,j->ti", model["R"][frames], centre)[:, 2] + model["trans"][frames, 2]
    z_hand = np.median(hand.tips[frames, :, 2], axis=1)
    ratio = z_hand / z_obj
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    return float(np.median(ratio)) if len(ratio) else 1.0


def fill_sources(known: np.ndarray, hand: HandFrames | None) -> np.ndarray:
    """(T,) codes: SfM where known; hand-anchored where the hand was fitted; interpolated elsewhere."""
    source = np.full(len(known), SOURCE_INTERPOLATED, np.uint8)
    if hand is not None:
        source[hand.valid] = SOURCE_HAND
    source[known] = SOURCE_SFM
    return source


def hand_estimate(
    hand: HandFrames, labels: list[np.ndarray], frames_dir: Path, K: np.ndarray, cfg: SfmConfig
) -> ObjectEstimate:
    """The whole trajectory from the hand (metres) and the object's shape from its mask hull.

    The reference frame is the one with a fitted hand that shows most of the object: the object's
    centre there is its mask centroid at the fingertips' depth, its radius that of a disc of the mask's
    area; the canonical axes are the camera's at that frame.
    """
    area = np.array([(m == LABEL_OBJECT).sum() for m in labels])
    usable = hand.valid & (area > 0)
    if not usable.any():
        raise PreprocessError(
            STEP, "no frame shows both the object and a fitted hand: no pose for the object"
        )
    ref = int(np.argmax(np.where(usable, area, -1)))
    depth = float(np.median(hand.tips[ref, :, 2]))
    centre, radius = object_centre_from_mask(labels[ref] == LABEL_OBJECT, K, depth)
    R, trans = hand_only_track(hand, ref, centre)
    hull = mask_hull(R, trans, K, labels, np.flatnonzero(usable), np.zeros(3), cfg.hull_extent * radius, cfg)
    warnings = []
    if len(hull) < MIN_HULL_VOXELS:
        warnings.append(
            "the object masks carve the whole hull around the hand-anchored poses: the object starts as a "
            f"sphere of radius {100 * radius:.1f} cm (from its mask in frame {ref})"
        )
        log.warning("%s", warnings[-1])
        hull = sphere_points(radius, SPHERE_POINTS)
    # The hull carved with hand-anchored poses shrinks where those poses are off: bound the object by its
    # masks' reach from the anchored centre too, so that stage 1's sphere holds all of it.
    reach = mask_reach(labels, trans, K, np.flatnonzero(usable), cfg.mask_reach_percentile)
    extent = np.concatenate([hull, sphere_points(reach, SPHERE_POINTS)])
    surface = hull_surface(hull, 2 * cfg.hull_extent * radius / cfg.hull_resolution)
    image = load_frame(frames_dir, ref)
    uvw = (surface @ R[ref].T + trans[ref]) @ K.T
    uv = np.round(uvw[:, :2] / uvw[:, 2:3]).astype(int)
    H, W = image.shape[:2]
    colors = image[uv[:, 1].clip(0, H - 1), uv[:, 0].clip(0, W - 1)]
    growth = normalise(extent, 1.0)[1] / normalise(hull, 1.0)[1]
    return ObjectEstimate(
        R, trans, surface, colors, extent, fill_sources(np.zeros(len(R), bool), hand), 1.0, growth, warnings
    )


def hull_surface(voxels: np.ndarray, size: float) -> np.ndarray:
    """The voxels (N, 3) of a grid with spacing ``size`` that miss one of their six neighbours: the
    hull's surface, which stands in for the object's surface until training meshes it."""
    from scipy.spatial import cKDTree

    neighbours = cKDTree(voxels).query_ball_point(voxels, 1.01 * size, return_length=True)
    surface = voxels[neighbours < 7]
    return surface if len(surface) else voxels


def mask_reach(
    labels: list[np.ndarray], centres: np.ndarray, K: np.ndarray, frames: np.ndarray, percentile: float
) -> float:
    """How far (m) the object's mask reaches from its centre: per frame, the farthest pixel of the mask's
    largest component from the centre's projection, at the centre's depth; the given percentile over the frames."""
    reach = []
    f = float(np.sqrt(K[0, 0] * K[1, 1]))
    for t in frames:
        components, count = ndimage.label(labels[t] == LABEL_OBJECT)
        if count == 0 or centres[t, 2] <= 0:
            continue
        v, u = np.nonzero(components == 1 + int(np.argmax(np.bincount(components.ravel())[1:])))
        c = K @ centres[t]
        d = np.hypot(u - c[0] / c[2], v - c[1] / c[2]).max()
        reach.append(d * centres[t, 2] / f)
    return float(np.percentile(reach, percentile))


def sphere_points(radius: float, count: int) -> np.ndarray:
    """(count, 3) points spread evenly on a sphere (Fibonacci lattice)."""
    i = np.arange(count) + 0.5
    phi, z = np.pi * (1 + 5**0.5) * i, 1 - 2 * i / count
    r = np.sqrt(1 - z**2)
    return radius * np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)
