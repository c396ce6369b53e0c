"""The object mesh's level set chosen from the masks (``export.object_level=masks``).

A density with a large β renders its silhouette edge beyond the SDF's zero set, so the zero set of an
SDF fitted to masks lies inside the object. How far depends on the object: a ray grazing a small or
thin part crosses little density, so there the edge sits closer to the zero set than on a large flat
side. A fixed offset (``export.object_level_beta``) therefore inflates small objects and leaves large
ones too small. Here the level is the candidate whose posed mesh covers the object masks best: the
intersection over union of its silhouettes with the object labels, summed over the frames, on the
pixels where the object could be seen (hand and unknown pixels left out, since the hand may hide it).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hold.data.sequence import LABEL_LEFT, LABEL_OBJECT, LABEL_RIGHT, LABEL_UNKNOWN
from hold.geometry.mesh import EmptySurfaceError, decimate, largest_component, marching_cubes

FIT_FACES = 3000
"""Faces of the decimated mesh whose silhouettes are compared with the masks (coverage only)."""
MAX_FIT_FRAMES = 32
"""Frames compared at most, evenly spaced over the clip."""
_SUBPIXEL_BITS = 4  # cv2 fixed-point vertex coordinates: 1/16 pixel
_SUPERSAMPLE = 8  # sub-pixels per pixel side when rasterising


class NoObjectPixelsError(ValueError):
    """The masks compared hold no object pixels, so they cannot choose a level."""


@dataclass
class LevelFit:
    """The chosen level and each candidate's score (``export.json`` records both)."""

    level_beta: float
    iou: dict[float, float]  # candidate level (β) → silhouette IoU with the masks
    frames: int

    def as_dict(self) -> dict[str, object]:
        return {
            "chosen_beta": self.level_beta,
            "frames": self.frames,
            "iou_by_level_beta": {f"{k:g}": round(v, 4) for k, v in self.iou.items()},
        }


def mesh_silhouette(
    vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """(H, W) bool: pixels at least half covered by a camera-frame mesh (metres, OpenCV axes). Faces
    with a vertex at or behind the camera plane are skipped (an object is never there in a valid frame).

    cv2 fills every pixel a polygon's outline touches, which would grow a silhouette by about half a
    pixel all round (6 % of the area of a 15-pixel disc): it draws at ``_SUPERSAMPLE``× and keeps the
    pixels whose sub-pixels are at least half covered.
    """
    H, W = size
    n = _SUPERSAMPLE
    z = vertices[:, 2]
    uv = (vertices @ K.T)[:, :2] / np.maximum(z, 1e-9)[:, None]
    tri = faces[(z[faces] > 1e-6).all(1)]
    # Pixel i spans [i, i + 1); cv2 puts sub-pixel j's centre at integer coordinate j, i.e. at (j + 0.5) / n.
    pts = np.round((uv[tri] * n - 0.5) * (1 << _SUBPIXEL_BITS)).astype(np.int32)  # (F, 3, 2)
    fine = np.zeros((H * n, W * n), np.uint8)
    for p in pts:
        cv2.fillConvexPoly(fine, p, 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return 2 * fine.reshape(H, n, W, n).sum((1, 3), dtype=np.uint16) >= n * n


def fit_object_level(
    grid: np.ndarray,
    bounds: tuple[float, float],
    candidates_beta: tuple[float, ...],
    beta_canonical: float,
    poses: tuple[np.ndarray, np.ndarray, float],
    K: np.ndarray,
    masks: np.ndarray,
    frames: np.ndarray,
) -> LevelFit:
    """The candidate level (multiples of β) whose posed meshes best cover the object masks.

    Args:
        grid, bounds: the object SDF sampled by ``sdf_grid`` (canonical units).
        candidates_beta: levels to try, in multiples of β.
        beta_canonical: the object density's β in canonical units.
        poses: object rotations (T, 3, 3), translations (T, 3) and scale: x_cam = R (s x) + t.
        K: (3, 3) intrinsics of the masks.
        masks: (F, H, W) uint8 label maps of ``frames``.
        frames: (F,) frame index of each mask.

    Raises:
        EmptySurfaceError: no candidate level has a surface.
        NoObjectPixelsError: the masks give nothing to fit.
    """
    R, t, scale = poses
    pick = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), MAX_FIT_FRAMES)).round().astype(int))
    visible = [(m != LABEL_RIGHT) & (m != LABEL_LEFT) & (m != LABEL_UNKNOWN) for m in masks[pick]]
    target = [m == LABEL_OBJECT for m in masks[pick]]
    if not any(obj.any() for obj in target):
        raise NoObjectPixelsError(f"none of the {len(pick)} masks compared labels a pixel as the object")
    iou: dict[float, float] = {}
    for level in candidates_beta:
        try:
            mesh = largest_component(marching_cubes(grid, bounds, level * beta_canonical))
        except EmptySurfaceError:
            continue
        mesh = decimate(mesh, FIT_FACES)
        verts, faces = np.asarray(mesh.vertices) * scale, np.asarray(mesh.faces)
        inter = union = 0
        for i, keep, obj in zip(pick, visible, target):
            f = int(frames[i])
            sil = mesh_silhouette(verts @ R[f].T + t[f], faces, K, obj.shape) & keep
            inter += int((sil & obj).sum())
            union += int((sil | obj).sum())
        iou[level] = inter / max(union, 1)
    if not iou:
        raise EmptySurfaceError(f"the object SDF has no surface at any of the levels {candidates_beta} β")
    best = max(iou, key=lambda k: (iou[k], -abs(k)))
    return LevelFit(level_beta=best, iou=iou, frames=len(pick))
