"""The pinhole camera: OpenCV axes, the camera at the origin of its frame, intrinsics K.

Every projection in the project goes through ``project``; its near plane keeps points at or behind
the camera finite (they are never visible: callers that need to know test ``z`` themselves).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

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
