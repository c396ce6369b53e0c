"""What the ``hands`` step's output says about each frame's pixels: keypoints and the fitted hand's
silhouette. The mask backends that prompt from the hand (``sam2``, ``static``) read it from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hold.config.hand import HandConfig
from hold.data.sequence import HAND_SIDES
from hold.data.synthetic.render import pixel_rays, ray_cast
from hold.hand.build import build_hand_model

WRIST, MIDDLE_MCP = 0, 9
PALM_KEYPOINTS = (0, 1, 5, 9, 13, 17)  # wrist, thumb CMC and the four finger MCPs: on the hand in any grasp
FINGERTIPS = (4, 8, 12, 16, 20)
_PARAMS = ("global_orient", "pose", "betas", "transl")


@dataclass
class HandView:
    """One hand side as the ``hands`` step left it, in output pixels.

    Attributes:
        side: ``right`` or ``left``.
        kp2d: (T, 21, 3) estimated keypoints, x, y, confidence.
        fitted_kp2d: (T, 21, 2) the fitted model's keypoints projected (filled frames included).
        valid: (T,) frames where the hand was fitted (not filled from neighbours).
        vertices: (T, V, 3) the fitted hand's sealed mesh, camera frame; faces (F, 3).
    """

    side: str
    kp2d: np.ndarray
    fitted_kp2d: np.ndarray
    valid: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray

    def size_px(self, t: int) -> float:
        """Diagonal of the fitted keypoints' box in frame t, pixels (the hand's size on screen)."""
        pts = self.fitted_kp2d[t]
        return float(np.linalg.norm(pts.max(0) - pts.min(0)))


def load_hand_views(hands_dir: Path, hand_cfg: HandConfig) -> tuple[np.ndarray, list[HandView]]:
    """The intrinsics and every fitted side of ``work/hands/hands.npz``.

    Returns:
        K (3, 3) and one ``HandView`` per side, right first.
    """
    with np.load(hands_dir / "hands.npz") as f:
        arrays = {k: f[k] for k in f.files}
    K = arrays["K"]
    views = []
    for side in HAND_SIDES:
        if f"{side}.valid" not in arrays:
            continue
        model = build_hand_model(hand_cfg, side)
        params = [torch.as_tensor(arrays[f"{side}.{k}"], dtype=torch.float32) for k in _PARAMS]
        with torch.no_grad():
            vertices = model.seal(model(*params).vertices).numpy()
        joints = arrays[f"{side}.keypoints"]
        fitted = joints[..., :2] / joints[..., 2:3] * K[[0, 1], [0, 1]] + K[:2, 2]
        views.append(
            HandView(
                side=side,
                kp2d=arrays[f"{side}.kp2d"],
                fitted_kp2d=fitted,
                valid=arrays[f"{side}.valid"].astype(bool),
                vertices=vertices,
                faces=model.sealed_faces.numpy(),
            )
        )
    return K, views


def silhouette(view: HandView, t: int, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels whose centre ray hits the fitted hand mesh in frame t."""
    rays = pixel_rays(K, size, 1).reshape(-1, 3)
    face, _, _ = ray_cast(view.vertices[t], view.faces, np.zeros_like(rays), rays)
    return (face >= 0).reshape(size)
