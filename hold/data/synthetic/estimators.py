"""Emulated off-the-shelf estimators: what a segmenter and a hand-pose network would output.

They degrade the exact ground truth in the ways real estimators fail: ragged mask boundaries and
spurious blobs; noisy, partly dropped 2D keypoints with lower confidence where the hand is occluded;
noisy root-relative 3D keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter

from hold.data.synthetic.config import NoiseConfig

LABEL_BACKGROUND, LABEL_OBJECT, LABEL_RIGHT = 0, 1, 2
_FOREGROUND = (LABEL_OBJECT, LABEL_RIGHT)
_BLOB_ASPECT = (0.5, 1.0)  # range of a spurious blob's minor/major axis ratio
_CONF_MIN = 0.01  # smallest confidence of a kept keypoint (0 means dropped)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection.

    Args:
        points: (..., 3) camera frame.
        K: (3, 3) intrinsics.

    Returns:
        (..., 2) pixel coordinates; pixel (i, j) covers [i, i+1) × [j, j+1).
    """
    uvw = points @ K.T
    return uvw[..., :2] / uvw[..., 2:3]


def noisy_masks(labels: np.ndarray, cfg: NoiseConfig, rng: np.random.Generator) -> np.ndarray:
    """Segmenter-like label maps: boundaries displaced by smooth noise, occasional spurious blobs.

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
        # Each class grows where its boundary displacement is positive and shrinks where negative;
        # overlapping growths go to the class whose displaced boundary is deepest.
        best = np.zeros((H, W))
        frame = np.full((H, W), LABEL_BACKGROUND, np.uint8)
        for label in _FOREGROUND:
            region = labels[t] == label
            if not region.any():
                continue
            signed = distance_transform_edt(~region) - distance_transform_edt(region)
            field = gaussian_filter(rng.normal(size=(H, W)), cfg.mask_boundary_smooth_px)
            field *= cfg.mask_boundary_px / max(float(field.std()), 1e-12)
            depth_inside = field - signed
            take = (depth_inside > 0) & (depth_inside > best)
            frame[take], best[take] = label, depth_inside[take]
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
    """Noisy 2D/3D keypoints with confidences and dropouts from the GT joints.

    Args:
        joints: (T, 21, 3) GT keypoints, camera frame, metres (DESIGN order, 0 = wrist).
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
    conf[~valid] = 0.0
    kp3d = joints - joints[:, :1] + rng.normal(0.0, cfg.kp3d_noise_m, (T, J, 3))
    kp3d[:, 0] = 0.0  # root-relative: the root is the origin by definition
    return HandEstimates(
        kp2d=np.concatenate([uv, conf[..., None]], -1).astype(np.float32),
        kp3d=kp3d.astype(np.float32),
        valid=valid,
        occluded=occluded,
    )
