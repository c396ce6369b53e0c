"""Meshes from SDFs (marching cubes, largest component, decimation) and point–mesh queries."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import point_cloud_utils as pcu
import torch
import trimesh
from skimage import measure


class EmptySurfaceError(ValueError):
    """The SDF has no zero level set inside the sampled box."""


@torch.no_grad()
def sdf_grid(
    sdf_fn: Callable[[torch.Tensor], torch.Tensor],
    bounds: tuple[float, float],
    resolution: int,
    chunk: int = 65536,
) -> np.ndarray:
    """Evaluate ``sdf_fn`` ((N, 3) → (N,) or (N, 1)) on a cubic grid over ``[lo, hi]³``, in chunks.

    Returns:
        (res, res, res) float32 array indexed [x, y, z].
    """
    lo, hi = bounds
    axis = torch.linspace(lo, hi, resolution)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    values = torch.cat(
        [sdf_fn(grid[i : i + chunk]).reshape(-1).float().cpu() for i in range(0, len(grid), chunk)]
    )
    return values.reshape(resolution, resolution, resolution).numpy()


def require_surface(grid: np.ndarray, bounds: tuple[float, float], level: float = 0.0) -> None:
    """Raise ``EmptySurfaceError`` unless the grid's values cross ``level`` (a surface to mesh)."""
    if not (grid.min() < level < grid.max()):
        raise EmptySurfaceError(
            f"SDF has no surface inside the box {bounds}: values range over [{grid.min():.4f}, {grid.max():.4f}]"
        )


def marching_cubes(grid: np.ndarray, bounds: tuple[float, float], level: float = 0.0) -> trimesh.Trimesh:
    """Zero level set of a grid made by ``sdf_grid``, in the grid's coordinates (outward normals)."""
    require_surface(grid, bounds, level)
    lo, hi = bounds
    spacing = (hi - lo) / (grid.shape[0] - 1)
    verts, faces, _, _ = measure.marching_cubes(grid, level=level, spacing=(spacing,) * 3)
    mesh = trimesh.Trimesh(verts + lo, faces, process=False)
    if mesh.volume < 0:  # orientation depends on the SDF sign convention: make normals point outward
        mesh.invert()
    return mesh


def largest_component(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Keep the connected component with the most faces (floaters from the SDF are dropped)."""
    parts = mesh.split(only_watertight=False)
    return max(parts, key=lambda m: len(m.faces)) if len(parts) > 1 else mesh


def decimate(mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
    """Quadric decimation to at most ``max_faces`` faces (no-op when already small enough)."""
    if len(mesh.faces) <= max_faces:
        return mesh
    return mesh.simplify_quadric_decimation(face_count=max_faces)


def extract_mesh(
    sdf_fn: Callable[[torch.Tensor], torch.Tensor],
    bounds: tuple[float, float],
    resolution: int,
    max_faces: int | None = None,
) -> trimesh.Trimesh:
    """Marching cubes → largest component → optional decimation (HOLD §3.3 object mesh)."""
    mesh = largest_component(marching_cubes(sdf_grid(sdf_fn, bounds, resolution), bounds))
    return decimate(mesh, max_faces) if max_faces else mesh


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed distance of (N, 3) points to a watertight mesh: negative inside (point-cloud-utils)."""
    sdf, _, _ = pcu.signed_distance_to_mesh(
        np.ascontiguousarray(points, np.float64),
        np.ascontiguousarray(vertices, np.float64),
        np.ascontiguousarray(faces, np.int32),
    )
    return sdf
