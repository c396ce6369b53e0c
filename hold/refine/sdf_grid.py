"""Signed-distance grids sampled trilinearly with ``grid_sample``: differentiable w.r.t. the query points.

Interpenetration needs the signed distance of many posed points to a mesh at every step, with
gradients w.r.t. the poses that place them. The SDF of a watertight mesh is precomputed once on a
regular grid in the mesh's own (canonical) frame; queries are mapped into that frame and interpolated.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hold.geometry.mesh import signed_distance


class SDFGrid(nn.Module):
    """A signed-distance field on a regular grid over the box ``[lo, hi]``, negative inside.

    Args:
        values: (R, R, R) SDF samples indexed [x, y, z] (``hold.geometry.mesh.sdf_grid`` layout).
        lo, hi: (3,) box corners; sample (i, j, k) sits at lo + (i, j, k) / (R − 1) · (hi − lo).
    """

    def __init__(self, values: Tensor, lo: Tensor, hi: Tensor) -> None:
        super().__init__()
        if values.dim() != 3:
            raise ValueError(f"values: expected shape (R, R, R), found {tuple(values.shape)}")
        # grid_sample reads a 5-D volume as (N, C, D, H, W) and its last coordinate indexes W: store
        # the [x, y, z] array as-is and flip the query coordinates to (z, y, x).
        self.register_buffer("values", values.float()[None, None].contiguous())
        self.register_buffer("lo", lo.float())
        self.register_buffer("hi", hi.float())

    @classmethod
    def from_mesh(
        cls, vertices: np.ndarray, faces: np.ndarray, resolution: int, lo: np.ndarray, hi: np.ndarray
    ) -> SDFGrid:
        """Sample the exact signed distance of a watertight mesh (point-cloud-utils) on the grid."""
        axes = [np.linspace(lo[i], hi[i], resolution) for i in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        sdf = signed_distance(grid, vertices, faces).reshape(resolution, resolution, resolution)
        return cls(torch.as_tensor(sdf, dtype=torch.float32), torch.as_tensor(lo), torch.as_tensor(hi))

    @classmethod
    def around_mesh(cls, vertices: np.ndarray, faces: np.ndarray, resolution: int, padding: float) -> SDFGrid:
        """``from_mesh`` over the mesh's bounding box grown by ``padding`` on every side."""
        lo = vertices.min(0) - padding
        hi = vertices.max(0) + padding
        return cls.from_mesh(vertices, faces, resolution, lo, hi)

    def forward(self, points: Tensor) -> Tensor:
        """(..., 3) points in the grid's frame → (...) signed distances (border values outside the box)."""
        shape = points.shape[:-1]
        u = (points.reshape(1, 1, 1, -1, 3) - self.lo) / (self.hi - self.lo) * 2 - 1
        sdf = F.grid_sample(
            self.values, u.flip(-1), mode="bilinear", padding_mode="border", align_corners=True
        )
        return sdf.reshape(shape)
