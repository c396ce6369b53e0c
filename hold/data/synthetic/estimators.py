"""Emulated off-the-shelf estimators: what a segmenter and a hand-pose network would output.

They degrade the exact ground truth in the ways real estimators fail: ragged mask boundaries,
spurious blobs, thin object parts missing and hand/object labels confused near the contact; noisy,
partly dropped 2D keypoints with outliers and lower confidence where the hand is occluded; noisy
root-relative 3D keypoints; the whole hand missed in runs of frames. ``NoiseConfig`` sets how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_opening, distance_transform_edt, gaussian_filter

from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT, LABEL_RIGHT
from hold.data.synthetic.config import NoiseConfig
from hold.geometry.camera import project

_FOREGROUND = (LABEL_OBJECT, LABEL_RIGHT)
_BLOB_ASPECT = (0.5, 1.0)  # range of a spurious blob's minor/major axis ratio
_CONF_MIN = 0.01  # smallest confidence of a kept keypoint (0 means dropped)
_CONFUSION_LEVEL = 0.5  # contact confusion swaps where the smooth unit-variance field exceeds this


def noisy_masks(labels: np.ndarray, cfg: NoiseConfig, rng: np.random.Generator) -> np.ndarray:
    """Segmenter-like label maps: thin object parts removed (``mask_thin_px``), boundaries displaced
    by smooth noise, hand/object labels swapped in patches near their boundary
    (``mask_contact_confusion_px``), occasional spurious blobs.

    Args:
        labels: (T, H, W) uint8 exact label maps.
        cfg: noise levels.
        rng: random generator.

    Returns:
        (T, H, W) uint8 label maps.
    """
    out = np.empty_like(labels)
    T, H, W = labels.shape
    yy, xx = np.mgrid[0:H, 0:W]
    for t in range(T):
        exact = remove_thin_parts(labels[t], cfg.mask_thin_px) if cfg.mask_thin_px > 0 else labels[t]
        # Each class grows where its boundary displacement is positive and shrinks where negative;
        # overlapping growths go to the class whose displaced boundary is deepest.
        best = np.zeros((H, W))
        frame = np.full((H, W), LABEL_BACKGROUND, np.uint8)
        for label in _FOREGROUND:
            region = exact == label
            if not region.any():
                continue
            signed = distance_transform_edt(~region) - distance_transform_edt(region)
            field = gaussian_filter(rng.normal(size=(H, W)), cfg.mask_boundary_smooth_px)
            field *= cfg.mask_boundary_px / max(float(field.std()), 1e-12)
            depth_inside = field - signed
            take = (depth_inside > 0) & (depth_inside > best)
            frame[take], best[take] = label, depth_inside[take]
        if cfg.mask_contact_confusion_px > 0:
            frame = confuse_near_contact(frame, cfg.mask_contact_confusion_px, rng)
        if rng.random() < cfg.mask_blob_prob:
            radius = cfg.mask_blob_radius * min(H, W)
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
            ax, ay = radius, radius * rng.uniform(*_BLOB_ASPECT)
            angle = rng.uniform(0, np.pi)
            dx, dy = xx - cx, yy - cy
            u = dx * np.cos(angle) + dy * np.sin(angle)
            v = -dx * np.sin(angle) + dy * np.cos(angle)
            frame[(u / ax) ** 2 + (v / ay) ** 2 <= 1.0] = rng.choice(_FOREGROUND)
        out[t] = frame
    return out


def remove_thin_parts(labels: np.ndarray, width_px: float) -> np.ndarray:
    """(H, W) label map whose object parts narrower than ``width_px`` turned background.

    A morphological opening of the object label by a disc of diameter ``width_px`` (rounded up to
    an odd number of pixels): the parts the disc does not fit in vanish.
    """
    n = max(int(np.ceil(width_px)) | 1, 1)  # odd side, so the disc is centred on a pixel
    r = np.arange(n) - n // 2
    disc = r[:, None] ** 2 + r[None] ** 2 <= (n / 2) ** 2
    region = labels == LABEL_OBJECT
    out = labels.copy()
    out[region & ~binary_opening(region, disc)] = LABEL_BACKGROUND
    return out


def confuse_near_contact(frame: np.ndarray, distance_px: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W) label map with the hand and object labels swapped in random patches within
    ``distance_px`` of their common boundary (patches about that size)."""
    hand, obj = frame == LABEL_RIGHT, frame == LABEL_OBJECT
    if not hand.any() or not obj.any():
        return frame
    near = (hand & (distance_transform_edt(~obj) <= distance_px)) | (
        obj & (distance_transform_edt(~hand) <= distance_px)
    )
    field = gaussian_filter(rng.normal(size=frame.shape), distance_px / 2)
    swap = near & (field > _CONFUSION_LEVEL * max(float(field.std()), 1e-12))
    out = frame.copy()
    out[swap & hand], out[swap & obj] = LABEL_OBJECT, LABEL_RIGHT
    return out


@dataclass
class HandEstimates:
    """Emulated hand-pose network output (the RAW ``hands.npz`` arrays of one hand)."""

    kp2d: np.ndarray  # (T, 21, 3) pixel x, y, confidence (0 = dropped)
    kp3d: np.ndarray  # (T, 21, 3) root-relative, camera axes, metres
    valid: np.ndarray  # (T,) bool
    occluded: np.ndarray  # (T, 21) bool: outside the image or behind another surface (diagnostic)


