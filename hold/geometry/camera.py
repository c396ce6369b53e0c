"""The pinhole camera (OpenCV axes, the camera at the origin of its frame, intrinsics K) and the object's
pose in it.

Every projection in the project goes through ``project``; its near plane keeps points at or behind
the camera finite (they are never visible: callers that need to know test ``z`` themselves). Every
object placement goes through ``ObjectPose``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

Array = TypeVar("Array", np.ndarray, torch.Tensor)

NEAR = 1e-4
"""Default near plane (metres): depths below it are clamped before dividing."""


def project(points: Array, K: Array, near: float = NEAR) -> Array:
    """Camera-frame points (..., N, 3) → pixel coordinates (..., N, 2), ``u = fx·x/z + cx``.

    Args:
        points: numpy array or tensor, (..., N, 3) or (N, 3).
        K: (3, 3) intrinsics, or (B, 3, 3) with ``points`` (B, N, 3): one camera per batch entry.
        near: depths are clamped to at least this.
    """
    z = (
        np.maximum(points[..., 2:], near)
        if isinstance(points, np.ndarray)
        else points[..., 2:].clamp_min(near)
    )
    f, c = K[..., [0, 1], [0, 1]], K[..., :2, 2]
    if K.ndim == 3:
        f, c = f[:, None], c[:, None]
    return points[..., :2] / z * f + c


@dataclass
class ObjectPose:
    """The object's similarity transform in n frames: ``x_cam = R (s x_can) + t``.

    Attributes:
        R: (n, 3, 3) rotations. t: (n, 3) translations (metres). s: () scale, shared by the frames.
    """

    R: Tensor
    t: Tensor
    s: Tensor

    def to_camera(self, points: Tensor) -> Tensor:
        """Canonical points (n, P, 3) or (P, 3) → camera frame (n, P, 3)."""
        return self.s * points @ self.R.transpose(1, 2) + self.t[:, None]

    def to_canonical(self, points: Tensor) -> Tensor:
        """Camera-frame points (n, P, 3) → canonical (n, P, 3): (s R)⁻¹ (x − t)."""
        return (points - self.t[:, None]) @ self.R / self.s

    def detach(self) -> ObjectPose:
        return ObjectPose(self.R.detach(), self.t.detach(), self.s.detach())
