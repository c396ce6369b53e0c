"""The object's extent from its masks: a visual hull in SfM coordinates, for the canonical normalisation.

SfM triangulates only the textured, often-seen parts of the object, so a canonical frame normalised by
its points alone can leave part of the object outside the sphere that stage 1 reconstructs in (on a
256×256 render of the demo bottle: the neck and base, 15–40 % of the surface). Space carving (Kutulakos & Seitz, IJCV 2000)
with the object masks bounds the whole object: a voxel of a grid around the cloud stays when, in the
registered frames that see it, it projects onto background in at most ``hull_carve_tolerance`` of
them (mask noise) and onto the object in at least ``hull_min_object_fraction`` of them. Hand pixels
never carve (the hand hides the object), so the second test is what removes the hand and arm, which
the object covers only when it passes in front of them. The largest connected component is the hull.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hold.data.sequence import LABEL_BACKGROUND, LABEL_OBJECT
from preprocess.config import SfmConfig


def mask_hull(
    R: np.ndarray,
    trans: np.ndarray,
    K: np.ndarray,
    labels: list[np.ndarray],
    frames: np.ndarray,
    centre: np.ndarray,
    half_size: float,
    cfg: SfmConfig,
) -> np.ndarray:
    """Voxel centres (N, 3) of the object's visual hull, in SfM coordinates.

    Args:
        R, trans: (T, 3, 3), (T, 3) SfM ``cam_from_world`` of every frame (``x_cam = R x + t``).
        K: (3, 3) intrinsics of the label maps.
        labels: T label maps (H, W) (docs/formats.md labels).
        frames: indices of the frames whose poses are trusted.
        centre, half_size: the cube carved (SfM units).
        cfg: ``hull_resolution``, ``hull_carve_tolerance``, ``hull_min_object_fraction``.

    Returns:
        The kept voxel centres; empty when nothing survives (masks inconsistent with the poses).
    """
    n = cfg.hull_resolution
    axis = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) * half_size + centre
    seen = np.zeros(len(grid), np.int32)
    background = np.zeros(len(grid), np.int32)
    on_object = np.zeros(len(grid), np.int32)
    for t in frames:
        cam = grid @ R[t].T + trans[t]
        z = cam[:, 2]
        front = z > 1e-9
        uv = np.zeros((len(grid), 2))
        uv[front] = (cam[front] @ K.T)[:, :2] / z[front, None]
        px = np.round(uv).astype(np.int64)
        H, W = labels[t].shape
        inside = front & (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)
        label = labels[t][px[inside, 1], px[inside, 0]]
        seen[inside] += 1
        background[np.flatnonzero(inside)[label == LABEL_BACKGROUND]] += 1
        on_object[np.flatnonzero(inside)[label == LABEL_OBJECT]] += 1
    keep = (
        (seen > 0)
        & (background <= cfg.hull_carve_tolerance * seen)
        & (on_object >= cfg.hull_min_object_fraction * seen)
    )
    components, count = ndimage.label(keep.reshape(n, n, n), structure=np.ones((3, 3, 3)))
    if count == 0:
        return np.zeros((0, 3))
    sizes = np.bincount(components.ravel())[1:]
    return grid[components.ravel() == 1 + int(np.argmax(sizes))]


def normalise(points: np.ndarray, sphere_fill: float) -> tuple[np.ndarray, float]:
    """Centre (bounding-box midpoint) and radius so that ``(points − c) / r`` reaches ``sphere_fill``."""
    c = 0.5 * (points.min(0) + points.max(0))
    r = float(np.linalg.norm(points - c, axis=1).max()) / sphere_fill
    return c, max(r, 1e-12)