def keypoint_occlusion(
    joints: np.ndarray, K: np.ndarray, labels: np.ndarray, depth: np.ndarray, hand_label: int = LABEL_RIGHT
) -> np.ndarray:
    """Which keypoints a camera cannot see: outside the image, or behind a non-hand surface.

    Args:
        joints: (T, 21, 3) camera frame.
        K: (3, 3) intrinsics.
        labels: (T, H, W) exact label maps.
        depth: (T, H, W) z-depth of the nearest surface.
        hand_label: label of the hand's pixels.

    Returns:
        (T, 21) bool.
    """
    T, H, W = labels.shape
    uv = np.floor(project(joints, K)).astype(int)
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    u, v = np.clip(uv[..., 0], 0, W - 1), np.clip(uv[..., 1], 0, H - 1)
    t = np.arange(T)[:, None]
    behind = (labels[t, v, u] != hand_label) & (depth[t, v, u] < joints[..., 2])
    return ~inside | behind


def emulate_hand_estimates(
    joints: np.ndarray,
    K: np.ndarray,
    labels: np.ndarray,
    depth: np.ndarray,
    cfg: NoiseConfig,
    rng: np.random.Generator,
) -> HandEstimates:
    """Noisy 2D/3D keypoints with confidences, outliers and dropouts from the GT joints.

    Args:
        joints: (T, 21, 3) GT keypoints, camera frame, metres (common order, 0 = wrist).
        K: (3, 3) intrinsics.
        labels: (T, H, W) exact label maps (for occlusion).
        depth: (T, H, W) exact z-depth (for occlusion).
        cfg: noise levels.
        rng: random generator.
    """
    T, J, _ = joints.shape
    occluded = keypoint_occlusion(joints, K, labels, depth)
    uv = project(joints, K) + rng.normal(0.0, cfg.kp2d_noise_px, (T, J, 2))
    mean = np.where(occluded, cfg.kp2d_conf_occluded, cfg.kp2d_conf_visible)
    conf = np.clip(mean + rng.normal(0.0, cfg.kp2d_conf_jitter, (T, J)), _CONF_MIN, 1.0)
    conf[rng.random((T, J)) < cfg.kp2d_dropout_prob] = 0.0
    valid = rng.random(T) >= cfg.hand_dropout_prob
    kp3d = joints - joints[:, :1] + rng.normal(0.0, cfg.kp3d_noise_m, (T, J, 3))
    # The options draw after the defaults' draws: switching one on leaves every other value alone.
    if cfg.kp3d_frame_noise_m > 0:  # the whole hand misplaced relative to its root, per frame
        kp3d += rng.normal(0.0, cfg.kp3d_frame_noise_m, (T, 1, 3))
    kp3d[:, 0] = 0.0  # root-relative: the root is the origin by definition
    if cfg.kp2d_outlier_prob > 0:
        outlier = rng.random((T, J)) < cfg.kp2d_outlier_prob
        angle = rng.uniform(0, 2 * np.pi, (T, J))
        length = rng.uniform(0, cfg.kp2d_outlier_px, (T, J)) * outlier
        uv += length[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    if cfg.hand_dropout_runs > 0:
        valid &= ~dropout_runs(T, cfg.hand_dropout_runs, cfg.hand_dropout_fraction, rng)
    conf[~valid] = 0.0
    return HandEstimates(
        kp2d=np.concatenate([uv, conf[..., None]], -1).astype(np.float32),
        kp3d=kp3d.astype(np.float32),
        valid=valid,
        occluded=occluded,
    )


def dropout_runs(
    num_frames: int, runs: int, fraction: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """(T,) bool: frames in which a detector misses the hand, in up to ``runs`` separate runs.

    The runs cover a share of the clip drawn uniformly from ``fraction`` (rounded to whole frames);
    their lengths and the gaps between them are random, gaps between runs at least one frame.
    """
    lo, hi = fraction
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"hand_dropout_fraction must satisfy 0 <= lo <= hi <= 1, got {fraction}")
    T = num_frames
    missed = int(round(rng.uniform(lo, hi) * T))
    k = min(runs, missed, T - missed + 1)  # k runs need k - 1 separating frames
    out = np.zeros(T, bool)
    if k <= 0:
        return out
    # Run lengths: a random composition of `missed` into k positive parts.
    cuts = np.sort(rng.choice(np.arange(1, missed), k - 1, replace=False)) if k > 1 else np.array([], int)
    lengths = np.diff(np.concatenate([[0], cuts, [missed]]))
    # Gaps: k + 1 of them (before, between, after), the inner ones >= 1; share out the spare frames.
    spare = T - missed - (k - 1)
    bars = np.sort(rng.choice(np.arange(spare + k), k, replace=False))
    gaps = np.diff(np.concatenate([[-1], bars, [spare + k]])) - 1  # k + 1 non-negative parts
    gaps[1:-1] += 1
    start = 0
    for gap, length in zip(gaps[:-1], lengths):
        start += gap
        out[start : start + length] = True
        start += length
    return out
